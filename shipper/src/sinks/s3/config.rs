//! `[sinks.NAME]` with `type = "s3"`.

use serde::Deserialize;

use crate::config::ByteSize;
use crate::error::{Error, Result};
use crate::record::Kind;
use crate::sinks::object::config::{
    check_template, default_key, BatchConfig, Compression, Encryption,
};

/// Smallest multipart part S3 accepts (all but the last).
/// <https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html>
pub const MIN_PART_BYTES: u64 = 5 << 20;
/// Largest multipart part.
pub const MAX_PART_BYTES: u64 = 5 << 30;
/// Most parts in one upload.
pub const MAX_PARTS: u64 = 10_000;

/// The S3 sink: batched, compressed, encrypted NDJSON objects under
/// Hive-partitioned keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3SinkConfig {
    /// Always `"s3"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Sources this sink takes events from.
    pub inputs: Vec<String>,
    /// Only these kinds (default: all).
    #[serde(default)]
    pub kinds: Option<Vec<Kind>>,
    /// The bucket.
    pub bucket: String,
    /// Key template (see the `template` module).
    #[serde(default = "default_key")]
    pub key: String,
    /// `gzip` (default), `zstd` or `none`.
    #[serde(default)]
    pub compression: Compression,
    /// Compression level: gzip 1 to 9 (default 6), zstd 1 to 19 (default 1).
    #[serde(default)]
    pub compression_level: Option<i32>,
    /// `envelope` (default), `sse-kms` or `none`.
    #[serde(default)]
    pub encryption: Encryption,
    /// The KMS key for `encryption = "sse-kms"`.
    #[serde(default)]
    pub sse_kms_key_id: Option<String>,
    /// When batches become objects.
    #[serde(default)]
    pub batch: BatchConfig,
    /// Size of multipart parts; an object whose encoded bytes pass it is
    /// streamed as a multipart upload (default 8 MiB, at least 5 MiB).
    #[serde(default = "default_part")]
    pub part_bytes: ByteSize,
    /// Overrides the endpoint of the standard chain (`AWS_ENDPOINT_URL`).
    #[serde(default)]
    pub endpoint_url: Option<String>,
    /// Path-style addressing (default: on when an endpoint is set, for
    /// LocalStack and MinIO).
    #[serde(default)]
    pub force_path_style: Option<bool>,
}

fn default_part() -> ByteSize {
    ByteSize(8 << 20)
}

impl S3SinkConfig {
    pub(crate) fn validate(&self, key: &str) -> Result<()> {
        check_template(key, &self.key)?;
        self.compression.check_level(key, self.compression_level)?;
        self.batch.validate(key)?;
        let b = &self.bucket;
        if b.len() < 3
            || b.len() > 63
            || !b
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        {
            return Err(Error::invalid(
                format!("{key}.bucket"),
                format!("`{b}` is not an S3 bucket name (3 to 63 lowercase letters, digits, `-` or `.`)"),
            ));
        }
        if self.part_bytes.0 < MIN_PART_BYTES || self.part_bytes.0 > MAX_PART_BYTES {
            return Err(Error::invalid(
                format!("{key}.part_bytes"),
                "must be between 5 MiB and 5 GiB (S3's multipart limits)",
            ));
        }
        match (self.encryption, &self.sse_kms_key_id) {
            (Encryption::SseKms, None) => {
                return Err(Error::invalid(
                    format!("{key}.sse_kms_key_id"),
                    "is required with encryption = \"sse-kms\"; set the KMS key ARN",
                ))
            }
            (Encryption::SseKms, Some(_)) | (_, None) => {}
            (_, Some(_)) => {
                return Err(Error::invalid(
                    format!("{key}.sse_kms_key_id"),
                    "is only used with encryption = \"sse-kms\"; remove it or set that encryption",
                ))
            }
        }
        Ok(())
    }
}
