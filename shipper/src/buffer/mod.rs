//! The durable buffer between the sources and the sinks.
//!
//! # Rules
//!
//! 1. **Order and identity.** Every accepted record gets the next sequence
//!    number (consecutive, never reused, also across restarts). A segment
//!    file, named after the sequence number of its first record
//!    (`00000000000000001234.seg`), holds a contiguous run of records in
//!    `envelope`'s encrypted at-rest format ([`frames`]); one frame holds
//!    the records of one append (at most 4 MiB of them).
//! 2. **What is fsynced when.** One writer thread appends records to the
//!    active segment. It fsyncs a group of appends when
//!    `buffer.fsync_interval` has passed since the first unsynced append or
//!    when `buffer.fsync_bytes` are unsynced, whichever comes first. Only
//!    after that fsync are the records visible to sinks and are the sources
//!    told, so a client's `{"ack":N}` always covers fsynced records only.
//! 3. **Sealing.** The active segment is sealed (final frame, fsync) when it
//!    reaches `buffer.segment_bytes`, when a clean shutdown closes the
//!    buffer, or at start if a crash left it open; the next append starts a
//!    new one (retrying, and so holding the sources back, while the master
//!    key cannot give it a data key). Sealed segments are never written
//!    again.
//! 4. **Cursors.** The ledger (`ledger.json`, [`ledger`]) holds one cursor per
//!    sink: the first sequence number that sink's destination has not yet
//!    acknowledged. A sink moves its cursor only past records that are
//!    delivered (or dead-lettered, or filtered out by its `kinds`/`inputs`).
//!    The ledger is replaced atomically (temp, fsync, rename, fsync dir).
//! 5. **What deletes a segment.** Only this: the segment is sealed and every
//!    configured sink's cursor is past its last record. The active segment
//!    is never deleted.
//! 6. **Size bound.** When the segment files total more than
//!    `buffer.max_bytes`, `when_full = "block"` stops taking appends until
//!    sinks free space (the sources stop reading their sockets, so clients
//!    feel back-pressure); `"drop_newest"` refuses the new records, acks
//!    them to their client and counts them as dropped.
//! 7. **What a crash leaves.** At most a torn frame at the end of the active
//!    segment (cut at start, [`frames::AtRest`]), plus
//!    records written after the last fsync, which survive only if the OS
//!    wrote them: they were never acked, so clients may resend them (a
//!    duplicate under a new id). A batch delivered but not yet recorded in
//!    the ledger is delivered again after restart, under the same ids.

pub(crate) mod frames;
pub(crate) mod ledger;
mod reader;
mod writer;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::{mpsc, oneshot, watch};

pub use reader::BufferReader;

use crate::config::BufferConfig;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::record::Record;
use frames::unpack;
pub use frames::AtRest;
use ledger::Ledger;

/// What happened to an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// The records are fsynced.
    Durable(usize),
    /// The buffer was full (`when_full = "drop_newest"`): they were dropped.
    Dropped(usize),
}

/// Completes when an append is durable (or dropped).
pub type AppendReceipt = oneshot::Receiver<Result<Appended>>;

enum Cmd {
    Append {
        records: Vec<Record>,
        done: oneshot::Sender<Result<Appended>>,
    },
    Close(oneshot::Sender<()>),
}

#[derive(Debug, Clone)]
struct Segment {
    path: PathBuf,
    /// One past the last durable record in it.
    end: u64,
    bytes: u64,
    sealed: bool,
}

/// The durable records of the active segment, kept in memory so that
/// sinks keeping up never read from disk.
struct Tail {
    first: u64,
    records: Vec<Arc<Record>>,
}

struct Shared {
    dir: PathBuf,
    at: AtRest,
    segments: Mutex<BTreeMap<u64, Segment>>,
    tail: RwLock<Tail>,
    ledger: Mutex<Ledger>,
    total_bytes: AtomicU64,
    closing: AtomicBool,
    metrics: Arc<Metrics>,
}

