//! The telemetry thread's loop: queue → socket, acks → spool commits,
//! outages → spool.
//!
//! Ordering rule: lines leave in the order they were accepted. While the
//! spool holds unsent lines, new lines are appended behind them; lines go
//! straight from memory to the socket only once the spool has nothing left
//! to send. Lines sent from memory and not yet acknowledged are moved into
//! the spool (as already sent) before anything else is appended to it, so a
//! rewind after a reconnect resends them in their place.

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::counters::WriterCounters;
use super::spool::Spool;
use super::SocketWriterConfig;

/// How long a single connect attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Lines written per flush when going straight from memory.
const BATCH: usize = 256;

enum Inflight {
    /// A spool frame by absolute index.
    Spool(u64),
    /// A line sent from memory.
    Memory(Vec<u8>),
}

/// What the ack reader saw last: acks are cumulative, so only the latest
/// matters, and the reader never waits on the pump (a bounded hand-off
/// would deadlock: pump blocked writing, reader blocked handing over acks,
/// shipper blocked writing acks).
#[derive(Clone, Copy, Default)]
struct AckState {
    acked: u64,
    closed: bool,
}

enum Exit {
    Lost,
    Shutdown(Duration),
}

pub(super) struct Pump {
    pub(super) cfg: SocketWriterConfig,
    pub(super) rx: mpsc::Receiver<Vec<u8>>,
    pub(super) spool: Spool,
    pub(super) counters: Arc<WriterCounters>,
    inflight: VecDeque<Inflight>,
    acked_on_conn: u64,
    ever_connected: bool,
}

impl Pump {
    pub(super) fn new(
        cfg: SocketWriterConfig,
        rx: mpsc::Receiver<Vec<u8>>,
        spool: Spool,
        counters: Arc<WriterCounters>,
    ) -> Self {
        let pump = Self {
            cfg,
            rx,
            spool,
            counters,
            inflight: VecDeque::new(),
            acked_on_conn: 0,
            ever_connected: false,
        };
        pump.publish();
        pump
    }

