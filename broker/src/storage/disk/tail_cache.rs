//! The most recently appended record batches, kept in memory so that
//! consumers at the tail of a partition (most of them, most of the time)
//! are served without reading and decrypting what was just written. This
//! is what the page cache does for Kafka, except that the page cache only
//! holds ciphertext here: bounded by one byte budget for the whole broker,
//! oldest batch out first, and never written anywhere.
//!
//! Entries are keyed by the partition log's incarnation (a number no other
//! opened log gets), so a deleted and recreated topic, or a log reopened
//! after a crash truncated its tail, never sees another's batches.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use bytes::Bytes;

use crate::storage::TailCacheStats;

/// Identifies one opened partition log for the cache's lifetime.
pub(super) type LogId = u64;

/// Recent batches under a byte budget (0 disables the cache).
#[derive(Debug, Default)]
pub(super) struct TailCache {
    budget: usize,
    next_log: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    read_ahead: AtomicU64,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    batches: HashMap<(LogId, i64), Bytes>,
    /// Insertion order, for eviction: (log, base offset).
    order: VecDeque<(LogId, i64)>,
    bytes: usize,
}

impl TailCache {
    /// A cache holding at most `budget` bytes of batches.
    pub(super) fn new(budget: usize) -> TailCache {
        TailCache {
            budget,
            ..TailCache::default()
        }
    }

    /// A fresh id for a log being opened.
    pub(super) fn new_log(&self) -> LogId {
        self.next_log.fetch_add(1, Ordering::Relaxed)
    }

    /// Keeps `batch` (whose first offset is `base_offset`), evicting the
    /// oldest batches to stay within the budget. A batch larger than the
    /// whole budget is not kept.
    pub(super) fn insert(&self, log: LogId, base_offset: i64, batch: &Bytes) {
        if batch.len() > self.budget {
            return;
        }
        let mut inner = self.inner.lock().expect("tail cache lock");
        while inner.bytes + batch.len() > self.budget {
            let Some(key) = inner.order.pop_front() else {
                break;
            };
            if let Some(old) = inner.batches.remove(&key) {
                inner.bytes -= old.len();
            }
        }
        if let Some(old) = inner.batches.insert((log, base_offset), batch.clone()) {
            inner.bytes -= old.len();
        } else {
            inner.order.push_back((log, base_offset));
        }
        inner.bytes += batch.len();
    }

    /// The batch of `log` starting at `base_offset`, if it is still held.
    pub(super) fn get(&self, log: LogId, base_offset: i64) -> Option<Bytes> {
        if self.budget == 0 {
            return None;
        }
        let found = self
            .inner
            .lock()
            .expect("tail cache lock")
            .batches
            .get(&(log, base_offset))
            .cloned();
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Whether the batch at `base_offset` is held (not counted as a hit or
    /// a miss).
    pub(super) fn contains(&self, log: LogId, base_offset: i64) -> bool {
        self.budget > 0
            && (self.inner.lock().expect("tail cache lock"))
                .batches
                .contains_key(&(log, base_offset))
    }

    /// Counts `n` batches served from the segments without a lookup here:
    /// read ahead of the fetch that got them.
    pub(super) fn count_read_ahead(&self, n: usize) {
        self.read_ahead.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Batches served from memory, looked up but read from disk, read from
    /// disk ahead of their fetch, and the bytes held now.
    pub(super) fn stats(&self) -> TailCacheStats {
        TailCacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            read_ahead: self.read_ahead.load(Ordering::Relaxed),
            held_bytes: self.inner.lock().expect("tail cache lock").bytes as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(len: usize, fill: u8) -> Bytes {
        Bytes::from(vec![fill; len])
    }

    #[test]
    fn keeps_the_newest_batches_within_the_budget() {
        let cache = TailCache::new(250);
        let log = cache.new_log();
        for base in 0..5 {
            cache.insert(log, base, &batch(100, base as u8));
        }
        assert_eq!(cache.stats().held_bytes, 200);
        assert!(cache.get(log, 2).is_none(), "the oldest batches go first");
        assert_eq!(cache.get(log, 3).unwrap(), batch(100, 3));
        assert_eq!(cache.get(log, 4).unwrap(), batch(100, 4));
        let s = cache.stats();
        assert_eq!((s.hits, s.misses), (2, 1));
    }

    #[test]
    fn logs_do_not_see_each_others_batches() {
        let cache = TailCache::new(1000);
        let (a, b) = (cache.new_log(), cache.new_log());
        cache.insert(a, 0, &batch(10, 1));
        assert!(cache.get(b, 0).is_none());
        assert_eq!(cache.get(a, 0).unwrap(), batch(10, 1));
    }

    #[test]
    fn oversize_batches_and_a_zero_budget_keep_nothing() {
        let cache = TailCache::new(50);
        let log = cache.new_log();
        cache.insert(log, 0, &batch(40, 1));
        cache.insert(log, 1, &batch(51, 2));
        assert_eq!(
            cache.stats().held_bytes,
            40,
            "a batch above the budget evicts nothing"
        );
        assert!(cache.get(log, 1).is_none());
        let off = TailCache::new(0);
        let log = off.new_log();
        off.insert(log, 0, &batch(1, 1));
        assert!(off.get(log, 0).is_none());
        assert_eq!(off.stats().held_bytes, 0);
    }

    #[test]
    fn inserting_a_base_offset_again_replaces_it() {
        let cache = TailCache::new(100);
        let log = cache.new_log();
        cache.insert(log, 7, &batch(30, 1));
        cache.insert(log, 7, &batch(20, 2));
        assert_eq!(cache.stats().held_bytes, 20);
        assert_eq!(cache.get(log, 7).unwrap(), batch(20, 2));
    }
}
