//! The broker's `[telemetry]` settings: a serde struct that refuses
//! unknown keys, then [`TelemetryConfig::validate`] into typed settings,
//! naming the key of any impossible value.
//!
//! ```toml
//! [telemetry]
//! socket = "/run/wharf/shipper.sock"
//! spool_dir = "/var/lib/wharf/telemetry-spool"
//! spool_max_bytes = 67108864
//! queue_capacity = 10000
//! log_level = "info,wharf_broker::storage=debug"
//! monitoring_level = "PER_TOPIC_PER_BROKER"
//! snapshot_period_seconds = 60
//! prometheus_address = "0.0.0.0:11001"   # "" turns the endpoint off
//! otlp_endpoint = "http://127.0.0.1:4318" # absent: no OTLP export
//! aws_region = "us-east-1"                # with aws_account_id: awsRegion and
//! aws_account_id = "123456789012"         # recipientAccountId of audit records
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use tracing_subscriber::EnvFilter;

use crate::catalog::Level;
use crate::Error;

/// `[telemetry]` as written in the broker's configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// The shipper's Unix socket.
    pub socket: PathBuf,
    /// Where the encrypted spool keeps lines while the shipper is away.
    pub spool_dir: PathBuf,
    /// Bytes the spool may take (default 64 MiB, at least 64 KiB).
    #[serde(default = "default_spool_max_bytes")]
    pub spool_max_bytes: u64,
    /// Lines the in-memory queue holds before dropping (default 10,000).
    #[serde(default = "default_queue_capacity")]
    pub queue_capacity: usize,
    /// Log levels per module, `EnvFilter` syntax (default `info`).
    #[serde(default = "default_log_level")]
    pub log_level: String,
    /// MSK monitoring level of the CloudWatch snapshots (default `DEFAULT`).
    #[serde(default = "default_level")]
    pub monitoring_level: String,
    /// Seconds between metric snapshots (default 60).
    #[serde(default = "default_period")]
    pub snapshot_period_seconds: u64,
    /// Prometheus endpoint address (default `0.0.0.0:11001`); empty turns
    /// it off.
    #[serde(default = "default_prometheus")]
    pub prometheus_address: String,
    /// OTLP/HTTP collector base URL; absent means no OTLP export.
    #[serde(default)]
    pub otlp_endpoint: Option<String>,
    /// AWS region written as `awsRegion` in audit records (with
    /// `aws_account_id`), as CloudTrail writes it; absent: not written.
    #[serde(default)]
    pub aws_region: Option<String>,
    /// 12-digit AWS account written as `recipientAccountId` in audit
    /// records (with `aws_region`); absent: not written.
    #[serde(default)]
    pub aws_account_id: Option<String>,
}

fn default_spool_max_bytes() -> u64 {
    64 * 1024 * 1024
}
fn default_queue_capacity() -> usize {
    10_000
}
fn default_log_level() -> String {
    "info".into()
}
fn default_level() -> String {
    "DEFAULT".into()
}
fn default_period() -> u64 {
    60
}
fn default_prometheus() -> String {
    format!("0.0.0.0:{}", crate::http::DEFAULT_PORT)
}

/// Validated telemetry settings.
#[derive(Debug)]
pub struct TelemetrySettings {
    /// The shipper's socket.
    pub socket: PathBuf,
    /// The spool directory.
    pub spool_dir: PathBuf,
    /// Spool bound in bytes.
    pub spool_max_bytes: u64,
    /// Queue capacity in lines.
    pub queue_capacity: usize,
    /// The parsed log level directives.
    pub log_filter: EnvFilter,
    /// The directives as written.
    pub log_level: String,
    /// CloudWatch snapshot level.
    pub monitoring_level: Level,
    /// Snapshot period.
    pub snapshot_period: Duration,
    /// Prometheus endpoint address, if on.
    pub prometheus_address: Option<SocketAddr>,
    /// OTLP collector, if any.
    pub otlp_endpoint: Option<String>,
    /// `awsRegion` and `recipientAccountId` of audit records, if set.
    pub aws_account: Option<(String, String)>,
}

impl TelemetryConfig {
    /// Defaults for a socket and a spool directory.
    pub fn new(socket: impl Into<PathBuf>, spool_dir: impl Into<PathBuf>) -> Self {
        Self {
            socket: socket.into(),
            spool_dir: spool_dir.into(),
            spool_max_bytes: default_spool_max_bytes(),
            queue_capacity: default_queue_capacity(),
            log_level: default_log_level(),
            monitoring_level: default_level(),
            snapshot_period_seconds: default_period(),
            prometheus_address: default_prometheus(),
            otlp_endpoint: None,
            aws_region: None,
            aws_account_id: None,
        }
    }

