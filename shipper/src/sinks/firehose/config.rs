//! `[sinks.NAME]` with `type = "firehose"`.

use std::time::Duration;

use serde::Deserialize;

use super::batch::{max_plain_bytes, MAX_BATCH_BYTES, MAX_BATCH_RECORDS, MAX_RECORD_BYTES};
use crate::config::{ByteSize, Span};
use crate::error::{Error, Result};
use crate::record::Kind;
use crate::sinks::dead_letter::DeadLetterConfig;

/// Per-record encryption.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum FirehoseEncryption {
    /// Records are NDJSON as is (Firehose may still encrypt at rest).
    #[default]
    None,
    /// Each record is an AWS Encryption SDK message, base64, one line.
    Envelope,
}

/// The Firehose sink.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirehoseSinkConfig {
    /// Always `"firehose"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Sources this sink takes events from.
    pub inputs: Vec<String>,
    /// Only these kinds (default: all).
    #[serde(default)]
    pub kinds: Option<Vec<Kind>>,
    /// The delivery stream.
    pub delivery_stream: String,
    /// Events are packed newline-delimited into records of up to this many
    /// bytes (default 256 KiB, at most 1,000 KiB).
    #[serde(default = "default_record_bytes")]
    pub record_bytes: ByteSize,
    /// `none` (default) or `envelope`.
    #[serde(default)]
    pub encryption: FirehoseEncryption,
    /// Attempts a failing record gets before it is dead-lettered (default
    /// 8; throttling does not use attempts up).
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// How long a batch waits for more events (default 1s).
    #[serde(default = "default_age")]
    pub max_age: Span,
    /// Most PutRecordBatch requests in flight (default 4).
    #[serde(default = "default_in_flight")]
    pub max_in_flight: usize,
    /// Where refused events go.
    #[serde(default)]
    pub dead_letter: DeadLetterConfig,
    /// Overrides the endpoint of the standard chain (`AWS_ENDPOINT_URL`).
    #[serde(default)]
    pub endpoint_url: Option<String>,
}

fn default_record_bytes() -> ByteSize {
    ByteSize(256 << 10)
}
fn default_attempts() -> u32 {
    8
}
fn default_age() -> Span {
    Span(Duration::from_secs(1))
}
fn default_in_flight() -> usize {
    4
}

impl FirehoseSinkConfig {
    pub(crate) fn validate(&self, key: &str) -> Result<()> {
        let n = self.delivery_stream.len();
        if n == 0
            || n > 64
            || !self
                .delivery_stream
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        {
            return Err(Error::invalid(
                format!("{key}.delivery_stream"),
                format!(
                    "`{}` is not a delivery stream name (1 to 64 letters, digits, `_`, `.` or `-`)",
                    self.delivery_stream
                ),
            ));
        }
        if self.record_bytes.0 < 1024 || self.record_bytes.0 > MAX_RECORD_BYTES as u64 {
            return Err(Error::invalid(
                format!("{key}.record_bytes"),
                "must be between 1 KiB and 1000 KiB (PutRecordBatch's record limit)",
            ));
        }
        if self.max_attempts == 0 {
            return Err(Error::invalid(
                format!("{key}.max_attempts"),
                "must be at least 1",
            ));
        }
        if self.max_in_flight == 0 || self.max_in_flight > 64 {
            return Err(Error::invalid(
                format!("{key}.max_in_flight"),
                "must be between 1 and 64",
            ));
        }
        if self.max_age.0 < Duration::from_millis(10) {
            return Err(Error::invalid(
                format!("{key}.max_age"),
                "must be at least 10ms",
            ));
        }
        let _ = (MAX_BATCH_BYTES, MAX_BATCH_RECORDS);
        Ok(())
    }

    /// Plaintext bytes packed into one record.
    pub fn pack_bytes(&self) -> usize {
        let limit = self.record_bytes.0 as usize;
        match self.encryption {
            FirehoseEncryption::None => limit,
            FirehoseEncryption::Envelope => max_plain_bytes(limit),
        }
    }
}
