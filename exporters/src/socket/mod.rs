//! The non-blocking writer to the shipper's Unix socket.
//!
//! [`SocketWriter::try_send_line`] never blocks and never waits on I/O: it
//! puts the line in a bounded queue, or drops and counts it when the queue
//! is full. A dedicated thread (`wharf-telemetry`, with its own small tokio
//! runtime, so the broker's runtime never runs telemetry I/O) connects to
//! the socket, writes NDJSON lines, reads the shipper's cumulative
//! `{"ack":N}` replies and keeps what is unacknowledged. While the shipper
//! is away, or slow to acknowledge, lines go to a bounded spool on disk
//! (encrypted with `wharf-envelope`'s at-rest format), which is drained in order
//! once the shipper is back. What the writer did is counted in
//! [`WriterCounters`].

mod counters;
mod pump;
mod segment;
mod spool;

use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use wharf_envelope::KeyProvider;

pub use counters::{WriterCounters, WriterStats};
pub use segment::{SealedSegments, SegmentFormat, SegmentReader, SegmentWriter};

use crate::Error;

/// Settings of a [`SocketWriter`]. Build with [`SocketWriterConfig::new`]
/// and adjust the public fields; [`SocketWriter::start`] validates them.
#[derive(Debug, Clone)]
pub struct SocketWriterConfig {
    /// The shipper's Unix socket.
    pub socket_path: PathBuf,
    /// Directory of the spool's segment files (created if missing).
    pub spool_dir: PathBuf,
    /// Lines the in-memory queue holds before it drops (default 10,000).
    pub queue_capacity: usize,
    /// Bytes the spool's files may take before it drops (default 64 MiB).
    pub spool_max_bytes: u64,
    /// Lines sent and not yet acknowledged before new lines wait in the
    /// spool (default 10,000).
    pub max_unacked: usize,
    /// First delay between connection attempts (default 100 ms); doubles
    /// up to `reconnect_max` (default 5 s).
    pub reconnect_min: Duration,
    /// Longest delay between connection attempts.
    pub reconnect_max: Duration,
    /// With lines unacknowledged for this long the connection is dropped
    /// and made again, which resends them (default 30 s).
    pub ack_timeout: Duration,
    /// How spool segments are stored on disk: [`SealedSegments`], the
    /// at-rest encrypted format.
    pub segment_format: Arc<dyn SegmentFormat>,
}

impl SocketWriterConfig {
    /// Defaults for the given socket and spool directory; the spool is
    /// sealed under data keys from `keys` with the cluster in the
    /// encryption context.
    pub fn new(
        socket_path: impl Into<PathBuf>,
        spool_dir: impl Into<PathBuf>,
        keys: Arc<dyn KeyProvider>,
        cluster: &str,
    ) -> Self {
        Self {
            socket_path: socket_path.into(),
            spool_dir: spool_dir.into(),
            queue_capacity: 10_000,
            spool_max_bytes: 64 * 1024 * 1024,
            max_unacked: 10_000,
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(5),
            ack_timeout: Duration::from_secs(30),
            segment_format: Arc::new(SealedSegments::new(keys, cluster)),
        }
    }

    /// Refuses impossible values, naming the setting.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |key, reason: &str| {
            Err(Error::Config {
                key,
                reason: reason.into(),
            })
        };
        if self.queue_capacity == 0 {
            return bad("queue_capacity", "it must be at least 1");
        }
        if self.max_unacked == 0 {
            return bad("max_unacked", "it must be at least 1");
        }
        if self.spool_max_bytes < 64 * 1024 {
            return bad(
                "spool_max_bytes",
                "it must be at least 65536 bytes (64 KiB)",
            );
        }
        if self.reconnect_min.is_zero() || self.reconnect_max < self.reconnect_min {
            return bad(
                "reconnect_min",
                "it must be above zero and not above reconnect_max",
            );
        }
        if self.ack_timeout.is_zero() {
            return bad("ack_timeout", "it must be above zero");
        }
        Ok(())
    }
}

/// A cheap, cloneable handle on the telemetry writer. Dropping the last
/// handle stops the writer without waiting; call [`SocketWriter::shutdown`]
/// to flush first.
#[derive(Clone)]
pub struct SocketWriter {
    tx: mpsc::Sender<Vec<u8>>,
    counters: Arc<WriterCounters>,
    stop: Arc<Mutex<Stop>>,
}

struct Stop {
    signal: Option<oneshot::Sender<Duration>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for SocketWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketWriter")
            .field("stats", &self.stats())
            .finish()
    }
}

impl SocketWriter {
    /// Opens the spool (picking up what an earlier process left) and starts
    /// the telemetry thread. Does not wait for the shipper.
    pub fn start(cfg: SocketWriterConfig) -> Result<Self, Error> {
        cfg.validate()?;
        let (tx, rx) = mpsc::channel(cfg.queue_capacity);
        let (stop_tx, stop_rx) = oneshot::channel();
        let counters = Arc::new(WriterCounters::default());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread_counters = counters.clone();
        let thread = std::thread::Builder::new()
            .name("wharf-telemetry".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(Error::Thread(e)));
                        return;
                    }
                };
                rt.block_on(async move {
                    let spool = match spool::Spool::open(
                        &cfg.spool_dir,
                        cfg.segment_format.clone(),
                        cfg.spool_max_bytes,
                    )
                    .await
                    {
                        Ok(s) => s,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(()));
                    pump::Pump::new(cfg, rx, spool, thread_counters)
                        .run(stop_rx)
                        .await;
                });
            })
            .map_err(Error::Thread)?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                return Err(Error::Thread(std::io::Error::other(
                    "the telemetry thread ended while starting",
                )))
            }
        }
        Ok(Self {
            tx,
            counters,
            stop: Arc::new(Mutex::new(Stop {
                signal: Some(stop_tx),
                thread: Some(thread),
            })),
        })
    }

    /// Queues one NDJSON line (one JSON object, without the trailing
    /// newline). Never blocks: returns false, and counts the drop, when the
    /// queue is full or the writer has stopped.
    pub fn try_send_line(&self, line: impl Into<Vec<u8>>) -> bool {
        let line = line.into();
        debug_assert!(!line.contains(&b'\n'), "an NDJSON line has no newline");
        match self.tx.try_send(line) {
            Ok(()) => {
                self.counters.accepted.fetch_add(1, Relaxed);
                true
            }
            Err(_) => {
                self.counters.dropped_queue_full.fetch_add(1, Relaxed);
                false
            }
        }
    }

    /// Serializes `value` as one line and queues it (see
    /// [`try_send_line`](Self::try_send_line)).
    pub fn try_send_json(&self, value: &serde_json::Value) -> bool {
        // Serializing a Value cannot fail and never emits a raw newline.
        let line = serde_json::to_vec(value).unwrap_or_default();
        self.try_send_line(line)
    }

    /// The writer's counters, live.
    pub fn counters(&self) -> Arc<WriterCounters> {
        self.counters.clone()
    }

    /// A copy of the counters now.
    pub fn stats(&self) -> WriterStats {
        self.counters.snapshot()
    }

    /// Stops the writer: sends what is queued, waits up to `deadline` for
    /// the shipper's acks, keeps everything unacknowledged in the spool for
    /// the next start, and joins the thread. Later calls do nothing.
    pub fn shutdown(&self, deadline: Duration) {
        let (signal, thread) = {
            let mut stop = self.stop.lock().unwrap_or_else(|p| p.into_inner());
            (stop.signal.take(), stop.thread.take())
        };
        if let Some(signal) = signal {
            let _ = signal.send(deadline);
        }
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}
