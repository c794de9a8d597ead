//! PutRecordBatch batches as pure code: events (NDJSON lines) packed into
//! records of up to `record_bytes`, records into batches of at most
//! [`MAX_BATCH_RECORDS`] and [`MAX_BATCH_BYTES`]. An event that cannot fit
//! in one record is refused (`too_large`). With envelope encryption the
//! sizes count the encrypted, base64 form (an upper bound).
//!
//! <https://docs.aws.amazon.com/firehose/latest/APIReference/API_PutRecordBatch.html>

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::record::Record;
use crate::sinks::dead_letter::DeadEvent;
use crate::sinks::driver::{Batcher, Owing};

/// Most records in one PutRecordBatch.
pub const MAX_BATCH_RECORDS: usize = 500;
/// Most bytes in one PutRecordBatch.
pub const MAX_BATCH_BYTES: usize = 4 << 20;
/// Largest record (before base64 encoding by the SDK).
pub const MAX_RECORD_BYTES: usize = 1000 << 10;

/// Header room reserved for an encrypted record (context, wrapped key).
const HEADER_ROOM: usize = 4096;
/// Per-frame overhead of an AWS Encryption SDK message (sequence number,
/// IV, tag), at the default 4096-byte frame length.
const FRAME_OVERHEAD: usize = 36;
const FRAME: usize = 4096;

/// Largest plaintext whose encrypted, base64, newline-ended form fits in
/// `limit` bytes.
pub fn max_plain_bytes(limit: usize) -> usize {
    let cap = (limit - 1) / 4 * 3;
    (cap - HEADER_ROOM - FRAME_OVERHEAD) * FRAME / (FRAME + FRAME_OVERHEAD)
}

/// Upper bound of the record size for `plain` bytes of events.
pub fn encoded_bound(plain: usize, encrypted: bool) -> usize {
    if !encrypted {
        return plain;
    }
    let sealed = plain + (plain / FRAME + 1) * FRAME_OVERHEAD + HEADER_ROOM;
    sealed.div_ceil(3) * 4 + 1
}

/// One Firehose record: newline-delimited events.
#[derive(Debug, Default)]
pub struct Packed {
    /// The events' NDJSON (plaintext).
    pub data: Vec<u8>,
    /// The records they come from.
    pub events: Vec<Arc<Record>>,
}

/// A PutRecordBatch's worth of records.
#[derive(Debug)]
pub struct RecordBatch {
    /// The records.
    pub records: Vec<Packed>,
    min_seq: u64,
}

impl Owing for RecordBatch {
    fn min_seq(&self) -> u64 {
        self.min_seq
    }
}

struct Open {
    sealed: Vec<Packed>,
    sealed_bytes: usize,
    filling: Packed,
    min_seq: u64,
    opened: Instant,
}

/// Packs events into records and records into batches.
pub struct FirehoseBatcher {
    pack: usize,
    encrypted: bool,
    max_age: Duration,
    open: Option<Open>,
}

impl FirehoseBatcher {
    /// Records of up to `pack` plaintext bytes; `encrypted` sizes them as
    /// encrypted base64.
    pub fn new(pack: usize, encrypted: bool, max_age: Duration) -> FirehoseBatcher {
        FirehoseBatcher {
            pack,
            encrypted,
            max_age,
            open: None,
        }
    }

    fn close(&mut self, ready: &mut Vec<RecordBatch>) {
        if let Some(mut o) = self.open.take() {
            if !o.filling.events.is_empty() {
                o.sealed.push(o.filling);
            }
            ready.push(RecordBatch {
                records: o.sealed,
                min_seq: o.min_seq,
            });
        }
    }

    /// Seals the record being filled into the batch, closing the batch
    /// first when the record would not fit in it.
    fn seal(&mut self, ready: &mut Vec<RecordBatch>) {
        let Some(o) = self.open.as_mut() else { return };
        let size = encoded_bound(o.filling.data.len(), self.encrypted);
        if o.sealed.len() + 1 > MAX_BATCH_RECORDS || o.sealed_bytes + size > MAX_BATCH_BYTES {
            let filling = std::mem::take(&mut o.filling);
            let min_seq = filling.events.iter().map(|r| r.seq).min().unwrap_or(0);
            self.close(ready);
            self.open = Some(Open {
                sealed: vec![filling],
                sealed_bytes: size,
                filling: Packed::default(),
                min_seq,
                opened: Instant::now(),
            });
            return;
        }
        let filling = std::mem::take(&mut o.filling);
        o.sealed.push(filling);
        o.sealed_bytes += size;
    }
}

impl Batcher for FirehoseBatcher {
    type Batch = RecordBatch;

