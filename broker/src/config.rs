//! Configuration: one TOML file (`--config`), overridden by `WHARF_*`
//! environment variables (`WHARF_LISTEN`, `WHARF_LOG__RETENTION_MS`, ...;
//! `__` separates nesting). Unknown keys and impossible values are refused
//! with a message naming the key.

use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::broker::topic::TopicConfig;
use crate::broker::{BrokerConfig, FlushPolicy};
use crate::protocol::DEFAULT_MAX_REQUEST_BYTES;

/// The broker's configuration file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Plaintext listener address.
    pub listen: String,
    /// Host advertised to clients; defaults to the listener's IP.
    pub advertised_host: Option<String>,
    /// Where segments, indexes, state files and the local master key live.
    pub data_dir: PathBuf,
    /// This broker's node id.
    pub node_id: i32,
    /// Cluster id reported to clients.
    pub cluster_id: String,
    /// Largest request accepted (bytes), checked before allocating.
    pub max_request_bytes: usize,
    /// Create unknown topics on Metadata and Produce.
    pub auto_create_topics: bool,
    /// Partitions of auto-created topics.
    pub default_partitions: i32,
    /// When appended batches are fsynced: `acks_all`, `always` or `never`.
    pub flush: FlushPolicy,
    /// At-rest encryption: `local` (master key file in the data dir) or `none`.
    pub encryption: Encryption,
    /// Bytes of the most recently appended batches (all partitions) kept
    /// in memory, so consumers at the tail skip the disk read and the
    /// decryption; 0 disables.
    pub tail_cache_bytes: usize,
    /// Bytes (all partitions) that reads ahead for consumers catching up
    /// from the segments may hold: the batches the next fetch will ask
    /// for, read and decrypted on another thread while the client handles
    /// the last; 0 disables.
    pub readahead_bytes: usize,
    /// How long a new consumer group waits for more members (ms).
    pub group_initial_rebalance_delay_ms: u64,
    /// Defaults for topics' logs.
    pub log: LogConfig,
    /// Optional TLS listener.
    pub tls: Option<TlsConfig>,
    /// Telemetry to the shipper's socket and the Prometheus endpoint
    /// (`wharf_exporters::TelemetryConfig`, see docs/broker-telemetry.md);
    /// absent: logs to stderr only, no endpoint.
    #[serde(default, skip_serializing)]
    pub telemetry: Option<wharf_exporters::TelemetryConfig>,
}

/// At-rest encryption choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encryption {
    /// Envelope encryption under a local 256-bit master key.
    Local,
    /// Plaintext files (benchmarks only).
    None,
}

/// Log defaults for new topics (Kafka's `log.*` broker settings).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// Roll segments at this size.
    pub segment_bytes: u64,
    /// Roll segments at this age (ms).
    pub segment_ms: i64,
    /// Delete segments older than this (ms); -1 keeps forever.
    pub retention_ms: i64,
    /// Keep partitions under this size; -1 means no limit.
    pub retention_bytes: i64,
    /// Largest record batch accepted.
    pub max_message_bytes: i32,
    /// How often retention runs (ms).
    pub retention_check_interval_ms: u64,
}

/// The TLS listener.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Address, e.g. `127.0.0.1:9094`.
    pub listen: String,
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        let t = TopicConfig::default();
        Config {
            listen: "127.0.0.1:9092".into(),
            advertised_host: None,
            data_dir: PathBuf::from("./wharf-data"),
            node_id: 0,
            cluster_id: "wharf".into(),
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            auto_create_topics: true,
            default_partitions: 1,
            flush: FlushPolicy::AcksAll,
            encryption: Encryption::Local,
            tail_cache_bytes: 128 << 20,
            readahead_bytes: 64 << 20,
            group_initial_rebalance_delay_ms: 3000,
            log: LogConfig {
                segment_bytes: t.segment_bytes,
                segment_ms: t.segment_ms,
                retention_ms: t.retention_ms,
                retention_bytes: t.retention_bytes,
                max_message_bytes: t.max_message_bytes,
                retention_check_interval_ms: 30_000,
            },
            tls: None,
            telemetry: None,
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or environment does not parse into the schema.
    #[error("invalid configuration: {0}")]
    Invalid(String),
    /// A value is out of range.
    #[error("invalid configuration: `{key}` {problem}")]
    Value {
        /// The offending key.
        key: &'static str,
        /// What is wrong.
        problem: &'static str,
    },
}

const TOP_LEVEL_KEYS: &[&str] = &[
    "listen",
    "advertised_host",
    "data_dir",
    "node_id",
    "cluster_id",
    "max_request_bytes",
    "auto_create_topics",
    "default_partitions",
    "flush",
    "encryption",
    "group_initial_rebalance_delay_ms",
    "log",
    "tls",
    "telemetry",
];

