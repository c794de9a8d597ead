//! Storage engines: where partitions keep their record batches and the
//! broker keeps its small state files (topic metadata, committed offsets).
//!
//! The traits speak protocol-level types: raw record batches as produced
//! (offsets already assigned) and offsets. [`memory::MemoryEngine`] keeps
//! everything in memory for fast tests; [`disk::DiskEngine`] writes
//! segment files through one at-rest seam ([`disk::frames`]). Broker
//! scenarios in `broker::tests` run against both.

pub mod disk;
pub mod memory;

use async_trait::async_trait;
use bytes::Bytes;

use crate::protocol::batch::BatchHeader;

/// When a partition starts a new segment and when it drops old ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogPolicy {
    /// Roll when the active segment would grow past this many bytes.
    pub segment_bytes: u64,
    /// Roll when the active segment is older than this (milliseconds).
    pub segment_ms: i64,
    /// Delete segments whose newest record is older than this; -1 keeps forever.
    pub retention_ms: i64,
    /// Delete the oldest segments while the partition is larger; -1 means no limit.
    pub retention_bytes: i64,
}

impl Default for LogPolicy {
    fn default() -> Self {
        LogPolicy {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 3600 * 1000,
            retention_ms: 7 * 24 * 3600 * 1000,
            retention_bytes: -1,
        }
    }
}

impl LogPolicy {
    /// Whether a segment of `size` bytes created at `created_ms` must be
    /// closed before `incoming` more bytes are appended at `now_ms`.
    pub fn should_roll(&self, size: u64, created_ms: i64, incoming: u64, now_ms: i64) -> bool {
        size > 0 && (size + incoming > self.segment_bytes || now_ms - created_ms >= self.segment_ms)
    }
}

/// Summary of a closed or active segment, for retention decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Bytes of record batches held.
    pub size: u64,
    /// Largest record timestamp held (or creation time when empty).
    pub max_timestamp: i64,
}

/// Indexes of the oldest segments that `policy` deletes at `now_ms`.
/// The active (last) segment is never deleted.
pub fn expired_segments(segments: &[SegmentInfo], policy: &LogPolicy, now_ms: i64) -> usize {
    if segments.len() <= 1 {
        return 0;
    }
    let closed = &segments[..segments.len() - 1];
    let mut total: i64 = segments.iter().map(|s| s.size as i64).sum();
    let mut n = 0;
    for seg in closed {
        let too_old = policy.retention_ms >= 0 && now_ms - seg.max_timestamp > policy.retention_ms;
        let too_big =
            policy.retention_bytes >= 0 && total - seg.size as i64 >= policy.retention_bytes;
        if !(too_old || too_big) {
            break;
        }
        total -= seg.size as i64;
        n += 1;
    }
    n
}

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A file could not be read or written.
    #[error("storage I/O on {path} failed: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file's contents are not what the broker wrote.
    #[error("storage file {path} is corrupt: {reason}")]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The at-rest encryption layer refused a file.
    #[error("at-rest encryption of {path} failed: {reason}")]
    Crypto {
        /// The file.
        path: String,
        /// What the envelope layer reported.
        reason: String,
    },
}

impl StorageError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        StorageError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// One partition's log.
#[async_trait]
pub trait PartitionLog: Send + Sync {
    /// First offset still stored.
    fn log_start_offset(&self) -> i64;
    /// Offset the next appended record gets (the high watermark).
    fn next_offset(&self) -> i64;
    /// Headers of every stored batch, oldest first.
    fn headers(&self) -> Vec<BatchHeader>;
    /// Appends one batch whose offsets were assigned by the broker.
    async fn append(
        &mut self,
        header: &BatchHeader,
        batch: Bytes,
        now_ms: i64,
    ) -> Result<(), StorageError>;
    /// Whole batches from the one holding `offset`, at most `max_bytes`
    /// except that the first batch is always returned whole, as runs:
    /// each `Bytes` is one batch or several back to back.
    async fn read(&mut self, offset: i64, max_bytes: usize) -> Result<Vec<Bytes>, StorageError>;
    /// The first stored batch whose max timestamp is at least `timestamp`.
    fn batch_for_timestamp(&self, timestamp: i64) -> Option<BatchHeader>;
    /// Makes every appended batch durable.
    async fn flush(&mut self) -> Result<(), StorageError>;
    /// Deletes whole segments expired by `policy`; returns how many.
    async fn apply_retention(
        &mut self,
        policy: &LogPolicy,
        now_ms: i64,
    ) -> Result<usize, StorageError>;
    /// Moves the log start offset up to `offset` (DeleteRecords), durably
    /// before returning, and deletes the segments wholly below it; the
    /// active segment is rolled first when every record in it is below.
    /// `offset` is clamped to the log end; an offset at or below the
    /// current start changes nothing. Returns the segments deleted.
    async fn delete_records_before(
        &mut self,
        offset: i64,
        now_ms: i64,
    ) -> Result<usize, StorageError>;
    /// Replaces the roll policy (segment size and age) used by appends.
    fn set_policy(&mut self, policy: LogPolicy);
    /// Bytes stored.
    fn size_bytes(&self) -> u64;
}