    fn add(&mut self, r: Arc<Record>, ready: &mut Vec<RecordBatch>, dead: &mut Vec<DeadEvent>) {
        let mut line = Vec::with_capacity(r.line.len() + 64);
        r.write_ndjson(&mut line);
        if line.len() > self.pack {
            dead.push(DeadEvent::new(r, "too_large"));
            return;
        }
        let full = self
            .open
            .as_ref()
            .is_some_and(|o| o.filling.data.len() + line.len() > self.pack);
        if full {
            self.seal(ready);
        }
        let o = self.open.get_or_insert_with(|| Open {
            sealed: Vec::new(),
            sealed_bytes: 0,
            filling: Packed::default(),
            min_seq: r.seq,
            opened: Instant::now(),
        });
        o.min_seq = o.min_seq.min(r.seq);
        o.filling.data.extend_from_slice(&line);
        o.filling.events.push(r);
    }

    fn take_expired(&mut self, now: Instant, ready: &mut Vec<RecordBatch>) {
        if self
            .open
            .as_ref()
            .is_some_and(|o| o.opened + self.max_age <= now)
        {
            self.close(ready);
        }
    }

    fn take_all(&mut self, ready: &mut Vec<RecordBatch>) {
        self.close(ready);
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.open.as_ref().map(|o| o.opened + self.max_age)
    }

    fn min_open_seq(&self) -> Option<u64> {
        self.open.as_ref().map(|o| o.min_seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Kind;

    fn rec(seq: u64, len: usize) -> Arc<Record> {
        Arc::new(Record {
            seq,
            id: uuid::Uuid::now_v7(),
            kind: Kind::Log,
            ts_millis: 0,
            source: Arc::from("b"),
            line: format!(r#"{{"x":"{}"}}"#, "a".repeat(len)).into_bytes(),
        })
    }

    fn run(b: &mut FirehoseBatcher, recs: Vec<Arc<Record>>) -> (Vec<RecordBatch>, Vec<DeadEvent>) {
        let (mut ready, mut dead) = (Vec::new(), Vec::new());
        for r in recs {
            b.add(r, &mut ready, &mut dead);
        }
        b.take_all(&mut ready);
        (ready, dead)
    }

    fn check(batches: &[RecordBatch], pack: usize, encrypted: bool) {
        for b in batches {
            assert!(!b.records.is_empty());
            assert!(b.records.len() <= MAX_BATCH_RECORDS);
            let bytes: usize = b
                .records
                .iter()
                .map(|r| encoded_bound(r.data.len(), encrypted))
                .sum();
            assert!(bytes <= MAX_BATCH_BYTES, "{bytes}");
            for r in &b.records {
                assert!(r.data.len() <= pack);
                assert!(encoded_bound(r.data.len(), encrypted) <= MAX_RECORD_BYTES);
                assert_eq!(
                    r.data.iter().filter(|&&c| c == b'\n').count(),
                    r.events.len()
                );
            }
        }
    }

    #[test]
    fn small_events_are_packed_newline_delimited() {
        let mut b = FirehoseBatcher::new(10_000, false, Duration::from_secs(1));
        let (batches, dead) = run(&mut b, (0..1000).map(|i| rec(i, 50)).collect());
        assert!(dead.is_empty());
        check(&batches, 10_000, false);
        assert_eq!(batches.len(), 1);
        let events: usize = batches[0].records.iter().map(|r| r.events.len()).sum();
        assert_eq!(events, 1000);
        // ~110 bytes each: ~90 per record, so ~12 records rather than 1000.
        assert!(
            batches[0].records.len() <= 13,
            "{}",
            batches[0].records.len()
        );
    }

    #[test]
    fn batches_hold_at_most_500_records_and_4_mib() {
        // One event per record (pack = event size): 500 records a batch.
        let mut b = FirehoseBatcher::new(200, false, Duration::from_secs(1));
        let (batches, _) = run(&mut b, (0..1200).map(|i| rec(i, 100)).collect());
        check(&batches, 200, false);
        assert_eq!(batches[0].records.len(), 500);
        assert_eq!(batches.iter().map(|b| b.records.len()).sum::<usize>(), 1200);
        // 900 KiB records: 4 per 4 MiB batch.
        let pack = 900 << 10;
        let mut b = FirehoseBatcher::new(pack, false, Duration::from_secs(1));
        let (batches, _) = run(&mut b, (0..10).map(|i| rec(i, pack - 100)).collect());
        check(&batches, pack, false);
        assert_eq!(batches[0].records.len(), 4);
        assert_eq!(batches[0].min_seq(), 0);
        assert_eq!(batches[1].min_seq(), 4);
    }

    #[test]
    fn encrypted_records_fit_after_base64_and_too_large_events_are_refused() {
        let pack = max_plain_bytes(MAX_RECORD_BYTES);
        assert!(encoded_bound(pack, true) <= MAX_RECORD_BYTES);
        assert!(pack > 700 << 10, "{pack}");
        let mut b = FirehoseBatcher::new(pack, true, Duration::from_secs(1));
        let (batches, dead) = run(
            &mut b,
            vec![
                rec(0, 100),
                rec(1, pack + 1),
                rec(2, 300 << 10),
                rec(3, 500 << 10),
            ],
        );
        check(&batches, pack, true);
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].reason, "too_large");
        assert_eq!(dead[0].record.seq, 1);
    }
}
