//! What the socket writer did, as counters anyone may read at any time.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Live counters of one [`SocketWriter`](super::SocketWriter); cheap to read,
/// shared with the metrics registry.
#[derive(Debug, Default)]
pub struct WriterCounters {
    pub(crate) accepted: AtomicU64,
    pub(crate) written: AtomicU64,
    pub(crate) acked: AtomicU64,
    pub(crate) spooled: AtomicU64,
    pub(crate) dropped_queue_full: AtomicU64,
    pub(crate) dropped_spool_full: AtomicU64,
    pub(crate) dropped_spool_error: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) connected: AtomicU64,
    pub(crate) unacked: AtomicU64,
    pub(crate) spool_pending: AtomicU64,
    pub(crate) spool_bytes: AtomicU64,
}

/// A copy of [`WriterCounters`] at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Lines taken into the queue.
    pub accepted: u64,
    /// Lines written to the shipper's socket, resends included.
    pub written: u64,
    /// Lines the shipper acknowledged.
    pub acked: u64,
    /// Lines appended to the spool (while the shipper was away or slow).
    pub spooled: u64,
    /// Lines dropped because the in-memory queue was full.
    pub dropped_queue_full: u64,
    /// Lines dropped because the spool had reached its size bound.
    pub dropped_spool_full: u64,
    /// Lines lost to a spool file that could not be written or read back.
    pub dropped_spool_error: u64,
    /// Connections made to the shipper after the first.
    pub reconnects: u64,
    /// 1 while connected to the shipper, else 0.
    pub connected: u64,
    /// Lines sent on the current connection and not acknowledged yet.
    pub unacked: u64,
    /// Lines held in the spool that the shipper has not acknowledged.
    pub spool_pending: u64,
    /// Bytes the spool's files take.
    pub spool_bytes: u64,
}

impl WriterStats {
    /// Every line dropped, whatever the reason.
    pub fn dropped(&self) -> u64 {
        self.dropped_queue_full + self.dropped_spool_full + self.dropped_spool_error
    }
}

impl WriterCounters {
    /// Reads every counter.
    pub fn snapshot(&self) -> WriterStats {
        WriterStats {
            accepted: self.accepted.load(Relaxed),
            written: self.written.load(Relaxed),
            acked: self.acked.load(Relaxed),
            spooled: self.spooled.load(Relaxed),
            dropped_queue_full: self.dropped_queue_full.load(Relaxed),
            dropped_spool_full: self.dropped_spool_full.load(Relaxed),
            dropped_spool_error: self.dropped_spool_error.load(Relaxed),
            reconnects: self.reconnects.load(Relaxed),
            connected: self.connected.load(Relaxed),
            unacked: self.unacked.load(Relaxed),
            spool_pending: self.spool_pending.load(Relaxed),
            spool_bytes: self.spool_bytes.load(Relaxed),
        }
    }
}
