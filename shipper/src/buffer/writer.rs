//! The buffer's one writer thread: appends, group fsync, sealing, the
//! size bound (rules 2, 3 and 6 of the module doc).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};

use super::frames::{pack, FrameWriter};
use super::{segment_path, Appended, Cmd, Segment, Shared};
use crate::config::{BufferConfig, WhenFull};
use crate::error::{Error, Result};
use crate::record::Record;

pub(super) struct Writer {
    shared: Arc<Shared>,
    cfg: BufferConfig,
    active: Option<FrameWriter>,
    active_first: u64,
    next: u64,
    durable_tx: watch::Sender<u64>,
    /// Appended but not yet fsynced.
    pending: Vec<Arc<Record>>,
    waiters: Vec<(oneshot::Sender<Result<Appended>>, usize)>,
    unsynced_bytes: u64,
    deadline: Option<Instant>,
    scratch: Vec<u8>,
    frame: Vec<u8>,
    synced_len: u64,
    rt: tokio::runtime::Handle,
}

/// A frame holds the records of one append, split at this size.
const FRAME_TARGET: usize = 4 << 20;

impl Writer {
    pub(super) async fn start(
        shared: Arc<Shared>,
        cfg: BufferConfig,
        next: u64,
        durable_tx: watch::Sender<u64>,
    ) -> Result<Writer> {
        let path = segment_path(&shared.dir, next);
        let first = shared.at.create(&path).await?;
        let mut w = Writer {
            shared,
            cfg,
            active: None,
            active_first: next,
            next,
            durable_tx,
            pending: Vec::new(),
            waiters: Vec::new(),
            unsynced_bytes: 0,
            deadline: None,
            scratch: Vec::new(),
            frame: Vec::new(),
            synced_len: 0,
            rt: tokio::runtime::Handle::current(),
        };
        w.install(first)?;
        Ok(w)
    }

    fn open_segment(&mut self) -> Result<()> {
        let path = segment_path(&self.shared.dir, self.next);
        let w = self.rt.block_on(self.shared.at.create(&path))?;
        self.install(w)
    }

    fn install(&mut self, w: FrameWriter) -> Result<()> {
        let path = segment_path(&self.shared.dir, self.next);
        super::ledger::sync_dir(&self.shared.dir)?;
        self.synced_len = w.len();
        self.shared
            .total_bytes
            .fetch_add(self.synced_len, Ordering::Relaxed);
        self.shared.segments.lock().unwrap().insert(
            self.next,
            Segment {
                path,
                end: self.next,
                bytes: self.synced_len,
                sealed: false,
            },
        );
        self.active_first = self.next;
        self.active = Some(w);
        Ok(())
    }