    pub(super) async fn run(mut self, mut shutdown: oneshot::Receiver<Duration>) {
        let mut backoff = self.cfg.reconnect_min;
        loop {
            let connect =
                tokio::time::timeout(CONNECT_TIMEOUT, UnixStream::connect(&self.cfg.socket_path))
                    .await;
            if let Ok(Ok(stream)) = connect {
                backoff = self.cfg.reconnect_min;
                if self.ever_connected {
                    self.counters.reconnects.fetch_add(1, Relaxed);
                }
                self.ever_connected = true;
                match self.connected(stream, &mut shutdown).await {
                    Exit::Lost => {}
                    Exit::Shutdown(_) => return,
                }
            }
            // Away: spool what arrives until the next attempt.
            let wake = Instant::now() + backoff;
            backoff = (backoff * 2).min(self.cfg.reconnect_max);
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(wake) => break,
                    line = self.rx.recv() => match line {
                        Some(line) => self.spool_line(&line).await,
                        None => return self.finish(None, Duration::ZERO).await,
                    },
                    d = &mut shutdown => {
                        return self.finish(None, d.unwrap_or(Duration::ZERO)).await;
                    }
                }
            }
        }
    }

    /// Serves one connection until it is lost or shutdown is asked for.
    async fn connected(
        &mut self,
        stream: UnixStream,
        shutdown: &mut oneshot::Receiver<Duration>,
    ) -> Exit {
        let (rd, wr) = stream.into_split();
        let mut wr = BufWriter::new(wr);
        let (ack_tx, mut ack_rx) = watch::channel(AckState::default());
        let reader = tokio::spawn(read_acks(rd, ack_tx));
        self.counters.connected.store(1, Relaxed);
        self.acked_on_conn = 0;
        self.spool.rewind();
        let mut last_progress = Instant::now();
        let exit = loop {
            if self.send_from_spool(&mut wr).await.is_err() {
                break Exit::Lost;
            }
            self.publish();
            let window_open = self.inflight.len() < self.cfg.max_unacked;
            let direct = window_open && !self.spool.has_unread();
            let ack_deadline = last_progress + self.cfg.ack_timeout;
            tokio::select! {
                biased;
                changed = ack_rx.changed() => {
                    let state = *ack_rx.borrow_and_update();
                    if self.on_ack(state.acked) {
                        last_progress = Instant::now();
                    }
                    if state.closed || changed.is_err() {
                        break Exit::Lost;
                    }
                },
                d = &mut *shutdown => break Exit::Shutdown(d.unwrap_or(Duration::ZERO)),
                line = self.rx.recv() => {
                    let Some(line) = line else { break Exit::Shutdown(Duration::ZERO) };
                    if direct {
                        if self.inflight.is_empty() {
                            last_progress = Instant::now();
                        }
                        if self.send_direct(&mut wr, line).await.is_err() {
                            break Exit::Lost;
                        }
                    } else {
                        self.spool_line(&line).await;
                    }
                },
                _ = tokio::time::sleep_until(ack_deadline), if !self.inflight.is_empty() => {
                    // The shipper stopped acknowledging: start over on a new
                    // connection, which resends what is unacknowledged.
                    break Exit::Lost;
                }
            }
        };
        let exit = match exit {
            Exit::Shutdown(deadline) => {
                self.finish(Some((&mut wr, &mut ack_rx)), deadline).await;
                Exit::Shutdown(deadline)
            }
            Exit::Lost => Exit::Lost,
        };
        reader.abort();
        self.lose_connection().await;
        exit
    }

    /// Sends unsent spool frames while the ack window allows.
    async fn send_from_spool(&mut self, wr: &mut BufWriter<OwnedWriteHalf>) -> std::io::Result<()> {
        let mut wrote = false;
        while self.inflight.len() < self.cfg.max_unacked {
            match self.spool.next_unread().await {
                Ok(Some((abs, frame))) => {
                    write_line(wr, &frame, self.cfg.ack_timeout).await?;
                    self.inflight.push_back(Inflight::Spool(abs));
                    self.counters.written.fetch_add(1, Relaxed);
                    wrote = true;
                }
                Ok(None) => break,
                Err(_) => {
                    self.counters.dropped_spool_error.fetch_add(1, Relaxed);
                    break;
                }
            }
        }
        self.note_spool_losses();
        if wrote {
            flush(wr, self.cfg.ack_timeout).await?;
        }
        Ok(())
    }

    /// Sends `first` and whatever else is queued, up to the window, from
    /// memory.
    async fn send_direct(
        &mut self,
        wr: &mut BufWriter<OwnedWriteHalf>,
        first: Vec<u8>,
    ) -> std::io::Result<()> {
        let limit = self.cfg.ack_timeout;
        let mut line = first;
        let mut n = 0;
        loop {
            // In flight before the write: a line whose write fails is then
            // spooled with the others when the connection is dropped.
            self.inflight.push_back(Inflight::Memory(line));
            if let Some(Inflight::Memory(sent)) = self.inflight.back() {
                write_line(wr, sent, limit).await?;
            }
            self.counters.written.fetch_add(1, Relaxed);
            n += 1;
            if n >= BATCH || self.inflight.len() >= self.cfg.max_unacked {
                break;
            }
            match self.rx.try_recv() {
                Ok(next) => line = next,
                Err(_) => break,
            }
        }
        flush(wr, self.cfg.ack_timeout).await
    }

    /// Applies a cumulative ack; true if it acknowledged something new.
    fn on_ack(&mut self, n: u64) -> bool {
        if n <= self.acked_on_conn {
            return false;
        }
        let k = ((n - self.acked_on_conn) as usize).min(self.inflight.len());
        self.acked_on_conn = n;
        let mut commit = None;
        for entry in self.inflight.drain(..k) {
            if let Inflight::Spool(abs) = entry {
                commit = Some(abs);
            }
        }
        if let Some(abs) = commit {
            // On error the frames are still acknowledged; only their file
            // lingers until the next commit retries the delete.
            let _ = self.spool.commit_through(abs);
        }
        self.counters.acked.fetch_add(k as u64, Relaxed);
        self.publish();
        k > 0
    }

    /// Appends one line to the spool, keeping order with lines sent from
    /// memory.
    async fn spool_line(&mut self, line: &[u8]) {
        self.spill_memory().await;
        self.append_to_spool(line).await;
        self.publish();
    }

    async fn append_to_spool(&mut self, line: &[u8]) -> Option<u64> {
        match self.spool.append(line).await {
            Ok(Some(abs)) => {
                self.counters.spooled.fetch_add(1, Relaxed);
                Some(abs)
            }
            Ok(None) => {
                self.counters.dropped_spool_full.fetch_add(1, Relaxed);
                None
            }
            Err(_) => {
                self.counters.dropped_spool_error.fetch_add(1, Relaxed);
                None
            }
        }
    }

    /// Moves lines sent from memory into the spool, as already sent.
    async fn spill_memory(&mut self) {
        if !self
            .inflight
            .iter()
            .any(|e| matches!(e, Inflight::Memory(_)))
        {
            return;
        }
        let entries: Vec<Inflight> = self.inflight.drain(..).collect();
        for entry in entries {
            match entry {
                Inflight::Spool(abs) => self.inflight.push_back(Inflight::Spool(abs)),
                Inflight::Memory(line) => {
                    if let Some(abs) = self.append_to_spool(&line).await {
                        self.inflight.push_back(Inflight::Spool(abs));
                    }
                }
            }
        }
        self.spool.mark_all_read();
    }

    async fn lose_connection(&mut self) {
        self.spill_memory().await;
        self.inflight.clear();
        self.spool.rewind();
        self.counters.connected.store(0, Relaxed);
        self.publish();
    }

    /// On shutdown: sends what is queued and waits for acks until the
    /// deadline, then keeps everything unacknowledged in the spool.
    async fn finish(
        &mut self,
        conn: Option<(
            &mut BufWriter<OwnedWriteHalf>,
            &mut watch::Receiver<AckState>,
        )>,
        deadline: Duration,
    ) {
        let until = Instant::now() + deadline;
        let mut queued = Vec::new();
        while let Ok(line) = self.rx.try_recv() {
            queued.push(line);
        }
        if let Some((wr, acks)) = conn {
            for line in queued.drain(..) {
                self.spool_line(&line).await;
            }
            let _ = tokio::time::timeout_at(until, async {
                loop {
                    if self.send_from_spool(wr).await.is_err() {
                        return;
                    }
                    if self.inflight.is_empty() && !self.spool.has_unread() {
                        return;
                    }
                    let changed = acks.changed().await;
                    let state = *acks.borrow_and_update();
                    self.on_ack(state.acked);
                    if state.closed || changed.is_err() {
                        return;
                    }
                }
            })
            .await;
        } else {
            for line in queued {
                self.spool_line(&line).await;
            }
        }
        self.spill_memory().await;
        let _ = self.spool.close();
        self.publish();
    }

    fn note_spool_losses(&mut self) {
        if self.spool.lost > 0 {
            self.counters
                .dropped_spool_error
                .fetch_add(self.spool.lost, Relaxed);
            self.spool.lost = 0;
        }
    }

    fn publish(&self) {
        self.counters
            .unacked
            .store(self.inflight.len() as u64, Relaxed);
        self.counters
            .spool_pending
            .store(self.spool.pending(), Relaxed);
        self.counters.spool_bytes.store(self.spool.bytes(), Relaxed);
    }
}

