//! Options shared by the sinks that write objects (S3 and file): key
//! template, batching, compression and encryption.

use serde::Deserialize;

use super::template::KeyTemplate;
use crate::config::{ByteSize, Span};
use crate::error::{Error, Result};

/// How objects are compressed (before encryption).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// Plain NDJSON.
    None,
    /// gzip (`.ndjson.gz`).
    #[default]
    Gzip,
    /// zstd (`.ndjson.zst`).
    Zstd,
}

impl Compression {
    /// The level used: the configured one, or the default (gzip 6, zstd 1:
    /// zstd's fastest level still beats gzip's ratio on logs).
    pub fn level(self, configured: Option<i32>) -> i32 {
        configured.unwrap_or(match self {
            Compression::None => 0,
            Compression::Gzip => 6,
            Compression::Zstd => 1,
        })
    }

    pub(crate) fn check_level(self, key: &str, level: Option<i32>) -> Result<()> {
        let Some(l) = level else { return Ok(()) };
        let ok = match self {
            Compression::None => false,
            Compression::Gzip => (1..=9).contains(&l),
            Compression::Zstd => (1..=19).contains(&l),
        };
        if ok {
            Ok(())
        } else {
            Err(Error::invalid(
                format!("{key}.compression_level"),
                match self {
                    Compression::None => "has no meaning with compression = \"none\"".to_string(),
                    Compression::Gzip => format!("{l} is not a gzip level (1 to 9)"),
                    Compression::Zstd => format!("{l} is not a zstd level (1 to 19)"),
                },
            ))
        }
    }

    /// The `{ext}` of keys: `ndjson`, `ndjson.gz` or `ndjson.zst`.
    pub fn extension(self) -> &'static str {
        match self {
            Compression::None => "ndjson",
            Compression::Gzip => "ndjson.gz",
            Compression::Zstd => "ndjson.zst",
        }
    }
}

/// How objects are encrypted.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Encryption {
    /// Each object is an AWS Encryption SDK message under the shipper's key.
    #[default]
    Envelope,
    /// S3 server-side encryption with a KMS key (S3 sink only).
    SseKms,
    /// Not encrypted by the shipper.
    None,
}

impl Encryption {
    /// The name written in object metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            Encryption::Envelope => "aws-encryption-sdk",
            Encryption::SseKms => "sse-kms",
            Encryption::None => "none",
        }
    }
}

/// When a batch becomes an object.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    /// Uncompressed NDJSON bytes at which an object is closed (default 64 MiB).
    #[serde(default = "default_batch_bytes")]
    pub max_bytes: ByteSize,
    /// Age of a batch's first event at which it is closed (default 5m).
    #[serde(default = "default_batch_age")]
    pub max_age: Span,
}

fn default_batch_bytes() -> ByteSize {
    ByteSize(64 << 20)
}
fn default_batch_age() -> Span {
    Span(std::time::Duration::from_secs(300))
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_bytes: default_batch_bytes(),
            max_age: default_batch_age(),
        }
    }
}

/// Largest object the S3 API takes in one PutObject, and the most a
/// multipart upload may hold (10,000 parts of 5 GiB is more, but 5 TiB is
/// S3's object limit). <https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html>
pub const MAX_OBJECT_BYTES: u64 = 5 << 40;

impl BatchConfig {
    pub(crate) fn validate(&self, key: &str) -> Result<()> {
        if self.max_bytes.0 < 1024 || self.max_bytes.0 > MAX_OBJECT_BYTES {
            return Err(Error::invalid(
                format!("{key}.batch.max_bytes"),
                "must be between 1 KiB and 5 TiB",
            ));
        }
        if self.max_age.0 < std::time::Duration::from_millis(100) {
            return Err(Error::invalid(
                format!("{key}.batch.max_age"),
                "must be at least 100ms",
            ));
        }
        Ok(())
    }
}

/// Parses and checks a key template.
pub(crate) fn check_template(key: &str, template: &str) -> Result<KeyTemplate> {
    KeyTemplate::parse(template).map_err(|reason| Error::invalid(format!("{key}.key"), reason))
}

/// The default key template.
pub fn default_key() -> String {
    "{kind}/dt=%Y-%m-%d/hour=%H/{uuid}.{ext}".into()
}
