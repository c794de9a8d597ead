//! `[sinks.NAME]` with `type = "cloudwatch_metrics"`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::parse::msk_dimensions;
use crate::config::Span;
use crate::error::{Error, Result};
use crate::record::Kind;
use crate::sinks::cloudwatch_logs::LogsTarget;
use crate::sinks::dead_letter::DeadLetterConfig;

/// How metrics reach CloudWatch.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum MetricsMode {
    /// PutMetricData.
    #[default]
    Api,
    /// Embedded Metric Format events through CloudWatch Logs (`[sinks.NAME.emf]`).
    Emf,
}

/// The CloudWatch metrics sink.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudWatchMetricsSinkConfig {
    /// Always `"cloudwatch_metrics"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Sources this sink takes events from.
    pub inputs: Vec<String>,
    /// Only these kinds (default and only sensible value: `["metric"]`).
    #[serde(default)]
    pub kinds: Option<Vec<Kind>>,
    /// `api` (default) or `emf`.
    #[serde(default)]
    pub mode: MetricsMode,
    /// Namespace (default `Wharf/Kafka`).
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Values of one metric and dimensions within a period are aggregated
    /// into one datum (default 60s).
    #[serde(default = "default_period")]
    pub period: Span,
    /// 60 (standard, default) or 1 (high resolution).
    #[serde(default = "default_resolution")]
    pub storage_resolution: u32,
    /// Record field → dimension name (default MSK's: `cluster` →
    /// `Cluster Name`, `broker` → `Broker ID`, `topic` → `Topic`,
    /// `consumer_group` → `Consumer Group`).
    #[serde(default = "msk_dimensions")]
    pub dimensions: BTreeMap<String, String>,
    /// How long samples are aggregated before they are sent (default 10s).
    #[serde(default = "default_age")]
    pub max_age: Span,
    /// Gzip the PutMetricData body (default true).
    #[serde(default = "yes")]
    pub compress: bool,
    /// Most requests in flight (default 4).
    #[serde(default = "default_in_flight")]
    pub max_in_flight: usize,
    /// Where refused records go.
    #[serde(default)]
    pub dead_letter: DeadLetterConfig,
    /// Overrides the endpoint of the standard chain (`AWS_ENDPOINT_URL`).
    #[serde(default)]
    pub endpoint_url: Option<String>,
    /// Log group, stream and delivery options for `mode = "emf"`.
    #[serde(default)]
    pub emf: Option<LogsTarget>,
}

fn default_namespace() -> String {
    "Wharf/Kafka".into()
}
fn default_period() -> Span {
    Span(Duration::from_secs(60))
}
fn default_resolution() -> u32 {
    60
}
fn default_age() -> Span {
    Span(Duration::from_secs(10))
}
fn yes() -> bool {
    true
}
fn default_in_flight() -> usize {
    4
}

/// Kinds the sink takes when `kinds` is not set.
pub const METRIC_ONLY: &[Kind] = &[Kind::Metric];

impl CloudWatchMetricsSinkConfig {
    pub(crate) fn validate(&self, key: &str) -> Result<()> {
        let ns = &self.namespace;
        if ns.is_empty() || ns.len() > 255 || ns.starts_with("AWS/") || ns.starts_with(':') {
            return Err(Error::invalid(
                format!("{key}.namespace"),
                format!("`{ns}` cannot be used: 1 to 255 characters, not starting with `AWS/` (reserved for AWS services); e.g. \"Wharf/Kafka\""),
            ));
        }
        if self.storage_resolution != 1 && self.storage_resolution != 60 {
            return Err(Error::invalid(
                format!("{key}.storage_resolution"),
                "must be 60 (standard) or 1 (high resolution)",
            ));
        }
        if self.period.0 < Duration::from_secs(1) || self.period.0 > Duration::from_secs(3600) {
            return Err(Error::invalid(
                format!("{key}.period"),
                "must be between 1s and 1h",
            ));
        }
        if self.max_age.0 < Duration::from_millis(10) {
            return Err(Error::invalid(
                format!("{key}.max_age"),
                "must be at least 10ms",
            ));
        }
        if self.max_in_flight == 0 || self.max_in_flight > 64 {
            return Err(Error::invalid(
                format!("{key}.max_in_flight"),
                "must be between 1 and 64",
            ));
        }
        if self
            .dimensions
            .values()
            .any(|d| d.is_empty() || d.len() > 255)
        {
            return Err(Error::invalid(
                format!("{key}.dimensions"),
                "dimension names must have 1 to 255 characters",
            ));
        }
        match (self.mode, &self.emf) {
            (MetricsMode::Api, Some(_)) => Err(Error::invalid(
                format!("{key}.emf"),
                "is only used with mode = \"emf\"; remove it or set that mode",
            )),
            (MetricsMode::Emf, _) => self.emf_target().validate(&format!("{key}.emf")),
            _ => Ok(()),
        }
    }

    /// The CloudWatch Logs target of `mode = "emf"` (defaults: group
    /// `/wharf/metrics`, stream `{source}`).
    pub fn emf_target(&self) -> LogsTarget {
        self.emf.clone().unwrap_or_else(|| {
            serde_json::from_value(serde_json::json!({
                "group": "/wharf/metrics",
                "stream": "{source}",
            }))
            .expect("defaults deserialize")
        })
    }
}
