//! The shipper's configuration: one TOML file, overridable by `WHARF_*`
//! environment variables (`WHARF_SINKS__S3__BUCKET=...` sets
//! `sinks.s3.bucket`), with Vector-style named sources and sinks.
//!
//! Reading is two steps: serde structs that refuse unknown keys (so a typo
//! is an error naming the key, not a silently ignored setting), then
//! [`Config::validate`], which refuses impossible values, again naming the
//! key.

mod units;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use serde::Deserialize;

pub use units::{ByteSize, Span};

use crate::error::{Error, Result};
pub use crate::sinks::SinkConfig;
pub use crate::source::SourceConfig;

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the buffer, ledger, dead letters and upload state live.
    pub data_dir: PathBuf,
    /// The `/metrics` and `/health` endpoint.
    #[serde(default)]
    pub api: ApiConfig,
    /// The master key that wraps the data keys of the buffer and of objects.
    #[serde(default)]
    pub key: KeyConfig,
    /// The durable buffer.
    #[serde(default)]
    pub buffer: BufferConfig,
    /// How long a SIGTERM waits for sinks to flush before exiting.
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout: Span,
    /// Named sources.
    #[serde(default, deserialize_with = "typed_only")]
    pub sources: BTreeMap<String, SourceConfig>,
    /// Named sinks.
    #[serde(default, deserialize_with = "typed_only")]
    pub sinks: BTreeMap<String, SinkConfig>,
}

/// Sources and sinks are read in a second pass, one table at a time, so
/// that an error names the full key (`sinks.s3.batch.max_age`), which
/// serde's internally tagged enums cannot do.
fn typed_only<'de, D, T>(d: D) -> std::result::Result<BTreeMap<String, T>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let _ = BTreeMap::<String, serde::de::IgnoredAny>::deserialize(d)?;
    Ok(BTreeMap::new())
}

#[derive(Deserialize)]
struct Typed {
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize, Default)]
struct Tables {
    #[serde(default)]
    sources: BTreeMap<String, Typed>,
    #[serde(default)]
    sinks: BTreeMap<String, Typed>,
}

fn default_shutdown_timeout() -> Span {
    Span(std::time::Duration::from_secs(30))
}

/// The HTTP endpoint for `/metrics` and `/health`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// `host:port`; port 0 picks a free port (logged and written to
    /// `data_dir/api.addr`).
    #[serde(default = "default_api_address")]
    pub address: String,
    /// Set to false to run without the endpoint.
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

fn default_api_address() -> String {
    "127.0.0.1:9598".into()
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            address: default_api_address(),
            enabled: true,
        }
    }
}

/// Which master key wraps data keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "provider", rename_all = "snake_case", deny_unknown_fields)]
pub enum KeyConfig {
    /// A 256-bit key in a local file (created 0600 if missing).
    Local {
        /// The key file; default `data_dir/master.key`.
        #[serde(default)]
        path: Option<PathBuf>,
    },
    /// An AWS KMS key, by key ARN or alias ARN (the ARN is recorded in
    /// every message so that the AWS SDKs can decrypt).
    Kms {
        /// The key ARN (`arn:aws:kms:REGION:ACCOUNT:key/ID` or `...:alias/NAME`).
        key_id: String,
    },
}

impl Default for KeyConfig {
    fn default() -> Self {
        KeyConfig::Local { path: None }
    }
}

/// What the buffer does when it reaches `max_bytes`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    /// Stop reading from the sockets until sinks free space.
    #[default]
    Block,
    /// Refuse (and count) new records.
    DropNewest,
}

/// The durable buffer (see the `buffer` module for its rules).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BufferConfig {
    /// Bound on the total size of the segment files.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: ByteSize,
    /// A segment is sealed and a new one started at this size.
    #[serde(default = "default_segment_bytes")]
    pub segment_bytes: ByteSize,
    /// Longest time an append waits for its fsync.
    #[serde(default = "default_fsync_interval")]
    pub fsync_interval: Span,
    /// Unsynced bytes that trigger an fsync at once.
    #[serde(default = "default_fsync_bytes")]
    pub fsync_bytes: ByteSize,
    /// `block` or `drop_newest`.
    #[serde(default)]
    pub when_full: WhenFull,
}

