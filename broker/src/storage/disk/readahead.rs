//! Reading ahead for consumers that catch up from the segments.
//!
//! Such a consumer fetches batch after batch from the segments. Each fetch
//! waited for its frames to be read and decrypted (a third of the broker's
//! CPU in a catch-up read) while the client sat idle, and then the broker
//! sat idle while the client parsed what it got. Now, once a log has
//! answered a fetch from the segments, it starts reading what the next
//! fetch from there will ask for on a blocking thread, so that the read
//! and decryption overlap the client's work on another core; the next
//! fetch at that offset takes the result instead of reading.
//!
//! Bounded by one byte budget for the whole broker (the oldest read-ahead
//! is dropped first) and keyed by log incarnation, like the tail cache: a
//! deleted and recreated topic never gets another's batches.

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::Bytes;
use tokio::task::JoinHandle;

use super::tail_cache::LogId;
use crate::storage::StorageError;

/// Reads under way or done, not yet taken by a fetch.
#[derive(Debug, Default)]
pub(super) struct Readaheads {
    budget: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    pending: VecDeque<Ahead>,
    bytes: usize,
}

/// What the fetch at `offset` of `log`, with a limit of at least
/// `max_bytes`, can answer with.
#[derive(Debug)]
struct Ahead {
    log: LogId,
    offset: i64,
    max_bytes: usize,
    plan: ReadPlan,
    task: JoinHandle<Result<Bytes, StorageError>>,
}

/// The batches a read-ahead covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ReadPlan {
    /// How many batches.
    pub(super) batches: usize,
    /// The offset after the last.
    pub(super) end: i64,
    /// Bytes of arena reserved to read them.
    pub(super) room: usize,
}

/// A read-ahead taken by the fetch it was for.
#[derive(Debug)]
pub(super) struct Taken {
    pub(super) plan: ReadPlan,
    pub(super) task: JoinHandle<Result<Bytes, StorageError>>,
}

impl Readaheads {
    /// Read-aheads holding at most `budget` bytes in all (0: none).
    pub(super) fn new(budget: usize) -> Readaheads {
        Readaheads {
            budget,
            ..Readaheads::default()
        }
    }

    /// Starts `read` on a blocking thread as what the fetch at `offset` of
    /// `log` will get, dropping the oldest read-aheads to stay within the
    /// budget (their reads finish and are thrown away). Does nothing when
    /// the plan alone is over the budget.
    pub(super) fn start<F>(
        &self,
        log: LogId,
        offset: i64,
        max_bytes: usize,
        plan: ReadPlan,
        read: F,
    ) where
        F: FnOnce() -> Result<Bytes, StorageError> + Send + 'static,
    {
        if plan.room > self.budget {
            return;
        }
        let task = tokio::task::spawn_blocking(read);
        let mut inner = self.lock();
        while inner.bytes + plan.room > self.budget {
            let Some(old) = inner.pending.pop_front() else {
                break;
            };
            inner.bytes -= old.plan.room;
        }
        inner.bytes += plan.room;
        inner.pending.push_back(Ahead {
            log,
            offset,
            max_bytes,
            plan,
            task,
        });
    }

    /// Takes the read-ahead for a fetch at `offset` of `log` limited to
    /// `max_bytes`, if one was started for that offset under a limit no
    /// larger (so that its batches are a right answer).
    pub(super) fn take(&self, log: LogId, offset: i64, max_bytes: usize) -> Option<Taken> {
        let mut inner = self.lock();
        let at = inner
            .pending
            .iter()
            .position(|a| a.log == log && a.offset == offset)?;
        let ahead = inner.pending.remove(at).expect("found above");
        inner.bytes -= ahead.plan.room;
        (ahead.max_bytes <= max_bytes).then_some(Taken {
            plan: ahead.plan,
            task: ahead.task,
        })
    }

    /// How many read-aheads wait for their fetch.
    #[cfg(test)]
    pub(super) fn pending(&self) -> usize {
        self.lock().pending.len()
    }

    /// Whether read-aheads are on.
    pub(super) fn enabled(&self) -> bool {
        self.budget > 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(room: usize) -> ReadPlan {
        ReadPlan {
            batches: 1,
            end: 10,
            room,
        }
    }

    #[tokio::test]
    async fn a_fetch_gets_the_read_started_for_its_offset_once() {
        let ahead = Readaheads::new(1 << 20);
        ahead.start(1, 5, 100, plan(10), || Ok(Bytes::from_static(b"batches")));
        assert!(ahead.take(1, 6, 100).is_none(), "another offset");
        assert!(ahead.take(2, 5, 100).is_none(), "another log");
        let taken = ahead.take(1, 5, 100).unwrap();
        assert_eq!(taken.plan, plan(10));
        assert_eq!(&taken.task.await.unwrap().unwrap()[..], b"batches");
        assert!(ahead.take(1, 5, 100).is_none(), "taken already");
    }

    #[tokio::test]
    async fn a_read_for_a_larger_limit_is_not_an_answer() {
        let ahead = Readaheads::new(1 << 20);
        ahead.start(1, 5, 100, plan(10), || Ok(Bytes::new()));
        assert!(ahead.take(1, 5, 99).is_none());
        // ... and it is gone, its memory no longer counted.
        assert!(ahead.take(1, 5, 100).is_none());
        assert_eq!(ahead.lock().bytes, 0);
    }

    #[tokio::test]
    async fn the_budget_drops_the_oldest_and_refuses_what_cannot_fit() {
        let ahead = Readaheads::new(100);
        for offset in 0..3 {
            ahead.start(1, offset, 100, plan(40), || Ok(Bytes::new()));
        }
        assert!(ahead.take(1, 0, 100).is_none(), "dropped for the third");
        assert!(ahead.take(1, 1, 100).is_some());
        ahead.start(1, 9, 100, plan(101), || Ok(Bytes::new()));
        assert!(ahead.take(1, 9, 100).is_none(), "over the whole budget");
        assert_eq!(ahead.lock().bytes, 40);
        assert!(!Readaheads::new(0).enabled());
    }
}
