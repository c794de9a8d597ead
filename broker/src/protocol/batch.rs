//! Record batches (magic v2) as they travel and as they are stored.
//!
//! The broker never decompresses records: it reads the 61-byte batch
//! header, checks the CRC, rewrites the base offset (outside the CRC'd
//! range) and, for `LogAppendTime` topics, the max timestamp and the
//! timestamp-type bit (inside it, so the CRC is recomputed), exactly as
//! Kafka does.

use bytes::{Bytes, BytesMut};

/// Bytes before the first record: the v2 batch header.
pub const BATCH_HEADER_BYTES: usize = 61;
const LENGTH_OFFSET: usize = 8;
const MAGIC_OFFSET: usize = 16;
const CRC_OFFSET: usize = 17;
const ATTRIBUTES_OFFSET: usize = 21;
const LAST_OFFSET_DELTA_OFFSET: usize = 23;
const BASE_TIMESTAMP_OFFSET: usize = 27;
const MAX_TIMESTAMP_OFFSET: usize = 35;
const PRODUCER_ID_OFFSET: usize = 43;
const PRODUCER_EPOCH_OFFSET: usize = 51;
const BASE_SEQUENCE_OFFSET: usize = 53;
const RECORDS_COUNT_OFFSET: usize = 57;
const TIMESTAMP_TYPE_BIT: i16 = 1 << 3;
const TRANSACTIONAL_BIT: i16 = 1 << 4;
const CONTROL_BIT: i16 = 1 << 5;

/// Why produced bytes were refused (Kafka's CORRUPT_MESSAGE or
/// UNSUPPORTED_FOR_MESSAGE_FORMAT).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BatchError {
    /// The bytes end inside a batch.
    #[error("record batch is truncated")]
    Truncated,
    /// Magic 0 or 1 (message sets from before Kafka 0.11).
    #[error(
        "record batch magic {0} is not supported; use a client that writes magic 2 (Kafka 0.11+)"
    )]
    OldMagic(i8),
    /// The CRC does not match.
    #[error("record batch CRC mismatch")]
    Crc,
    /// Counts or deltas are negative or inconsistent.
    #[error("record batch header is inconsistent: {0}")]
    Inconsistent(&'static str),
}

/// What the broker needs to know about one batch, read from its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// First offset in the batch.
    pub base_offset: i64,
    /// `base_offset + last_offset_delta`.
    pub last_offset: i64,
    /// Number of records.
    pub record_count: i32,
    /// Largest timestamp in the batch.
    pub max_timestamp: i64,
    /// Timestamp of the first record.
    pub base_timestamp: i64,
    /// Idempotent producer id, or -1.
    pub producer_id: i64,
    /// Producer epoch, or -1.
    pub producer_epoch: i16,
    /// First sequence number, or -1.
    pub base_sequence: i32,
    /// Whether this batch is part of a transaction.
    pub transactional: bool,
    /// Whether this batch holds control records.
    pub control: bool,
    /// Total size of the batch in bytes, header included.
    pub size: usize,
}

impl BatchHeader {
    /// Sequence number of the batch's last record.
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return -1;
        }
        let delta = (self.last_offset - self.base_offset) as i32;
        // Sequences wrap at i32::MAX back to 0, as in Kafka.
        ((self.base_sequence as i64 + delta as i64) % (i32::MAX as i64 + 1)) as i32
    }
}

fn i16_at(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn i64_at(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Reads and checks the header of the batch at the start of `bytes`.
pub fn read_header(bytes: &[u8], check_crc: bool) -> Result<BatchHeader, BatchError> {
    if bytes.len() < MAGIC_OFFSET + 1 {
        return Err(BatchError::Truncated);
    }
    let magic = bytes[MAGIC_OFFSET] as i8;
    if magic != 2 {
        return Err(BatchError::OldMagic(magic));
    }
    if bytes.len() < BATCH_HEADER_BYTES {
        return Err(BatchError::Truncated);
    }
    let length = i32_at(bytes, LENGTH_OFFSET);
    if length < (BATCH_HEADER_BYTES - 12) as i32 {
        return Err(BatchError::Inconsistent(
            "batch length is smaller than its header",
        ));
    }
    let size = length as usize + 12;
    if bytes.len() < size {
        return Err(BatchError::Truncated);
    }
    let batch = &bytes[..size];
    if check_crc {
        let crc = i32_at(batch, CRC_OFFSET) as u32;
        if crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..]) != crc {
            return Err(BatchError::Crc);
        }
    }
    let attributes = i16_at(batch, ATTRIBUTES_OFFSET);
    let base_offset = i64_at(batch, 0);
    let delta = i32_at(batch, LAST_OFFSET_DELTA_OFFSET);
    let record_count = i32_at(batch, RECORDS_COUNT_OFFSET);
    if delta < 0 || record_count < 0 {
        return Err(BatchError::Inconsistent(
            "negative record count or offset delta",
        ));
    }
    Ok(BatchHeader {
        base_offset,
        last_offset: base_offset + delta as i64,
        record_count,
        max_timestamp: i64_at(batch, MAX_TIMESTAMP_OFFSET),
        base_timestamp: i64_at(batch, BASE_TIMESTAMP_OFFSET),
        producer_id: i64_at(batch, PRODUCER_ID_OFFSET),
        producer_epoch: i16_at(batch, PRODUCER_EPOCH_OFFSET),
        base_sequence: i32_at(batch, BASE_SEQUENCE_OFFSET),
        transactional: attributes & TRANSACTIONAL_BIT != 0,
        control: attributes & CONTROL_BIT != 0,
        size,
    })
}

