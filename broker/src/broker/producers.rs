//! Idempotent-producer bookkeeping for one partition: the last batches of
//! each producer id, so that a retried batch is answered with its
//! original offset instead of being written twice, and a gap in sequence
//! numbers is refused.

use std::collections::{HashMap, VecDeque};

use crate::protocol::batch::BatchHeader;

/// Kafka keeps the last five batches per producer (max.in.flight = 5).
const RECENT_BATCHES: usize = 5;

/// Kafka's DUPLICATE_SEQUENCE is answered as success; these are the errors.
pub(crate) const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
pub(crate) const INVALID_PRODUCER_EPOCH: i16 = 47;

#[derive(Debug, Clone, Default)]
struct ProducerState {
    epoch: i16,
    recent: VecDeque<(i32, i32, i64)>,
}

/// What to do with an incoming batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SequenceCheck {
    /// Not idempotent, or next in sequence: write it.
    Append,
    /// Already written at this base offset: answer without writing.
    Duplicate(i64),
    /// Refuse with this Kafka error code.
    Refuse(i16),
}

/// Every producer's recent batches on one partition.
#[derive(Debug, Default)]
pub(crate) struct Producers {
    by_id: HashMap<i64, ProducerState>,
}

fn next_seq(seq: i32) -> i32 {
    if seq == i32::MAX {
        0
    } else {
        seq + 1
    }
}

impl Producers {
    /// Rebuilds the state from stored batch headers, oldest first.
    pub(crate) fn rebuild(headers: &[BatchHeader]) -> Producers {
        let mut p = Producers::default();
        for h in headers {
            p.record(h);
        }
        p
    }

    /// Decides whether `batch` (offsets not yet assigned) may be written.
    pub(crate) fn check(&self, batch: &BatchHeader) -> SequenceCheck {
        if batch.producer_id < 0 || batch.base_sequence < 0 {
            return SequenceCheck::Append;
        }
        let Some(state) = self.by_id.get(&batch.producer_id) else {
            // First batch we see from this producer (or its state expired
            // with retention): accept it as the start of its sequence.
            return SequenceCheck::Append;
        };
        if batch.producer_epoch < state.epoch {
            return SequenceCheck::Refuse(INVALID_PRODUCER_EPOCH);
        }
        if batch.producer_epoch > state.epoch {
            return if batch.base_sequence == 0 {
                SequenceCheck::Append
            } else {
                SequenceCheck::Refuse(OUT_OF_ORDER_SEQUENCE_NUMBER)
            };
        }
        let last = batch.last_sequence();
        if let Some(&(_, _, offset)) = state
            .recent
            .iter()
            .find(|(first, l, _)| *first == batch.base_sequence && *l == last)
        {
            return SequenceCheck::Duplicate(offset);
        }
        match state.recent.back() {
            Some(&(_, l, _)) if next_seq(l) != batch.base_sequence => {
                SequenceCheck::Refuse(OUT_OF_ORDER_SEQUENCE_NUMBER)
            }
            _ => SequenceCheck::Append,
        }
    }

    /// Remembers a written batch (offsets assigned).
    pub(crate) fn record(&mut self, batch: &BatchHeader) {
        if batch.producer_id < 0 || batch.base_sequence < 0 {
            return;
        }
        let state = self.by_id.entry(batch.producer_id).or_default();
        if batch.producer_epoch != state.epoch {
            state.epoch = batch.producer_epoch;
            state.recent.clear();
        }
        state.recent.push_back((
            batch.base_sequence,
            batch.last_sequence(),
            batch.base_offset,
        ));
        if state.recent.len() > RECENT_BATCHES {
            state.recent.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(pid: i64, epoch: i16, seq: i32, n: i64, base: i64) -> BatchHeader {
        BatchHeader {
            base_offset: base,
            last_offset: base + n - 1,
            record_count: n as i32,
            max_timestamp: 0,
            base_timestamp: 0,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            transactional: false,
            control: false,
            size: 100,
        }
    }

    #[test]
    fn retried_batch_is_a_duplicate_with_its_first_offset() {
        let mut p = Producers::default();
        p.record(&batch(1, 0, 0, 10, 100));
        p.record(&batch(1, 0, 10, 5, 110));
        assert_eq!(
            p.check(&batch(1, 0, 0, 10, 0)),
            SequenceCheck::Duplicate(100)
        );
        assert_eq!(
            p.check(&batch(1, 0, 10, 5, 0)),
            SequenceCheck::Duplicate(110)
        );
        assert_eq!(p.check(&batch(1, 0, 15, 1, 0)), SequenceCheck::Append);
    }

    #[test]
    fn gaps_and_old_epochs_are_refused() {
        let mut p = Producers::default();
        p.record(&batch(1, 3, 0, 10, 0));
        assert_eq!(
            p.check(&batch(1, 3, 11, 1, 0)),
            SequenceCheck::Refuse(OUT_OF_ORDER_SEQUENCE_NUMBER)
        );
        assert_eq!(
            p.check(&batch(1, 2, 10, 1, 0)),
            SequenceCheck::Refuse(INVALID_PRODUCER_EPOCH)
        );
        assert_eq!(p.check(&batch(1, 4, 0, 1, 0)), SequenceCheck::Append);
        assert_eq!(p.check(&batch(2, 0, 0, 1, 0)), SequenceCheck::Append);
    }

    #[test]
    fn state_is_rebuilt_from_stored_headers() {
        let p = Producers::rebuild(&[
            batch(9, 0, 0, 3, 0),
            batch(-1, -1, -1, 2, 3),
            batch(9, 0, 3, 3, 5),
        ]);
        assert_eq!(p.check(&batch(9, 0, 3, 3, 0)), SequenceCheck::Duplicate(5));
        assert_eq!(p.check(&batch(9, 0, 6, 1, 0)), SequenceCheck::Append);
    }
}