impl Config {
    /// Defaults, then `file` (if any), then `WHARF_*` variables naming a broker key.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(f) = file {
            if !f.exists() {
                return Err(ConfigError::Invalid(format!(
                    "config file {} does not exist",
                    f.display()
                )));
            }
            fig = fig.merge(Toml::file(f));
        }
        // Only variables naming a broker key: WHARF_BIN_DIR and friends belong to others.
        let env = Env::prefixed("WHARF_")
            .split("__")
            .filter(|k| TOP_LEVEL_KEYS.contains(&k.as_str().split('.').next().unwrap_or("")));
        fig = fig.merge(env);
        let config: Config = fig
            .extract()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.default_partitions < 1 {
            return Err(ConfigError::Value {
                key: "default_partitions",
                problem: "must be at least 1",
            });
        }
        if self.max_request_bytes < 1024 || self.max_request_bytes > i32::MAX as usize {
            return Err(ConfigError::Value {
                key: "max_request_bytes",
                problem: "must be between 1 KiB and 2 GiB",
            });
        }
        if self.log.segment_bytes < 1024 {
            return Err(ConfigError::Value {
                key: "log.segment_bytes",
                problem: "must be at least 1024",
            });
        }
        if self.log.segment_ms < 1 {
            return Err(ConfigError::Value {
                key: "log.segment_ms",
                problem: "must be positive",
            });
        }
        if let Some(t) = &self.telemetry {
            t.validate()
                .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        }
        if self.log.max_message_bytes < 1 {
            return Err(ConfigError::Value {
                key: "log.max_message_bytes",
                problem: "must be positive",
            });
        }
        Ok(())
    }

    /// The broker settings this configuration describes.
    pub fn broker_config(&self) -> BrokerConfig {
        BrokerConfig {
            node_id: self.node_id,
            cluster_id: self.cluster_id.clone(),
            auto_create_topics: self.auto_create_topics,
            default_partitions: self.default_partitions,
            topic_defaults: TopicConfig {
                retention_ms: self.log.retention_ms,
                retention_bytes: self.log.retention_bytes,
                segment_bytes: self.log.segment_bytes,
                segment_ms: self.log.segment_ms,
                max_message_bytes: self.log.max_message_bytes,
                log_append_time: false,
            },
            flush: self.flush,
            group_initial_rebalance_delay_ms: self.group_initial_rebalance_delay_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("broker.toml");
        std::fs::write(&f, "listen = \"127.0.0.1:1\"\n[log]\nretention_mss = 5\n").unwrap();
        let err = Config::load(Some(&f)).unwrap_err().to_string();
        assert!(err.contains("retention_mss"), "{err}");
    }

    #[test]
    fn file_values_override_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("broker.toml");
        std::fs::write(
            &f,
            "default_partitions = 6\nflush = \"never\"\n[log]\nsegment_bytes = 4096\n",
        )
        .unwrap();
        let c = Config::load(Some(&f)).unwrap();
        assert_eq!(
            (c.default_partitions, c.flush, c.log.segment_bytes),
            (6, FlushPolicy::Never, 4096)
        );
        assert_eq!(c.listen, "127.0.0.1:9092");
    }

    #[test]
    fn telemetry_section_is_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("broker.toml");
        std::fs::write(
            &f,
            "[telemetry]\nsocket = \"/s.sock\"\nspool_dir = \"/spool\"\nprometheus_address = \"127.0.0.1:0\"\n",
        )
        .unwrap();
        let c = Config::load(Some(&f)).unwrap();
        assert_eq!(
            c.telemetry.unwrap().prometheus_address,
            "127.0.0.1:0".to_string()
        );
        std::fs::write(
            &f,
            "[telemetry]\nsocket = \"/s.sock\"\nspool_dir = \"/spool\"\nmonitoring_level = \"LOUD\"\n",
        )
        .unwrap();
        let err = Config::load(Some(&f)).unwrap_err().to_string();
        assert!(err.contains("telemetry.monitoring_level"), "{err}");
        std::fs::write(
            &f,
            "[telemetry]\nsocket = \"/s.sock\"\nspool_dir = \"/spool\"\nspool_size = 1\n",
        )
        .unwrap();
        let err = Config::load(Some(&f)).unwrap_err().to_string();
        assert!(err.contains("spool_size"), "{err}");
    }

    #[test]
    fn impossible_values_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("broker.toml");
        std::fs::write(&f, "default_partitions = 0\n").unwrap();
        let err = Config::load(Some(&f)).unwrap_err().to_string();
        assert!(err.contains("default_partitions"), "{err}");
    }
}