/// The buffer: cheap to clone, shared by sources (append) and sinks (read,
/// commit).
#[derive(Clone)]
pub struct Buffer {
    shared: Arc<Shared>,
    cmds: mpsc::Sender<Cmd>,
    durable: watch::Receiver<u64>,
    writer: Arc<Mutex<Option<std::thread::JoinHandle<()>>>>,
}

fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{first:020}.seg"))
}

impl Buffer {
    /// Opens (or creates) the buffer in `dir` for the given sinks,
    /// recovering whatever a crash left. Must be called inside a Tokio
    /// runtime.
    pub async fn open(
        dir: &Path,
        at: AtRest,
        cfg: &BufferConfig,
        sinks: &[String],
        metrics: Arc<Metrics>,
    ) -> Result<Buffer> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let mut firsts: Vec<u64> = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
            let entry = entry.map_err(|e| Error::io(dir, e))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if let Some(n) = name.strip_suffix(".seg").and_then(|n| n.parse().ok()) {
                firsts.push(n);
            }
        }
        firsts.sort_unstable();
        let mut segments = BTreeMap::new();
        let mut next = 0u64;
        for (i, &first) in firsts.iter().enumerate() {
            let path = segment_path(dir, first);
            let end = match firsts.get(i + 1) {
                Some(&n) => n,
                None => {
                    // The last segment: recover a torn tail and seal it.
                    let (w, rec) = at.open_append(&path).await?;
                    if rec.truncated_bytes > 0 {
                        tracing::warn!(path = %path.display(), bytes = rec.truncated_bytes,
                            "cut the torn tail of the buffer's last segment (records never acked)");
                    }
                    if let Some(w) = w {
                        w.finish()?;
                    }
                    first + read_segment(&at, &path).await?.len() as u64
                }
            };
            let bytes = std::fs::metadata(&path)
                .map_err(|e| Error::io(&path, e))?
                .len();
            if end == first {
                std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
                continue;
            }
            next = next.max(end);
            segments.insert(
                first,
                Segment {
                    path,
                    end,
                    bytes,
                    sealed: true,
                },
            );
        }
        let oldest = segments.keys().next().copied().unwrap_or(next);
        let ledger_path = dir.join("ledger.json");
        let ledger = Ledger::open(&ledger_path, sinks, oldest)?;
        if segments.is_empty() {
            // Everything was delivered: keep numbering after the cursors.
            next = next.max(ledger.max_cursor().unwrap_or(0));
        }
        let total: u64 = segments.values().map(|s| s.bytes).sum();
        let shared = Arc::new(Shared {
            dir: dir.to_owned(),
            at,
            segments: Mutex::new(segments),
            tail: RwLock::new(Tail {
                first: next,
                records: Vec::new(),
            }),
            ledger: Mutex::new(ledger),
            total_bytes: AtomicU64::new(total),
            closing: AtomicBool::new(false),
            metrics,
        });
        shared.collect()?;
        let (durable_tx, durable) = watch::channel(next);
        let (cmds, rx) = mpsc::channel(64);
        let writer = writer::Writer::start(shared.clone(), cfg.clone(), next, durable_tx).await?;
        let thread = std::thread::Builder::new()
            .name("buffer-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| Error::io(dir, e))?;
        Ok(Buffer {
            shared,
            cmds,
            durable,
            writer: Arc::new(Mutex::new(Some(thread))),
        })
    }

    /// Queues records for appending (waiting while the writer's queue is
    /// full: back-pressure). The receipt completes once they are durable.
    pub async fn append(&self, records: Vec<Record>) -> Result<AppendReceipt> {
        let (done, receipt) = oneshot::channel();
        self.cmds
            .send(Cmd::Append { records, done })
            .await
            .map_err(|_| Error::ShuttingDown)?;
        Ok(receipt)
    }

    /// A reader positioned at `sink`'s cursor.
    pub fn reader(&self, sink: &str) -> BufferReader {
        let next = self
            .shared
            .ledger
            .lock()
            .unwrap()
            .cursor(sink)
            .unwrap_or_else(|| *self.durable.borrow());
        BufferReader::new(self.shared.clone(), sink, next, self.durable.clone())
    }

    /// Records that `sink`'s destination acknowledged everything before
    /// `seq`; deletes segments no sink needs any more.
    pub fn commit(&self, sink: &str, seq: u64) -> Result<()> {
        let moved = self.shared.ledger.lock().unwrap().advance(sink, seq)?;
        if moved {
            self.shared.collect()?;
        }
        Ok(())
    }

    /// The cursor of `sink`.
    pub fn cursor(&self, sink: &str) -> Option<u64> {
        self.shared.ledger.lock().unwrap().cursor(sink)
    }

    /// One past the last durable record.
    pub fn durable_end(&self) -> u64 {
        *self.durable.borrow()
    }

    /// Total bytes of the segment files.
    pub fn bytes(&self) -> u64 {
        self.shared.total_bytes.load(Ordering::Relaxed)
    }

    /// Stops taking appends, fsyncs and seals the active segment. Appends
    /// queued before are completed first.
    pub async fn close(&self) {
        self.shared.closing.store(true, Ordering::SeqCst);
        let (tx, rx) = oneshot::channel();
        if self.cmds.send(Cmd::Close(tx)).await.is_ok() {
            let _ = rx.await;
        }
        let handle = self.writer.lock().unwrap().take();
        if let Some(h) = handle {
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
    }
}

