//! One accepted line: what the socket source parsed, what the buffer
//! stores and what the sinks deliver.
//!
//! A [`Record`] keeps the client's JSON object byte for byte, plus the
//! shipper's own fields: a UUIDv7 `id` given at acceptance (stable through
//! the buffer and every retry, so readers can de-duplicate), the `kind`,
//! the event time and the source's name. Sinks emit the object with
//! `"wharf_id"` inserted as its first field.

use std::sync::Arc;

use serde::Deserialize;
use uuid::Uuid;

/// The three kinds of telemetry the wire format carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A structured log line.
    Log,
    /// A metric sample or statistic set.
    Metric,
    /// An audit event (CloudTrail-shaped).
    Audit,
}

impl Kind {
    /// The name used on the wire, in keys and in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Log => "log",
            Kind::Metric => "metric",
            Kind::Audit => "audit",
        }
    }

    /// Parses the wire name.
    pub fn from_name(name: &str) -> Option<Kind> {
        match name {
            "log" => Some(Kind::Log),
            "metric" => Some(Kind::Metric),
            "audit" => Some(Kind::Audit),
            _ => None,
        }
    }

    fn code(self) -> u8 {
        self as u8
    }

    fn from_code(code: u8) -> Option<Kind> {
        [Kind::Log, Kind::Metric, Kind::Audit]
            .get(usize::from(code))
            .copied()
    }
}

/// An accepted event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Position in the buffer: consecutive from 0, never reused.
    pub seq: u64,
    /// Stable id (UUIDv7, so it also tells when the shipper accepted it).
    pub id: Uuid,
    /// Which kind of event.
    pub kind: Kind,
    /// Event time in milliseconds since the Unix epoch (from `ts`, or the
    /// time of acceptance when the line has none).
    pub ts_millis: i64,
    /// The source that accepted it.
    pub source: Arc<str>,
    /// The JSON object exactly as the client sent it (no trailing newline).
    pub line: Vec<u8>,
}

/// A new record id: a UUIDv7 (milliseconds since the epoch, then random
/// bits from the thread's userspace CSPRNG: no system call per id).
pub fn new_id() -> Uuid {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    uuid::Builder::from_unix_timestamp_millis(ms, &rand::random::<[u8; 10]>()).into_uuid()
}

const HEADER: usize = 8 + 16 + 1 + 8 + 1;

impl Record {
    /// Milliseconds since the epoch at which the shipper accepted it.
    pub fn accepted_millis(&self) -> Option<u64> {
        self.id.get_timestamp().map(|t| {
            let (s, n) = t.to_unix();
            s * 1000 + u64::from(n / 1_000_000)
        })
    }

    /// Appends the record's frame payload (what the buffer stores) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(HEADER + self.source.len() + self.line.len());
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(self.id.as_bytes());
        out.push(self.kind.code());
        out.extend_from_slice(&self.ts_millis.to_le_bytes());
        let src = self.source.as_bytes();
        let src = &src[..src.len().min(255)];
        out.push(src.len() as u8);
        out.extend_from_slice(src);
        out.extend_from_slice(&self.line);
    }

    /// Reads a frame payload written by [`Record::encode`]. `sources` interns
    /// source names so a segment's records share them.
    pub fn decode(payload: &[u8], sources: &mut Vec<Arc<str>>) -> Option<Record> {
        if payload.len() < HEADER {
            return None;
        }
        let seq = u64::from_le_bytes(payload[0..8].try_into().ok()?);
        let id = Uuid::from_slice(&payload[8..24]).ok()?;
        let kind = Kind::from_code(payload[24])?;
        let ts_millis = i64::from_le_bytes(payload[25..33].try_into().ok()?);
        let src_len = usize::from(payload[33]);
        let src = payload.get(HEADER..HEADER + src_len)?;
        let src = std::str::from_utf8(src).ok()?;
        let source = match sources.iter().find(|s| &***s == src) {
            Some(s) => s.clone(),
            None => {
                let s: Arc<str> = Arc::from(src);
                sources.push(s.clone());
                s
            }
        };
        Some(Record {
            seq,
            id,
            kind,
            ts_millis,
            source,
            line: payload[HEADER + src_len..].to_vec(),
        })
    }

    /// Bytes this record takes in a buffer frame.
    pub fn encoded_len(&self) -> usize {
        HEADER + self.source.len().min(255) + self.line.len()
    }

    /// Writes the delivered form: the client's object with `"wharf_id"`
    /// inserted first, then a newline.
    pub fn write_ndjson(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"wharf_id\":\"");
        let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
        out.extend_from_slice(self.id.hyphenated().encode_lower(&mut buf).as_bytes());
        out.push(b'"');
        // The line is a JSON object whose first byte is `{` (checked at
        // acceptance); keep everything after it.
        let rest = &self.line[1..];
        let empty = rest.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'}');
        if !empty {
            out.push(b',');
        }
        out.extend_from_slice(rest);
        out.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Record {
        Record {
            seq: 42,
            id: Uuid::now_v7(),
            kind: Kind::Audit,
            ts_millis: 1_700_000_000_123,
            source: Arc::from("broker"),
            line: br#"{"kind":"audit","x":1}"#.to_vec(),
        }
    }

    #[test]
    fn ids_are_v7_unique_and_carry_the_time() {
        let a = new_id();
        let b = new_id();
        assert_ne!(a, b);
        assert_eq!(a.get_version_num(), 7);
        let r = Record { id: a, ..sample() };
        let now = chrono::Utc::now().timestamp_millis() as u64;
        assert!(now - r.accepted_millis().unwrap() < 5_000);
    }

    #[test]
    fn encode_decode_round_trip() {
        let r = sample();
        let mut buf = Vec::new();
        r.encode(&mut buf);
        assert_eq!(buf.len(), r.encoded_len());
        let mut sources = Vec::new();
        assert_eq!(Record::decode(&buf, &mut sources).unwrap(), r);
        assert!(Record::decode(&buf[..10], &mut sources).is_none());
    }

    #[test]
    fn ndjson_inserts_the_id_first() {
        let r = sample();
        let mut out = Vec::new();
        r.write_ndjson(&mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["wharf_id"], r.id.to_string());
        assert_eq!(v["x"], 1);
        assert!(out.ends_with(b"\n"));
        let empty = Record {
            line: b"{ }".to_vec(),
            ..sample()
        };
        let mut out = Vec::new();
        empty.write_ndjson(&mut out);
        serde_json::from_slice::<serde_json::Value>(&out).unwrap();
    }
}
