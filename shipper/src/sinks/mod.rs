//! Sinks: where records go. One folder per sink (`config.rs`, `sink.rs`,
//! ...), one enum of their configs and one `match` to build them.
//! [`retry`] holds the AWS error classifier every AWS sink uses.

pub mod file;
pub mod object;
pub mod retry;
pub mod s3;

use crate::error::Result;
use crate::record::Kind;

/// A `[sinks.NAME]` table.
#[derive(Debug, Clone)]
pub enum SinkConfig {
    /// Objects in a local directory.
    File(file::FileSinkConfig),
    /// Objects in an S3 bucket.
    S3(s3::S3SinkConfig),
}

impl SinkConfig {
    /// The sources this sink takes.
    pub fn inputs(&self) -> &[String] {
        match self {
            SinkConfig::File(c) => &c.inputs,
            SinkConfig::S3(c) => &c.inputs,
        }
    }

    /// The kinds it takes (`None`: all).
    pub fn kinds(&self) -> Option<&[Kind]> {
        match self {
            SinkConfig::File(c) => c.kinds.as_deref(),
            SinkConfig::S3(c) => c.kinds.as_deref(),
        }
    }

    /// Whether it uses `envelope` encryption (and so needs the master key).
    pub fn uses_envelope(&self) -> bool {
        use object::config::Encryption;
        match self {
            SinkConfig::File(c) => c.encryption == Encryption::Envelope,
            SinkConfig::S3(c) => c.encryption == Encryption::Envelope,
        }
    }

    /// Refuses impossible values; `key` is e.g. `sinks.s3`.
    pub fn validate(&self, key: &str) -> Result<()> {
        match self {
            SinkConfig::File(c) => c.validate(key),
            SinkConfig::S3(c) => c.validate(key),
        }
    }
}

/// Which records a sink takes.
#[derive(Debug, Clone)]
pub struct Filter {
    inputs: Vec<String>,
    kinds: Option<Vec<Kind>>,
}

impl Filter {
    /// From a sink's `inputs` and `kinds`.
    pub fn new(cfg: &SinkConfig) -> Filter {
        Filter {
            inputs: cfg.inputs().to_vec(),
            kinds: cfg.kinds().map(<[Kind]>::to_vec),
        }
    }

    /// Whether the sink takes `record`.
    pub fn takes(&self, record: &crate::record::Record) -> bool {
        self.inputs.iter().any(|i| **i == *record.source)
            && self.kinds.as_ref().is_none_or(|k| k.contains(&record.kind))
    }
}
