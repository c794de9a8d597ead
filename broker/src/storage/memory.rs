//! An in-memory storage engine with the same segment and retention rules
//! as the disk engine, for fast broker tests. Nothing survives the process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;

use super::{
    batch_index_for_offset, expired_segments, segments_below, Engine, LogPolicy, PartitionLog,
    SegmentInfo, StorageError,
};
use crate::protocol::batch::BatchHeader;

/// The in-memory engine. Clones share the same state files, and partition
/// logs reopened by name get their batches back, so restart scenarios
/// can be expressed too.
#[derive(Debug, Clone, Default)]
pub struct MemoryEngine {
    state: Arc<Mutex<HashMap<String, Vec<Bytes>>>>,
    logs: SharedLogs,
}

type SharedLogs = Arc<Mutex<HashMap<(String, i32), StoredLog>>>;

/// What a reopened partition gets back: its segments and log start offset.
#[derive(Debug, Clone, Default)]
struct StoredLog {
    segments: Vec<MemorySegment>,
    start: i64,
}

#[derive(Debug, Clone, Default)]
struct MemorySegment {
    created_ms: i64,
    size: u64,
    batches: Vec<(BatchHeader, Bytes)>,
}

/// One partition held in memory.
#[derive(Debug)]
pub struct MemoryLog {
    key: (String, i32),
    shared: SharedLogs,
    segments: Vec<MemorySegment>,
    headers: Vec<BatchHeader>,
    start: i64,
    next: i64,
    policy: LogPolicy,
}

impl MemoryLog {
    fn persist(&self) {
        self.shared.lock().expect("memory engine lock").insert(
            self.key.clone(),
            StoredLog {
                segments: self.segments.clone(),
                start: self.start,
            },
        );
    }

    fn first_stored_offset(&self) -> i64 {
        self.headers.first().map_or(self.next, |h| h.base_offset)
    }

    fn drop_segments(&mut self, n: usize) {
        let dropped: usize = self.segments.drain(..n).map(|s| s.batches.len()).sum();
        self.headers.drain(..dropped);
    }
}

#[async_trait]
impl PartitionLog for MemoryLog {
    fn log_start_offset(&self) -> i64 {
        self.start
    }
    fn next_offset(&self) -> i64 {
        self.next
    }
    fn headers(&self) -> Vec<BatchHeader> {
        self.headers.clone()
    }
    async fn append(
        &mut self,
        header: &BatchHeader,
        batch: Bytes,
        now_ms: i64,
    ) -> Result<(), StorageError> {
        let roll = match self.segments.last() {
            None => true,
            Some(s) => self
                .policy
                .should_roll(s.size, s.created_ms, batch.len() as u64, now_ms),
        };
        if roll {
            self.segments.push(MemorySegment {
                created_ms: now_ms,
                ..Default::default()
            });
        }
        let seg = self.segments.last_mut().expect("a segment");
        seg.size += batch.len() as u64;
        seg.batches.push((*header, batch));
        self.headers.push(*header);
        self.next = header.last_offset + 1;
        self.persist();
        Ok(())
    }
    async fn read(&mut self, offset: i64, max_bytes: usize) -> Result<Vec<Bytes>, StorageError> {
        let all: Vec<&(BatchHeader, Bytes)> = self
            .segments
            .iter()
            .flat_map(|s| s.batches.iter())
            .collect();
        let first = batch_index_for_offset(&self.headers, offset);
        let mut out = Vec::new();
        let mut used = 0;
        for (_, b) in all.iter().skip(first) {
            if !out.is_empty() && used + b.len() > max_bytes {
                break;
            }
            used += b.len();
            out.push(b.clone());
        }
        Ok(out)
    }
    fn batch_for_timestamp(&self, timestamp: i64) -> Option<BatchHeader> {
        self.headers
            .iter()
            .find(|h| h.max_timestamp >= timestamp)
            .copied()
    }
    async fn flush(&mut self) -> Result<(), StorageError> {
        Ok(())
    }
    async fn apply_retention(
        &mut self,
        policy: &LogPolicy,
        now_ms: i64,
    ) -> Result<usize, StorageError> {
        let infos: Vec<SegmentInfo> = self
            .segments
            .iter()
            .map(|s| SegmentInfo {
                size: s.size,
                max_timestamp: s
                    .batches
                    .iter()
                    .map(|b| b.0.max_timestamp)
                    .max()
                    .unwrap_or(s.created_ms),
            })
            .collect();
        let n = expired_segments(&infos, policy, now_ms);
        if n > 0 {
            self.drop_segments(n);
            self.start = self.start.max(self.first_stored_offset());
            self.persist();
        }
        Ok(n)
    }
    async fn delete_records_before(
        &mut self,
        offset: i64,
        now_ms: i64,
    ) -> Result<usize, StorageError> {
        let offset = offset.min(self.next);
        if offset <= self.start {
            return Ok(0);
        }
        self.start = offset;
        let active_below = self
            .segments
            .last()
            .and_then(|s| s.batches.last())
            .is_some_and(|(h, _)| h.last_offset < offset);
        if active_below {
            self.segments.push(MemorySegment {
                created_ms: now_ms,
                ..Default::default()
            });
        }
        let lasts: Vec<Option<i64>> = self
            .segments
            .iter()
            .map(|s| s.batches.last().map(|(h, _)| h.last_offset))
            .collect();
        let n = segments_below(&lasts, offset);
        self.drop_segments(n);
        self.persist();
        Ok(n)
    }
    fn set_policy(&mut self, policy: LogPolicy) {
        self.policy = policy;
    }
    fn size_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.size).sum()
    }
}

#[async_trait]
impl Engine for MemoryEngine {
    type Log = MemoryLog;

    async fn open_log(
        &self,
        topic: &str,
        partition: i32,
        policy: LogPolicy,
    ) -> Result<MemoryLog, StorageError> {
        let key = (topic.to_string(), partition);
        let stored = self
            .logs
            .lock()
            .expect("memory engine lock")
            .get(&key)
            .cloned()
            .unwrap_or_default();
        let segments = stored.segments;
        let headers: Vec<BatchHeader> = segments
            .iter()
            .flat_map(|s| s.batches.iter().map(|b| b.0))
            .collect();
        let next = headers.last().map_or(stored.start, |h| h.last_offset + 1);
        let start = headers
            .first()
            .map_or(next, |h| h.base_offset)
            .max(stored.start);
        Ok(MemoryLog {
            key,
            shared: self.logs.clone(),
            segments,
            headers,
            start,
            next,
            policy,
        })
    }
    async fn delete_topic(&self, topic: &str) -> Result<(), StorageError> {
        self.logs
            .lock()
            .expect("memory engine lock")
            .retain(|(t, _), _| t != topic);
        Ok(())
    }
    async fn read_state(&self, name: &str) -> Result<Vec<Bytes>, StorageError> {
        Ok(self
            .state
            .lock()
            .expect("memory engine lock")
            .get(name)
            .cloned()
            .unwrap_or_default())
    }
    async fn write_state(&self, name: &str, records: &[Bytes]) -> Result<(), StorageError> {
        self.state
            .lock()
            .expect("memory engine lock")
            .insert(name.to_string(), records.to_vec());
        Ok(())
    }
    async fn append_state(&self, name: &str, record: &[u8]) -> Result<(), StorageError> {
        self.state
            .lock()
            .expect("memory engine lock")
            .entry(name.to_string())
            .or_default()
            .push(Bytes::copy_from_slice(record));
        Ok(())
    }
}