fn default_max_bytes() -> ByteSize {
    ByteSize(1 << 30)
}
fn default_segment_bytes() -> ByteSize {
    ByteSize(8 << 20)
}
fn default_fsync_interval() -> Span {
    Span(std::time::Duration::from_millis(10))
}
fn default_fsync_bytes() -> ByteSize {
    ByteSize(1 << 20)
}

impl Default for BufferConfig {
    fn default() -> Self {
        BufferConfig {
            max_bytes: default_max_bytes(),
            segment_bytes: default_segment_bytes(),
            fsync_interval: default_fsync_interval(),
            fsync_bytes: default_fsync_bytes(),
            when_full: WhenFull::default(),
        }
    }
}

impl Config {
    /// Reads `path`, applies `WHARF_*` overrides, refuses unknown keys and
    /// impossible values.
    pub fn load(path: &Path) -> Result<Config> {
        if !path.exists() {
            return Err(Error::Config(format!(
                "{} does not exist; pass an existing file to --config",
                path.display()
            )));
        }
        Self::from_figment(
            Figment::new()
                .merge(Toml::file_exact(path))
                .merge(env_overrides()),
        )
    }

    /// Parses TOML text (no environment), for tests.
    pub fn from_toml(text: &str) -> Result<Config> {
        Self::from_figment(Figment::new().merge(Toml::string(text)))
    }