    pub(super) fn run(mut self, mut rx: mpsc::Receiver<Cmd>) {
        let rt = self.rt.clone();
        loop {
            let cmd = match self.deadline {
                None => rx.blocking_recv(),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    match rt.block_on(async { tokio::time::timeout(left, rx.recv()).await }) {
                        Ok(cmd) => cmd,
                        Err(_) => {
                            self.sync_and_ack();
                            continue;
                        }
                    }
                }
            };
            match cmd {
                Some(Cmd::Append { records, done }) => self.append(records, done),
                Some(Cmd::Close(done)) => {
                    self.sync_and_ack();
                    self.seal();
                    let _ = done.send(());
                    // Refuse whatever is still queued.
                    rx.close();
                    while let Ok(cmd) = rx.try_recv() {
                        if let Cmd::Append { done, .. } = cmd {
                            let _ = done.send(Err(Error::ShuttingDown));
                        }
                    }
                    return;
                }
                None => {
                    self.sync_and_ack();
                    self.seal();
                    return;
                }
            }
        }
    }

    /// Makes sure there is an active segment, retrying (and so holding the
    /// sources back) while its data key cannot be had, e.g. KMS is away.
    /// Fails only when the buffer is closing.
    fn ensure_active(&mut self) -> Result<()> {
        let mut delay = Duration::from_millis(100);
        while self.active.is_none() {
            match self.open_segment() {
                Ok(()) => {
                    self.shared.metrics.set_problem("buffer", None);
                }
                Err(e) => {
                    let text = format!("cannot start a new buffer segment ({e}); holding the sources back and retrying");
                    tracing::error!("{text}");
                    self.shared.metrics.set_problem("buffer", Some(text));
                    if self.shared.closing.load(Ordering::SeqCst) {
                        return Err(Error::ShuttingDown);
                    }
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
            }
        }
        Ok(())
    }

    fn append(&mut self, records: Vec<Record>, done: oneshot::Sender<Result<Appended>>) {
        if let Err(e) = self.ensure_active() {
            let _ = done.send(Err(e));
            return;
        }
        let n = records.len();
        let incoming: u64 = records.iter().map(|r| r.encoded_len() as u64 + 8).sum();
        if self.shared.total_bytes.load(Ordering::Relaxed) + self.unsynced_bytes + incoming
            > self.cfg.max_bytes.0
        {
            match self.cfg.when_full {
                WhenFull::DropNewest => {
                    if let Some(r) = records.first() {
                        self.shared.metrics.dropped(&r.source).inc_by(n as u64);
                    }
                    let _ = done.send(Ok(Appended::Dropped(n)));
                    return;
                }
                WhenFull::Block => {
                    self.sync_and_ack();
                    // Sinks free space by committing; wait for it.
                    let mut warned = false;
                    while self.shared.total_bytes.load(Ordering::Relaxed) + incoming
                        > self.cfg.max_bytes.0
                    {
                        if self.shared.closing.load(Ordering::SeqCst) {
                            let _ = done.send(Err(Error::ShuttingDown));
                            return;
                        }
                        if !warned {
                            tracing::warn!(max = %self.cfg.max_bytes,
                                "the buffer is full; holding back the sources until sinks catch up");
                            warned = true;
                        }
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
            }
        }
        let mut failed = None;
        let mut in_frame = Vec::new();
        let total = records.len();
        for (i, mut r) in records.into_iter().enumerate() {
            r.seq = self.next + in_frame.len() as u64;
            self.scratch.clear();
            r.encode(&mut self.scratch);
            pack(&mut self.frame, &self.scratch);
            in_frame.push(Arc::new(r));
            if self.frame.len() >= FRAME_TARGET || i + 1 == total {
                let w = self.active.as_mut().expect("an active segment");
                if let Err(e) = w.append(&self.frame) {
                    failed = Some(e);
                    self.frame.clear();
                    break;
                }
                self.unsynced_bytes += self.frame.len() as u64 + 40;
                self.next += in_frame.len() as u64;
                self.pending.append(&mut in_frame);
                self.frame.clear();
            }
        }
        if let Some(e) = failed {
            // A write error is fatal for durability: refuse, log loudly.
            tracing::error!(error = %e, "cannot write to the buffer");
            let _ = done.send(Err(e));
            return;
        }
        self.waiters.push((done, n));
        if self.deadline.is_none() {
            self.deadline = Some(Instant::now() + self.cfg.fsync_interval.0);
        }
        if self.unsynced_bytes >= self.cfg.fsync_bytes.0 {
            self.sync_and_ack();
        }
        if self.active.as_ref().map_or(0, |w| w.len()) >= self.cfg.segment_bytes.0 {
            self.sync_and_ack();
            self.seal();
            // The next segment is started by the next append
            // (`ensure_active`), which retries while it cannot be.
        }
    }

    /// Rule 2: fsync, then publish to sinks, then tell the sources.
    fn sync_and_ack(&mut self) {
        self.deadline = None;
        if self.waiters.is_empty() && self.pending.is_empty() {
            return;
        }
        let Some(w) = self.active.as_mut() else {
            return;
        };
        let res = w.sync();
        if let Err(e) = res {
            tracing::error!(error = %e, "cannot fsync the buffer");
            for (done, _) in self.waiters.drain(..) {
                let _ = done.send(Err(Error::Corrupt {
                    path: segment_path(&self.shared.dir, self.active_first),
                    reason: "fsync failed".into(),
                }));
            }
            return;
        }
        let len = w.len();
        self.shared
            .total_bytes
            .fetch_add(len - self.synced_len, Ordering::Relaxed);
        self.synced_len = len;
        self.unsynced_bytes = 0;
        if let Some(seg) = self
            .shared
            .segments
            .lock()
            .unwrap()
            .get_mut(&self.active_first)
        {
            seg.end = self.next;
            seg.bytes = len;
        }
        self.shared
            .tail
            .write()
            .unwrap()
            .records
            .append(&mut self.pending);
        self.durable_tx.send_replace(self.next);
        self.shared
            .metrics
            .buffer_bytes
            .set(self.shared.total_bytes.load(Ordering::Relaxed) as i64);
        for (done, n) in self.waiters.drain(..) {
            let _ = done.send(Ok(Appended::Durable(n)));
        }
    }

    /// Rule 3: final frame, then the segment is readable from disk and the
    /// memory tail moves on.
    fn seal(&mut self) {
        let Some(w) = self.active.take() else { return };
        let before = w.len();
        if let Err(e) = w.finish() {
            tracing::error!(error = %e, "cannot seal a buffer segment");
        }
        let path = segment_path(&self.shared.dir, self.active_first);
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(before);
        self.shared
            .total_bytes
            .fetch_add(len.saturating_sub(self.synced_len), Ordering::Relaxed);
        {
            let mut segs = self.shared.segments.lock().unwrap();
            if let Some(seg) = segs.get_mut(&self.active_first) {
                seg.sealed = true;
                seg.end = self.next;
                seg.bytes = len;
            }
        }
        {
            let mut tail = self.shared.tail.write().unwrap();
            tail.first = self.next;
            tail.records.clear();
        }
        // An empty segment is of no use to anyone.
        if self.next == self.active_first {
            let mut segs = self.shared.segments.lock().unwrap();
            if segs.remove(&self.active_first).is_some() {
                let _ = std::fs::remove_file(&path);
                self.shared.total_bytes.fetch_sub(len, Ordering::Relaxed);
            }
        }
        let _ = self.shared.collect();
    }
}
