//! `[sinks.NAME]` with `type = "file"`: objects under a local directory.

use std::path::PathBuf;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::record::Kind;
use crate::sinks::object::config::{
    check_template, default_key, BatchConfig, Compression, Encryption,
};

/// The file sink, the embedded default: the S3 layout under a directory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSinkConfig {
    /// Always `"file"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Sources this sink takes events from.
    pub inputs: Vec<String>,
    /// Only these kinds (default: all).
    #[serde(default)]
    pub kinds: Option<Vec<Kind>>,
    /// The root directory of the objects.
    pub directory: PathBuf,
    /// Key template (see the `template` module).
    #[serde(default = "default_key")]
    pub key: String,
    /// `gzip` (default), `zstd` or `none`.
    #[serde(default)]
    pub compression: Compression,
    /// Compression level: gzip 1 to 9 (default 6), zstd 1 to 19 (default 1).
    #[serde(default)]
    pub compression_level: Option<i32>,
    /// `envelope` (default) or `none`.
    #[serde(default)]
    pub encryption: Encryption,
    /// When batches become files.
    #[serde(default)]
    pub batch: BatchConfig,
}

impl FileSinkConfig {
    pub(crate) fn validate(&self, key: &str) -> Result<()> {
        check_template(key, &self.key)?;
        self.compression.check_level(key, self.compression_level)?;
        self.batch.validate(key)?;
        if self.encryption == Encryption::SseKms {
            return Err(Error::invalid(
                format!("{key}.encryption"),
                "`sse-kms` is S3 server-side encryption and has no meaning for files; use `envelope` or `none`",
            ));
        }
        if self.directory.as_os_str().is_empty() {
            return Err(Error::invalid(format!("{key}.directory"), "is empty"));
        }
        Ok(())
    }
}