/// Splits a produce request's `records` into checked batches.
pub fn split_batches(records: &Bytes) -> Result<Vec<(BatchHeader, Bytes)>, BatchError> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < records.len() {
        let header = read_header(&records[at..], true)?;
        out.push((header, records.slice(at..at + header.size)));
        at += header.size;
    }
    Ok(out)
}

/// Reads the headers of stored (already checked) batches, e.g. on recovery.
pub fn stored_header(batch: &[u8]) -> Result<BatchHeader, BatchError> {
    read_header(batch, false)
}

/// Gives the batch its broker-assigned base offset and, when
/// `log_append_time` is set, stamps it with that time as Kafka does.
pub fn assign(batch: &Bytes, base_offset: i64, log_append_time: Option<i64>) -> Bytes {
    let mut out = BytesMut::from(&batch[..]);
    out[..8].copy_from_slice(&base_offset.to_be_bytes());
    if let Some(now) = log_append_time {
        let attributes = i16_at(&out, ATTRIBUTES_OFFSET) | TIMESTAMP_TYPE_BIT;
        out[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attributes.to_be_bytes());
        out[MAX_TIMESTAMP_OFFSET..MAX_TIMESTAMP_OFFSET + 8].copy_from_slice(&now.to_be_bytes());
        let crc = crc32c::crc32c(&out[ATTRIBUTES_OFFSET..]);
        out[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    }
    out.freeze()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
        TimestampType,
    };

    /// A batch of `n` records as a client would produce it, record `i`
    /// stamped `1_700_000_000_000 + i`.
    pub(crate) fn client_batch(
        n: usize,
        compression: Compression,
        producer: Option<(i64, i32)>,
    ) -> Bytes {
        encode_records(
            n,
            compression,
            producer,
            |i| 1_700_000_000_000 + i as i64,
            |i| Bytes::from(format!("value-{i}")),
        )
    }

    /// A batch of `n` records, record `i` stamped `timestamp(i)` with value
    /// `value(i)`.
    pub(crate) fn encode_records(
        n: usize,
        compression: Compression,
        producer: Option<(i64, i32)>,
        timestamp: impl Fn(usize) -> i64,
        value: impl Fn(usize) -> Bytes,
    ) -> Bytes {
        let records: Vec<Record> = (0..n)
            .map(|i| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: producer.map_or(-1, |p| p.0),
                producer_epoch: if producer.is_some() { 0 } else { -1 },
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                // The encoder splits batches where offset - sequence changes.
                sequence: producer.map_or(i as i32 - 1, |p| p.1 + i as i32),
                timestamp: timestamp(i),
                key: None,
                value: Some(value(i)),
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression,
            },
        )
        .unwrap();
        buf.freeze()
    }

    #[test]
    fn reads_header_of_a_compressed_batch() {
        let batch = client_batch(5, Compression::Zstd, Some((7, 10)));
        let h = read_header(&batch, true).unwrap();
        assert_eq!((h.base_offset, h.last_offset, h.record_count), (0, 4, 5));
        assert_eq!(
            (h.producer_id, h.base_sequence, h.last_sequence()),
            (7, 10, 14)
        );
        assert_eq!(h.size, batch.len());
    }

    #[test]
    fn assigned_offsets_keep_the_crc_valid_and_decode() {
        let batch = client_batch(3, Compression::Gzip, None);
        let stored = assign(&batch, 1000, Some(1_800_000_000_000));
        let h = read_header(&stored, true).unwrap();
        assert_eq!(
            (h.base_offset, h.last_offset, h.max_timestamp),
            (1000, 1002, 1_800_000_000_000)
        );
        let mut buf = stored.clone();
        let set = RecordBatchDecoder::decode(&mut buf).unwrap();
        assert_eq!(set.records[2].offset, 1002);
        assert_eq!(set.records[2].value.as_deref(), Some(&b"value-2"[..]));
    }

    #[test]
    fn corrupt_and_truncated_batches_are_refused() {
        let batch = client_batch(2, Compression::None, None);
        let mut bad = BytesMut::from(&batch[..]);
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        assert_eq!(split_batches(&bad.freeze()).unwrap_err(), BatchError::Crc);
        assert_eq!(
            split_batches(&batch.slice(..batch.len() - 1)).unwrap_err(),
            BatchError::Truncated
        );
        let two = Bytes::from([batch.clone(), batch.clone()].concat());
        assert_eq!(split_batches(&two).unwrap().len(), 2);
    }
}
