//! Fetch responses encoded without copying their records.
//!
//! A fetch response is mostly its records fields: batches from the tail
//! cache or read from the segments, already in memory. Encoding it whole
//! copied every byte into the response buffer before the socket copied
//! them again (12% of the broker's CPU in a catch-up read). Here the
//! response buffer gets everything but the large records fields, and each
//! of those is written to the socket from where it is, between the bytes
//! before and after its place.
//!
//! Where a records field goes is found without knowing the message's
//! layout: the response is encoded once with those fields empty and once
//! with them null. The two encodings are the same length and differ only
//! in those fields' length prefixes (`00000000` / `ffffffff` up to v11,
//! varint `01` / `00` from v12), in encoding order; what is written is the
//! first encoding with each prefix replaced by the real length.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseKind};

use super::codec::{encode_response_into, EncodeError};

/// Records fields at least this long are not copied into the response.
pub const SPLICE_MIN: usize = 16 << 10;

/// A records field left out of the response buffer: it goes out at `at`,
/// a position in the buffer.
pub type Splice = (usize, Bytes);

/// [`encode_response_into`], except that the records fields of a fetch
/// response of at least [`SPLICE_MIN`] bytes are not copied into `out`
/// but pushed to `splices` (they are taken out of `body`). The response on
/// the wire is `out` with each spliced records field inserted at its
/// position (see [`pieces`]). On error `out` and `splices` are as they
/// were, and so is `body`.
pub fn encode_response_spliced(
    out: &mut BytesMut,
    splices: &mut Vec<Splice>,
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &mut ResponseKind,
) -> Result<(), EncodeError> {
    let large: Vec<usize> = records_fields(body)
        .iter()
        .enumerate()
        .filter(|(_, r)| r.as_ref().is_some_and(|r| r.len() >= SPLICE_MIN))
        .map(|(i, _)| i)
        .collect();
    if large.is_empty() {
        return encode_response_into(out, api_key, version, correlation_id, body);
    }
    let mut fields = records_fields(body);
    let taken: Vec<Bytes> = large
        .iter()
        .map(|&i| fields[i].replace(Bytes::new()).expect("filtered on Some"))
        .collect();
    let (empty, places) = match locate(body, &large, version, correlation_id, api_key) {
        Ok(found) => found,
        Err(e) => {
            give_back(body, &large, taken);
            return Err(e);
        }
    };
    let start = out.len();
    let mut done = 0;
    let mut records_len = 0;
    let mut spliced = Vec::with_capacity(taken.len());
    for (&at, batches) in places.iter().zip(&taken) {
        out.extend_from_slice(&empty[done..at]);
        let Ok(len) = i32::try_from(batches.len()) else {
            out.truncate(start);
            let e = anyhow::anyhow!("records of {} bytes", batches.len());
            give_back(body, &large, taken);
            return Err(EncodeError::new(api_key, version, e));
        };
        put_length_prefix(out, version, len);
        records_len += batches.len();
        spliced.push(out.len());
        done = at + length_prefix_len(version);
    }
    out.extend_from_slice(&empty[done..]);
    let size = (out.len() - start - 4 + records_len) as i32;
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
    splices.extend(spliced.into_iter().zip(taken));
    Ok(())
}

/// Fetch is a flexible message from v12: its records fields' lengths are
/// then varints of length + 1 (1 byte when empty or null), i32s before.
fn length_prefix_len(version: i16) -> usize {
    if version >= 12 {
        1
    } else {
        4
    }
}

/// Writes a records field's length prefix, as the encoder would.
fn put_length_prefix(out: &mut BytesMut, version: i16, len: i32) {
    if version >= 12 {
        put_unsigned_varint(out, len as u32 + 1);
    } else {
        out.put_i32(len);
    }
}

