//! `[sinks.NAME]` with `type = "cloudwatch_logs"`.

use std::time::Duration;

use serde::Deserialize;

use super::batch::{Limits, Oversize, MAX_BATCH_BYTES, MAX_BATCH_EVENTS, MAX_EVENT_AGE_MS};
use super::template::{NameKind, NameTemplate};
use crate::config::{ByteSize, Span};
use crate::error::{Error, Result};
use crate::record::Kind;
use crate::sinks::dead_letter::DeadLetterConfig;

/// Retention periods CloudWatch Logs accepts, in days.
/// <https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutRetentionPolicy.html>
pub const RETENTION_DAYS: &[u32] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// The CloudWatch Logs sink: `type`, `inputs` and `kinds`, and every
/// other key read (strictly: unknown keys are refused) into [`LogsTarget`].
#[derive(Debug, Clone)]
pub struct CloudWatchLogsSinkConfig {
    /// Always `"cloudwatch_logs"`.
    pub kind: String,
    /// Sources this sink takes events from.
    pub inputs: Vec<String>,
    /// Only these kinds (default: all).
    pub kinds: Option<Vec<Kind>>,
    /// Everything else: names, groups, batches, failures.
    pub target: LogsTarget,
}

impl<'de> Deserialize<'de> for CloudWatchLogsSinkConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        #[derive(Deserialize)]
        struct Head {
            #[serde(rename = "type")]
            kind: String,
            inputs: Vec<String>,
            #[serde(default)]
            kinds: Option<Vec<Kind>>,
        }
        let mut all = serde_json::Map::deserialize(d)?;
        let mut head = serde_json::Map::new();
        for k in ["type", "inputs", "kinds"] {
            if let Some(v) = all.remove(k) {
                head.insert(k.into(), v);
            }
        }
        let h: Head = serde_json::from_value(head.into()).map_err(D::Error::custom)?;
        let target: LogsTarget = serde_json::from_value(all.into()).map_err(D::Error::custom)?;
        Ok(CloudWatchLogsSinkConfig {
            kind: h.kind,
            inputs: h.inputs,
            kinds: h.kinds,
            target,
        })
    }
}

/// Where and how events are sent: the CloudWatch Logs sink's options,
/// also the metrics sink's `[sinks.NAME.emf]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsTarget {
    /// Log group name template (default `/wharf/{source}`).
    #[serde(default = "default_group")]
    pub group: String,
    /// Log stream name template (default `{kind}`).
    #[serde(default = "default_stream")]
    pub stream: String,
    /// Create missing groups and streams (default true).
    #[serde(default = "yes")]
    pub create_missing: bool,
    /// Retention of the groups it creates (days; one of [`RETENTION_DAYS`]).
    /// Events older than it are dead-lettered rather than sent.
    #[serde(default)]
    pub retention_days: Option<u32>,
    /// KMS key ARN associated with the groups it creates.
    #[serde(default)]
    pub kms_key_id: Option<String>,
    /// `truncate` (default) or `split` events over 1 MiB - 26 bytes.
    #[serde(default)]
    pub oversize: Oversize,
    /// When batches are sent.
    #[serde(default)]
    pub batch: LogsBatchConfig,
    /// Most PutLogEvents requests in flight (default 4).
    #[serde(default = "default_in_flight")]
    pub max_in_flight: usize,
    /// Where refused events go.
    #[serde(default)]
    pub dead_letter: DeadLetterConfig,
    /// Overrides the endpoint of the standard chain (`AWS_ENDPOINT_URL`).
    #[serde(default)]
    pub endpoint_url: Option<String>,
}

/// `[sinks.NAME.batch]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsBatchConfig {
    /// Events per request (at most 10,000, the default).
    #[serde(default = "default_events")]
    pub max_events: usize,
    /// Bytes per request counting 26 per event (at most 1 MiB, the default).
    #[serde(default = "default_bytes")]
    pub max_bytes: ByteSize,
    /// How long a batch waits for more events (default 2s).
    #[serde(default = "default_age")]
    pub max_age: Span,
}

impl Default for LogsBatchConfig {
    fn default() -> Self {
        LogsBatchConfig {
            max_events: default_events(),
            max_bytes: default_bytes(),
            max_age: default_age(),
        }
    }
}

fn yes() -> bool {
    true
}
fn default_group() -> String {
    "/wharf/{source}".into()
}
fn default_stream() -> String {
    "{kind}".into()
}
fn default_in_flight() -> usize {
    4
}
fn default_events() -> usize {
    MAX_BATCH_EVENTS
}
fn default_bytes() -> ByteSize {
    ByteSize(MAX_BATCH_BYTES as u64)
}
fn default_age() -> Span {
    Span(Duration::from_secs(2))
}

impl CloudWatchLogsSinkConfig {
    pub(crate) fn validate(&self, key: &str) -> Result<()> {
        self.target.validate(key)
    }
}

impl LogsTarget {
    /// The group and stream templates.
    pub fn templates(&self, key: &str) -> Result<(NameTemplate, NameTemplate)> {
        let g = NameTemplate::parse(&self.group, NameKind::Group)
            .map_err(|r| Error::invalid(format!("{key}.group"), r))?;
        let s = NameTemplate::parse(&self.stream, NameKind::Stream)
            .map_err(|r| Error::invalid(format!("{key}.stream"), r))?;
        Ok((g, s))
    }

    pub(crate) fn validate(&self, key: &str) -> Result<()> {
        self.templates(key)?;
        let b = &self.batch;
        if b.max_events == 0 || b.max_events > MAX_BATCH_EVENTS {
            return Err(Error::invalid(
                format!("{key}.batch.max_events"),
                "must be between 1 and 10000 (PutLogEvents' limit)",
            ));
        }
        if b.max_bytes.0 < 1024 || b.max_bytes.0 > MAX_BATCH_BYTES as u64 {
            return Err(Error::invalid(
                format!("{key}.batch.max_bytes"),
                "must be between 1 KiB and 1 MiB (PutLogEvents' limit)",
            ));
        }
        if b.max_age.0 < Duration::from_millis(10) {
            return Err(Error::invalid(
                format!("{key}.batch.max_age"),
                "must be at least 10ms",
            ));
        }
        if self.max_in_flight == 0 || self.max_in_flight > 64 {
            return Err(Error::invalid(
                format!("{key}.max_in_flight"),
                "must be between 1 and 64",
            ));
        }
        if let Some(d) = self.retention_days {
            if !RETENTION_DAYS.contains(&d) {
                return Err(Error::invalid(
                    format!("{key}.retention_days"),
                    format!("{d} is not a retention CloudWatch Logs offers; use one of {RETENTION_DAYS:?}"),
                ));
            }
        }
        if let Some(k) = &self.kms_key_id {
            if !k.starts_with("arn:") {
                return Err(Error::invalid(
                    format!("{key}.kms_key_id"),
                    "must be a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID)",
                ));
            }
        }
        Ok(())
    }

    /// The batch limits.
    pub fn limits(&self) -> Limits {
        let retention = self
            .retention_days
            .map_or(i64::MAX, |d| i64::from(d) * 24 * 3600 * 1000);
        Limits {
            max_bytes: self.batch.max_bytes.0 as usize,
            max_events: self.batch.max_events,
            max_age: self.batch.max_age.0,
            max_event_age_ms: MAX_EVENT_AGE_MS.min(retention),
            oversize: self.oversize,
        }
    }
}
