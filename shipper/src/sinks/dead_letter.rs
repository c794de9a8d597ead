//! Where a sink puts the events its destination refused for good (too old,
//! too new, too large, rejected in `rejectedLogEventsInfo`, failing after
//! the configured attempts): `[sinks.NAME.dead_letter]`.
//!
//! - `type = "file"` (default): `data_dir/dead-letter/sink-NAME-START.dl`
//!   (or `directory`), one frame per event in the buffer's encrypted
//!   at-rest format, like the source's dead letters.
//! - `type = "s3"`: one NDJSON object per refused batch at
//!   `PREFIX/sink=NAME/dt=YYYY-MM-DD/UUID.ndjson` in `bucket`.
//!
//! Each entry is `{"sink","reason","wharf_id","seq","ts","event"}` where
//! `event` is the client's object as it was accepted. Every entry is
//! counted in `wharf_shipper_sink_events_dead_lettered_total` and each
//! refused batch is logged once, with its count and reasons.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;

use crate::buffer::AtRest;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::record::Record;
use crate::sinks::retry::{classify, Backoff, Decision, ErrorFacts};
use crate::source::dead_letter::DeadLetter;

/// `[sinks.NAME.dead_letter]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum DeadLetterConfig {
    /// An encrypted local file.
    File {
        /// Directory (default: `data_dir/dead-letter`).
        #[serde(default)]
        directory: Option<PathBuf>,
    },
    /// NDJSON objects in S3.
    S3 {
        /// The bucket.
        bucket: String,
        /// Key prefix (default `dead-letter`).
        #[serde(default = "default_prefix")]
        prefix: String,
        /// Overrides the endpoint of the standard chain.
        #[serde(default)]
        endpoint_url: Option<String>,
    },
}

fn default_prefix() -> String {
    "dead-letter".into()
}

impl Default for DeadLetterConfig {
    fn default() -> Self {
        DeadLetterConfig::File { directory: None }
    }
}

/// A refused event and why.
#[derive(Debug, Clone)]
pub struct DeadEvent {
    /// The record.
    pub record: Arc<Record>,
    /// Why it can never be delivered (e.g. `too_old`, `rejected_too_new`).
    pub reason: String,
}

impl DeadEvent {
    /// `record` refused for `reason`.
    pub fn new(record: Arc<Record>, reason: impl Into<String>) -> DeadEvent {
        DeadEvent {
            record,
            reason: reason.into(),
        }
    }

    fn entry(&self, sink: &str) -> serde_json::Value {
        let event: serde_json::Value = serde_json::from_slice(&self.record.line)
            .unwrap_or_else(|_| String::from_utf8_lossy(&self.record.line).into());
        serde_json::json!({
            "sink": sink,
            "reason": self.reason,
            "wharf_id": self.record.id.to_string(),
            "seq": self.record.seq,
            "ts": self.record.ts_millis,
            "event": event,
        })
    }
}

enum Dest {
    File(DeadLetter),
    S3 {
        client: aws_sdk_s3::Client,
        bucket: String,
        prefix: String,
    },
}

/// A sink's dead-letter destination.
pub struct SinkDeadLetter {
    dest: Dest,
    metrics: Arc<Metrics>,
}

impl SinkDeadLetter {
    /// Opens the destination for sink `sink`.
    pub async fn open(
        cfg: &DeadLetterConfig,
        sink: &str,
        data_dir: &std::path::Path,
        at: AtRest,
        metrics: Arc<Metrics>,
    ) -> SinkDeadLetter {
        let dest = match cfg {
            DeadLetterConfig::File { directory } => {
                let dir = directory
                    .clone()
                    .unwrap_or_else(|| data_dir.join("dead-letter"));
                Dest::File(DeadLetter::new(&dir, &format!("sink-{sink}"), at))
            }
            DeadLetterConfig::S3 {
                bucket,
                prefix,
                endpoint_url,
            } => {
                let sdk = crate::sinks::aws::sdk_config(endpoint_url.as_deref()).await;
                let conf = aws_sdk_s3::config::Builder::from(&sdk)
                    .force_path_style(sdk.endpoint_url().is_some())
                    .build();
                Dest::S3 {
                    client: aws_sdk_s3::Client::from_conf(conf),
                    bucket: bucket.clone(),
                    prefix: prefix.trim_end_matches('/').to_owned(),
                }
            }
        };
        SinkDeadLetter { dest, metrics }
    }

    /// A local file destination (for tests and the default).
    pub fn file(path_dir: &std::path::Path, sink: &str, at: AtRest, metrics: Arc<Metrics>) -> Self {
        SinkDeadLetter {
            dest: Dest::File(DeadLetter::new(path_dir, &format!("sink-{sink}"), at)),
            metrics,
        }
    }

    /// Writes `events` (durably), counts them and logs the batch once.
    pub async fn write(&self, sink: &str, events: Vec<DeadEvent>) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let entries: Vec<serde_json::Value> = events.iter().map(|e| e.entry(sink)).collect();
        let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
        for e in &events {
            *reasons.entry(e.reason.as_str()).or_default() += 1;
        }
        let whereto = match &self.dest {
            Dest::File(f) => {
                f.write(&entries).await?;
                f.path().display().to_string()
            }
            Dest::S3 {
                client,
                bucket,
                prefix,
            } => {
                let key = format!(
                    "{prefix}/sink={sink}/dt={}/{}.ndjson",
                    chrono::Utc::now().format("%Y-%m-%d"),
                    uuid::Uuid::now_v7()
                );
                let mut body = Vec::new();
                for e in &entries {
                    serde_json::to_writer(&mut body, e).expect("JSON values serialize");
                    body.push(b'\n');
                }
                put_with_retry(client, bucket, &key, body, sink).await?;
                format!("s3://{bucket}/{key}")
            }
        };
        self.metrics
            .sink_dead_lettered(sink)
            .inc_by(events.len() as u64);
        tracing::warn!(
            sink,
            events = events.len(),
            reasons = ?reasons,
            to = %whereto,
            "events the destination can never accept were dead-lettered"
        );
        Ok(())
    }
}

async fn put_with_retry(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    body: Vec<u8>,
    sink: &str,
) -> Result<()> {
    let body = bytes::Bytes::from(body);
    let mut backoff = Backoff::default();
    loop {
        let res = client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type("application/x-ndjson")
            .body(body.clone().into())
            .send()
            .await;
        match res {
            Ok(_) => return Ok(()),
            Err(e) => {
                let facts = ErrorFacts::from_sdk(&e);
                let decision = classify(&facts);
                if decision == Decision::Permanent && backoff.attempts() >= 5 {
                    return Err(Error::Sink {
                        sink: sink.to_owned(),
                        message: format!(
                            "the dead-letter bucket `{bucket}` refuses writes ({}); fix `sinks.{sink}.dead_letter`",
                            facts.describe()
                        ),
                    });
                }
                let delay = backoff.next_delay(decision);
                tracing::warn!(sink, retry_in = ?delay, "dead-letter write failed: {}", facts.describe());
                tokio::time::sleep(delay).await;
            }
        }
    }
}