/// Kafka's unsigned varint: 7 bits a byte, least significant first.
fn put_unsigned_varint(out: &mut BytesMut, mut v: u32) {
    while v >= 0x80 {
        out.put_u8((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

/// Every records field of a fetch response, in encoding order (none for
/// other responses).
fn records_fields(body: &mut ResponseKind) -> Vec<&mut Option<Bytes>> {
    match body {
        ResponseKind::Fetch(fetch) => fetch
            .responses
            .iter_mut()
            .flat_map(|t| t.partitions.iter_mut())
            .map(|p| &mut p.records)
            .collect(),
        _ => Vec::new(),
    }
}

/// Encodes `body`, whose records fields numbered `taken` are empty, with
/// those fields empty and then null; returns the first encoding and where
/// each taken field's length prefix is in it.
fn locate(
    body: &mut ResponseKind,
    taken: &[usize],
    version: i16,
    correlation_id: i32,
    api_key: ApiKey,
) -> Result<(BytesMut, Vec<usize>), EncodeError> {
    let mut empty = BytesMut::new();
    encode_response_into(&mut empty, api_key, version, correlation_id, body)?;
    set(body, taken, None);
    let mut null = BytesMut::new();
    let encoded = encode_response_into(&mut null, api_key, version, correlation_id, body);
    set(body, taken, Some(Bytes::new()));
    encoded?;
    let prefix_len = length_prefix_len(version);
    let mut places = Vec::with_capacity(taken.len());
    let mut i = 0;
    while i < empty.len().min(null.len()) {
        if empty[i] != null[i] {
            places.push(i);
            i += prefix_len;
        } else {
            i += 1;
        }
    }
    if places.len() != taken.len() || empty.len() != null.len() {
        return Err(EncodeError::new(
            api_key,
            version,
            anyhow::anyhow!(
                "found {} of {} records fields to splice",
                places.len(),
                taken.len()
            ),
        ));
    }
    Ok((empty, places))
}

fn set(body: &mut ResponseKind, fields: &[usize], to: Option<Bytes>) {
    let mut all = records_fields(body);
    for &i in fields {
        all[i].clone_from(&to);
    }
}

/// Puts the records taken from the fields numbered `fields` back.
fn give_back(body: &mut ResponseKind, fields: &[usize], taken: Vec<Bytes>) {
    let mut all = records_fields(body);
    for (&i, batches) in fields.iter().zip(taken) {
        *all[i] = Some(batches);
    }
}

/// The response's bytes in wire order: `out` cut at each splice's
/// position with the spliced records in between (empty pieces left out).
pub fn pieces<'a>(out: &'a [u8], splices: &'a [Splice]) -> Vec<&'a [u8]> {
    let mut pieces = Vec::with_capacity(2 * splices.len() + 1);
    let mut done = 0;
    for (at, records) in splices {
        pieces.push(&out[done..*at]);
        pieces.push(&records[..]);
        done = *at;
    }
    pieces.push(&out[done..]);
    pieces.retain(|p| !p.is_empty());
    pieces
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::fetch_response::{
        AbortedTransaction, FetchableTopicResponse, PartitionData,
    };
    use kafka_protocol::messages::{FetchResponse, ProducerId, TopicName};
    use kafka_protocol::protocol::StrBytes;

    use super::*;

    fn records(len: usize, seed: u8) -> Option<Bytes> {
        Some(
            (0..len)
                .map(|i| (i as u8).wrapping_mul(31) ^ seed)
                .collect(),
        )
    }

    /// Two topics; records large (both sides of the varint's 2-3 byte
    /// boundary), small, empty and null; an error and aborted transactions.
    fn response(version: i16) -> ResponseKind {
        let mut resp = FetchResponse::default();
        if version >= 7 {
            resp.session_id = 9;
        }
        for (t, fields) in [
            (0, vec![records(SPLICE_MIN, 1), records(100, 2), None]),
            (
                1,
                vec![Some(Bytes::new()), records(3 << 20, 3), records(20_000, 4)],
            ),
        ] {
            let mut topic = FetchableTopicResponse::default();
            topic.topic = TopicName(StrBytes::from_string(format!("topic-{t}")));
            for (i, records) in fields.into_iter().enumerate() {
                let mut p = PartitionData::default();
                p.partition_index = i as i32;
                p.high_watermark = 1000 + i as i64;
                p.error_code = if records.is_none() { 1 } else { 0 };
                if i == 1 {
                    let mut aborted = AbortedTransaction::default();
                    aborted.producer_id = ProducerId(77);
                    p.aborted_transactions = Some(vec![aborted]);
                }
                p.records = records;
                topic.partitions.push(p);
            }
            resp.responses.push(topic);
        }
        ResponseKind::Fetch(resp)
    }

    fn wire(out: &[u8], splices: &[Splice]) -> Vec<u8> {
        pieces(out, splices).concat()
    }

    #[test]
    fn the_wire_bytes_are_the_whole_encoding_in_every_version() {
        for version in 4..=12 {
            let mut whole = BytesMut::new();
            encode_response_into(&mut whole, ApiKey::Fetch, version, 5, &response(version))
                .unwrap();
            // After an earlier response in the same buffer, as a
            // connection's buffer is used.
            let mut out = BytesMut::from(&b"earlier"[..]);
            let mut splices = Vec::new();
            let mut body = response(version);
            encode_response_spliced(&mut out, &mut splices, ApiKey::Fetch, version, 5, &mut body)
                .unwrap();
            assert_eq!(&out[..7], b"earlier");
            let spliced: Vec<(usize, Bytes)> =
                splices.iter().map(|(at, b)| (at - 7, b.clone())).collect();
            assert_eq!(wire(&out[7..], &spliced), &whole[..], "version {version}");
            let lens: Vec<usize> = splices.iter().map(|(_, b)| b.len()).collect();
            assert_eq!(lens, [SPLICE_MIN, 3 << 20, 20_000], "version {version}");
            assert!(out.len() < 1024, "no records copied: {}", out.len());
        }
    }

    #[test]
    fn other_responses_and_small_fetches_are_encoded_whole() {
        let mut small = FetchResponse::default();
        let mut topic = FetchableTopicResponse::default();
        let mut p = PartitionData::default();
        p.records = records(SPLICE_MIN - 1, 0);
        topic.partitions.push(p);
        small.responses.push(topic);
        let versions = ResponseKind::ApiVersions(Default::default());
        for (key, version, mut body) in [
            (ApiKey::Fetch, 12, ResponseKind::Fetch(small)),
            (ApiKey::ApiVersions, 3, versions),
        ] {
            let mut whole = BytesMut::new();
            encode_response_into(&mut whole, key, version, 1, &body).unwrap();
            let (mut out, mut splices) = (BytesMut::new(), Vec::new());
            encode_response_spliced(&mut out, &mut splices, key, version, 1, &mut body).unwrap();
            assert!(splices.is_empty());
            assert_eq!(out, whole);
        }
    }

    #[test]
    fn a_failed_encoding_leaves_buffer_splices_and_response_as_they_were() {
        let mut out = BytesMut::from(&b"earlier"[..]);
        let mut splices = vec![(3, Bytes::from_static(b"kept"))];
        let mut body = response(12);
        // Version 3 is below what the message supports.
        assert!(
            encode_response_spliced(&mut out, &mut splices, ApiKey::Fetch, 3, 5, &mut body)
                .is_err()
        );
        assert_eq!(&out[..], b"earlier");
        assert_eq!(splices.len(), 1);
        assert_eq!(body, response(12));
    }

    #[test]
    fn varints_are_kafkas() {
        for (v, bytes) in [
            (0u32, &[0u8][..]),
            (127, &[0x7f]),
            (128, &[0x80, 0x01]),
            (300, &[0xac, 0x02]),
            (u32::MAX, &[0xff, 0xff, 0xff, 0xff, 0x0f]),
        ] {
            let mut out = BytesMut::new();
            put_unsigned_varint(&mut out, v);
            assert_eq!(&out[..], bytes, "{v}");
        }
    }
}