    fn from_figment(fig: Figment) -> Result<Config> {
        let fail = |e: figment::Error| {
            Error::Config(
                e.into_iter()
                    .map(|e| describe(&e))
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        };
        let mut cfg: Config = fig.extract().map_err(fail)?;
        let tables: Tables = fig.extract().map_err(fail)?;
        for (name, t) in tables.sources {
            let key = format!("sources.{name}");
            check_name(&key, &name)?;
            let src = match t.kind.as_deref() {
                Some("socket") => SourceConfig::Socket(fig.extract_inner(&key).map_err(fail)?),
                Some(other) => {
                    return Err(Error::invalid(
                        format!("{key}.type"),
                        format!("`{other}` is not a source type; use \"socket\""),
                    ))
                }
                None => {
                    return Err(Error::invalid(
                        format!("{key}.type"),
                        "is missing; set type = \"socket\"",
                    ))
                }
            };
            cfg.sources.insert(name, src);
        }
        for (name, t) in tables.sinks {
            let key = format!("sinks.{name}");
            check_name(&key, &name)?;
            let sink = match t.kind.as_deref() {
                Some("file") => SinkConfig::File(fig.extract_inner(&key).map_err(fail)?),
                Some("s3") => SinkConfig::S3(fig.extract_inner(&key).map_err(fail)?),
                Some(other) => {
                    return Err(Error::invalid(
                        format!("{key}.type"),
                        format!("`{other}` is not a sink type; use \"file\" or \"s3\""),
                    ))
                }
                None => {
                    return Err(Error::invalid(
                        format!("{key}.type"),
                        "is missing; set type = \"file\" or \"s3\"",
                    ))
                }
            };
            cfg.sinks.insert(name, sink);
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Refuses impossible values, naming the key.
    pub fn validate(&self) -> Result<()> {
        if self.sources.is_empty() {
            return Err(Error::invalid(
                "sources",
                "no source is configured; add e.g. [sources.broker] with type = \"socket\"",
            ));
        }
        if self.sinks.is_empty() {
            return Err(Error::invalid(
                "sinks",
                "no sink is configured; add e.g. [sinks.local] with type = \"file\"",
            ));
        }
        let b = &self.buffer;
        if b.segment_bytes.0 < 64 << 10 {
            return Err(Error::invalid(
                "buffer.segment_bytes",
                "must be at least 64 KiB",
            ));
        }
        if b.max_bytes.0 < 4 * b.segment_bytes.0 {
            return Err(Error::invalid(
                "buffer.max_bytes",
                format!(
                    "must be at least 4 x buffer.segment_bytes ({}), so sealed segments can drain while one is active",
                    ByteSize(4 * b.segment_bytes.0)
                ),
            ));
        }
        if b.fsync_interval.0.is_zero() || b.fsync_interval.0 > std::time::Duration::from_secs(10) {
            return Err(Error::invalid(
                "buffer.fsync_interval",
                "must be between 1ms and 10s (acks wait for it)",
            ));
        }
        if b.fsync_bytes.0 == 0 {
            return Err(Error::invalid("buffer.fsync_bytes", "must be more than 0"));
        }
        if self.shutdown_timeout.0.is_zero() {
            return Err(Error::invalid("shutdown_timeout", "must be more than 0s"));
        }
        if self.api.enabled && self.api.address.parse::<std::net::SocketAddr>().is_err() {
            return Err(Error::invalid(
                "api.address",
                format!(
                    "`{}` is not host:port, e.g. 127.0.0.1:9598",
                    self.api.address
                ),
            ));
        }
        if let KeyConfig::Kms { key_id } = &self.key {
            if key_id.trim().is_empty() {
                return Err(Error::invalid(
                    "key.key_id",
                    "is empty; set a KMS key ARN, id or alias",
                ));
            }
        }
        for (name, src) in &self.sources {
            check_name(&format!("sources.{name}"), name)?;
            src.validate(&format!("sources.{name}"))?;
        }
        for (name, sink) in &self.sinks {
            let key = format!("sinks.{name}");
            check_name(&key, name)?;
            for input in sink.inputs() {
                if !self.sources.contains_key(input) {
                    return Err(Error::invalid(
                        format!("{key}.inputs"),
                        format!(
                            "names `{input}`, which is not a source; known sources: {}",
                            self.sources.keys().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    ));
                }
            }
            if sink.inputs().is_empty() {
                return Err(Error::invalid(
                    format!("{key}.inputs"),
                    "is empty; list the sources this sink takes events from",
                ));
            }
            sink.validate(&key)?;
        }
        Ok(())
    }
}

fn check_name(key: &str, name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(Error::invalid(
            key,
            "names may hold only letters, digits, `_` and `-` (at most 64)",
        ));
    }
    Ok(())
}

/// The top-level keys `WHARF_*` variables may set. Other `WHARF_*`
/// variables (`WHARF_BIN_DIR`, ...) belong to other tools and are ignored.
pub const ENV_KEYS: &[&str] = &[
    "data_dir",
    "api",
    "key",
    "buffer",
    "shutdown_timeout",
    "sources",
    "sinks",
];

/// `WHARF_SINKS__S3__BUCKET=b` sets `sinks.s3.bucket`.
fn env_overrides() -> Env {
    Env::prefixed("WHARF_")
        .filter(|k| {
            let k = k.as_str().to_ascii_lowercase();
            let top = k.split("__").next().unwrap_or("");
            ENV_KEYS.contains(&top)
        })
        .split("__")
        .lowercase(true)
}

/// One figment error as a sentence naming the key.
fn describe(e: &figment::Error) -> String {
    let mut key = e.path.join(".");
    let kind = e.kind.to_string();
    if let figment::error::Kind::UnknownField(name, _) = &e.kind {
        if !key.ends_with(name.as_str()) {
            key = if key.is_empty() {
                name.clone()
            } else {
                format!("{key}.{name}")
            };
        }
    }
    let origin = e
        .metadata
        .as_ref()
        .and_then(|m| m.source.as_ref())
        .map(|s| format!(" (in {s})"))
        .unwrap_or_default();
    if key.is_empty() {
        format!("{kind}{origin}")
    } else {
        format!("key `{key}`: {kind}{origin}")
    }
}

#[cfg(test)]
mod tests;