async fn write_line(
    wr: &mut BufWriter<OwnedWriteHalf>,
    line: &[u8],
    limit: Duration,
) -> std::io::Result<()> {
    let write = async {
        wr.write_all(line).await?;
        wr.write_all(b"\n").await
    };
    tokio::time::timeout(limit, write)
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}

async fn flush(wr: &mut BufWriter<OwnedWriteHalf>, limit: Duration) -> std::io::Result<()> {
    tokio::time::timeout(limit, wr.flush())
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}

/// Reads `{"ack":N}` lines until the connection ends.
async fn read_acks(rd: tokio::net::unix::OwnedReadHalf, tx: watch::Sender<AckState>) {
    let mut lines = BufReader::new(rd).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Some(n) = parse_ack(&line) {
            tx.send_modify(|s| s.acked = s.acked.max(n));
        }
    }
    tx.send_modify(|s| s.closed = true);
}

fn parse_ack(line: &str) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Ack {
        ack: u64,
    }
    serde_json::from_str::<Ack>(line).ok().map(|a| a.ack)
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_acks_and_ignores_other_lines() {
        assert_eq!(super::parse_ack(r#"{"ack":42}"#), Some(42));
        assert_eq!(super::parse_ack(r#"{ "ack" : 7 }"#), Some(7));
        assert_eq!(super::parse_ack(r#"{"error":"x"}"#), None);
        assert_eq!(super::parse_ack("garbage"), None);
    }
}