    /// Checks every value, naming the key (`telemetry.<key>`) of the first
    /// impossible one.
    pub fn validate(&self) -> Result<TelemetrySettings, Error> {
        let bad = |key, reason: String| Error::Config { key, reason };
        let monitoring_level = Level::parse(&self.monitoring_level).ok_or_else(|| {
            bad(
                "telemetry.monitoring_level",
                format!(
                    "`{}` is not one of DEFAULT, PER_BROKER, PER_TOPIC_PER_BROKER, PER_TOPIC_PER_PARTITION",
                    self.monitoring_level
                ),
            )
        })?;
        if self.snapshot_period_seconds == 0 {
            return Err(bad(
                "telemetry.snapshot_period_seconds",
                "it must be at least 1".into(),
            ));
        }
        if self.queue_capacity == 0 {
            return Err(bad(
                "telemetry.queue_capacity",
                "it must be at least 1".into(),
            ));
        }
        if self.spool_max_bytes < 64 * 1024 {
            return Err(bad(
                "telemetry.spool_max_bytes",
                "it must be at least 65536 bytes (64 KiB)".into(),
            ));
        }
        let prometheus_address = if self.prometheus_address.is_empty() {
            None
        } else {
            Some(self.prometheus_address.parse().map_err(|_| {
                bad(
                    "telemetry.prometheus_address",
                    format!(
                        "`{}` is not host:port, e.g. 0.0.0.0:11001",
                        self.prometheus_address
                    ),
                )
            })?)
        };
        if let Some(e) = &self.otlp_endpoint {
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                return Err(bad(
                    "telemetry.otlp_endpoint",
                    format!("`{e}` is not an http:// or https:// URL, e.g. http://127.0.0.1:4318"),
                ));
            }
            if !cfg!(feature = "otlp") {
                return Err(bad(
                    "telemetry.otlp_endpoint",
                    "this build has no OTLP export (feature `otlp` of wharf-exporters)".into(),
                ));
            }
        }
        let aws_account = match (&self.aws_region, &self.aws_account_id) {
            (None, None) => None,
            (Some(region), Some(account)) => {
                if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad(
                        "telemetry.aws_account_id",
                        format!("`{account}` is not a 12-digit AWS account id"),
                    ));
                }
                if region.is_empty()
                    || !region
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                {
                    return Err(bad(
                        "telemetry.aws_region",
                        format!("`{region}` is not an AWS region name, e.g. us-east-1"),
                    ));
                }
                Some((region.clone(), account.clone()))
            }
            (Some(_), None) => {
                return Err(bad(
                    "telemetry.aws_account_id",
                    "it is required with telemetry.aws_region".into(),
                ))
            }
            (None, Some(_)) => {
                return Err(bad(
                    "telemetry.aws_region",
                    "it is required with telemetry.aws_account_id".into(),
                ))
            }
        };
        let log_filter = crate::log_filter(&self.log_level)
            .map_err(|e| bad("telemetry.log_level", e.to_string()))?;
        Ok(TelemetrySettings {
            socket: self.socket.clone(),
            spool_dir: self.spool_dir.clone(),
            spool_max_bytes: self.spool_max_bytes,
            queue_capacity: self.queue_capacity,
            log_filter,
            log_level: self.log_level.clone(),
            monitoring_level,
            snapshot_period: Duration::from_secs(self.snapshot_period_seconds),
            prometheus_address,
            otlp_endpoint: self.otlp_endpoint.clone(),
            aws_account,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_json: serde_json::Value) -> Result<TelemetryConfig, String> {
        serde_json::from_value(toml_json).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_fill_in_and_validate() {
        let cfg = parse(serde_json::json!({"socket": "/s.sock", "spool_dir": "/spool"})).unwrap();
        let s = cfg.validate().unwrap();
        assert_eq!(s.monitoring_level, Level::Default);
        assert_eq!(s.snapshot_period, Duration::from_secs(60));
        assert_eq!(s.prometheus_address, Some("0.0.0.0:11001".parse().unwrap()));
        assert_eq!(s.spool_max_bytes, 64 * 1024 * 1024);
        assert!(s.otlp_endpoint.is_none());
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let err =
            parse(serde_json::json!({"socket": "/s", "spool_dir": "/d", "spool_max_byte": 1}))
                .unwrap_err();
        assert!(err.contains("spool_max_byte"), "{err}");
    }

    #[test]
    fn impossible_values_name_their_key() {
        let cases = [
            (
                serde_json::json!({"monitoring_level": "PER_TOPIC"}),
                "telemetry.monitoring_level",
            ),
            (
                serde_json::json!({"snapshot_period_seconds": 0}),
                "telemetry.snapshot_period_seconds",
            ),
            (
                serde_json::json!({"spool_max_bytes": 10}),
                "telemetry.spool_max_bytes",
            ),
            (
                serde_json::json!({"prometheus_address": "11001"}),
                "telemetry.prometheus_address",
            ),
            (
                serde_json::json!({"otlp_endpoint": "collector:4318"}),
                "telemetry.otlp_endpoint",
            ),
            (
                serde_json::json!({"log_level": "info,x=loud"}),
                "telemetry.log_level",
            ),
            (
                serde_json::json!({"queue_capacity": 0}),
                "telemetry.queue_capacity",
            ),
            (
                serde_json::json!({"aws_region": "us-east-1", "aws_account_id": "12345"}),
                "telemetry.aws_account_id",
            ),
            (
                serde_json::json!({"aws_region": "US East", "aws_account_id": "123456789012"}),
                "telemetry.aws_region",
            ),
            (
                serde_json::json!({"aws_region": "us-east-1"}),
                "telemetry.aws_account_id",
            ),
            (
                serde_json::json!({"aws_account_id": "123456789012"}),
                "telemetry.aws_region",
            ),
        ];
        for (extra, key) in cases {
            let mut v = serde_json::json!({"socket": "/s", "spool_dir": "/d"});
            v.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            let err = parse(v).unwrap().validate().unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
        }
        let off = TelemetryConfig {
            prometheus_address: String::new(),
            ..TelemetryConfig::new("/s", "/d")
        };
        assert_eq!(off.validate().unwrap().prometheus_address, None);
    }
}