impl Shared {
    /// Deletes sealed segments that every sink has passed (rule 5).
    fn collect(&self) -> Result<()> {
        let Some(min) = self.ledger.lock().unwrap().min_cursor() else {
            return Ok(());
        };
        let mut segs = self.segments.lock().unwrap();
        let done: Vec<u64> = segs
            .iter()
            .filter(|(_, s)| s.sealed && s.end <= min)
            .map(|(&f, _)| f)
            .collect();
        if done.is_empty() {
            return Ok(());
        }
        for first in done {
            let seg = segs.remove(&first).expect("listed above");
            std::fs::remove_file(&seg.path).map_err(|e| Error::io(&seg.path, e))?;
            self.total_bytes.fetch_sub(seg.bytes, Ordering::Relaxed);
        }
        drop(segs);
        ledger::sync_dir(&self.dir)?;
        self.metrics
            .buffer_bytes
            .set(self.total_bytes.load(Ordering::Relaxed) as i64);
        Ok(())
    }

    fn segment_for(&self, seq: u64) -> Option<(u64, Segment)> {
        let segs = self.segments.lock().unwrap();
        segs.range(..=seq)
            .next_back()
            .filter(|(_, s)| s.sealed && seq < s.end)
            .map(|(&f, s)| (f, s.clone()))
    }

    fn oldest(&self) -> Option<u64> {
        self.segments.lock().unwrap().keys().next().copied()
    }
}

/// Reads every record of a segment file (for recovery, tests and tools).
pub async fn read_segment(at: &AtRest, path: &Path) -> Result<Vec<Record>> {
    let mut r = at.open(path).await?;
    let mut sources = Vec::new();
    let mut out = Vec::new();
    while let Some(f) = r.next_frame()? {
        decode_frame(&f, path, &mut sources, &mut out)?;
    }
    Ok(out)
}

/// Decodes the records packed in one frame.
pub(crate) fn decode_frame(
    frame: &[u8],
    path: &Path,
    sources: &mut Vec<Arc<str>>,
    out: &mut Vec<Record>,
) -> Result<()> {
    let bad = || Error::Corrupt {
        path: path.to_owned(),
        reason: "a frame does not hold whole records".into(),
    };
    for rec in unpack(frame) {
        let rec = rec.map_err(|()| bad())?;
        out.push(Record::decode(rec, sources).ok_or_else(bad)?);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