/// A storage engine: opens partition logs and keeps named state files.
#[async_trait]
pub trait Engine: Send + Sync + 'static {
    /// The partition log type.
    type Log: PartitionLog + 'static;
    /// Opens (recovering if needed) or creates a partition's log.
    async fn open_log(
        &self,
        topic: &str,
        partition: i32,
        policy: LogPolicy,
    ) -> Result<Self::Log, StorageError>;
    /// Removes every partition of `topic`.
    async fn delete_topic(&self, topic: &str) -> Result<(), StorageError>;
    /// Records of the state file `name` (empty when it does not exist).
    async fn read_state(&self, name: &str) -> Result<Vec<Bytes>, StorageError>;
    /// Atomically replaces the state file `name` with `records`.
    async fn write_state(&self, name: &str, records: &[Bytes]) -> Result<(), StorageError>;
    /// Appends one record to the state file `name` and makes it durable.
    async fn append_state(&self, name: &str, record: &[u8]) -> Result<(), StorageError>;
    /// The counters of the engine's cache of recent batches, if it has one.
    fn tail_cache_stats(&self) -> Option<TailCacheStats> {
        None
    }
}

/// What a cache of recently appended batches has done so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TailCacheStats {
    /// Fetched batches served from memory.
    pub hits: u64,
    /// Fetched batches read from the segments instead, during the fetch.
    pub misses: u64,
    /// Fetched batches read from the segments ahead of the fetch.
    pub read_ahead: u64,
    /// Bytes of batches held now.
    pub held_bytes: u64,
}

/// How many of the oldest `segments` (given by their last offset, `None`
/// when empty) lie wholly below `offset`; the last (active) one never counts.
pub(crate) fn segments_below(last_offsets: &[Option<i64>], offset: i64) -> usize {
    let closed = last_offsets.len().saturating_sub(1);
    last_offsets[..closed]
        .iter()
        .take_while(|last| last.is_none_or(|l| l < offset))
        .count()
}

/// Index of the first batch in `headers` that holds `offset` or comes after it.
pub(crate) fn batch_index_for_offset(headers: &[BatchHeader], offset: i64) -> usize {
    headers.partition_point(|h| h.last_offset < offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_by_bytes_keeps_the_active_segment() {
        let segs = [SegmentInfo {
            size: 100,
            max_timestamp: 0,
        }; 4];
        let policy = LogPolicy {
            retention_bytes: 150,
            retention_ms: -1,
            ..LogPolicy::default()
        };
        assert_eq!(expired_segments(&segs, &policy, 0), 2);
        let policy = LogPolicy {
            retention_bytes: 0,
            retention_ms: -1,
            ..LogPolicy::default()
        };
        assert_eq!(expired_segments(&segs, &policy, 0), 3);
    }

    #[test]
    fn retention_by_time_stops_at_the_first_young_segment() {
        let segs = [
            SegmentInfo {
                size: 1,
                max_timestamp: 10,
            },
            SegmentInfo {
                size: 1,
                max_timestamp: 500,
            },
            SegmentInfo {
                size: 1,
                max_timestamp: 20,
            },
            SegmentInfo {
                size: 1,
                max_timestamp: 30,
            },
        ];
        let policy = LogPolicy {
            retention_ms: 100,
            ..LogPolicy::default()
        };
        assert_eq!(expired_segments(&segs, &policy, 550), 1);
    }
}
