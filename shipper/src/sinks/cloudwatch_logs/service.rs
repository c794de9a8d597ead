//! PutLogEvents calls: retried through the classifier with jittered
//! backoff, missing groups and streams created (with retention and KMS
//! key) when configured, and `rejectedLogEventsInfo` read so that the
//! refused events are dead-lettered and only the others count as delivered.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use aws_sdk_cloudwatchlogs::types::{InputLogEvent, RejectedLogEventsInfo};
use aws_sdk_cloudwatchlogs::Client;
use tokio_util::sync::CancellationToken;

use super::batch::LogBatch;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::sinks::dead_letter::DeadEvent;
use crate::sinks::driver::{Sender, Sent};
use crate::sinks::retry::{classify, Backoff, Decision, ErrorFacts};

/// A CloudWatch Logs client from the standard chain with the sink's
/// endpoint override.
pub async fn client(endpoint_url: Option<&str>) -> Client {
    Client::new(&crate::sinks::aws::sdk_config(endpoint_url).await)
}

/// Sends a sink's batches.
pub struct LogsService {
    /// The client.
    pub client: Client,
    /// The sink's name.
    pub sink: String,
    /// Create missing groups and streams.
    pub create_missing: bool,
    /// Retention of created groups.
    pub retention_days: Option<u32>,
    /// KMS key of created groups.
    pub kms_key_id: Option<String>,
    /// Metrics and health.
    pub metrics: Arc<Metrics>,
    /// Cancelled when the sink must give up.
    pub stop: CancellationToken,
    /// Groups known to exist.
    pub groups: Mutex<HashSet<String>>,
}

/// Which positions of a sorted batch of `n` events the response refused,
/// and why. Per the API: `tooNewLogEventStartIndex` is the first too-new
/// event (inclusive); `tooOldLogEventEndIndex` and
/// `expiredLogEventEndIndex` end the too-old and expired runs (exclusive).
pub fn rejected(info: &RejectedLogEventsInfo, n: usize) -> Vec<Option<&'static str>> {
    let mut out = vec![None; n];
    let clamp = |i: i32| (i.max(0) as usize).min(n);
    if let Some(end) = info.expired_log_event_end_index() {
        for slot in &mut out[..clamp(end)] {
            *slot = Some("rejected_expired");
        }
    }
    if let Some(end) = info.too_old_log_event_end_index() {
        for slot in &mut out[..clamp(end)] {
            slot.get_or_insert("rejected_too_old");
        }
    }
    if let Some(start) = info.too_new_log_event_start_index() {
        for slot in &mut out[clamp(start)..] {
            slot.get_or_insert("rejected_too_new");
        }
    }
    out
}

/// Splits a batch's records into delivered and refused: a record (which
/// may have been split into several events) is delivered only when none
/// of its events was refused.
pub fn settle(batch: &LogBatch, refused: &[Option<&'static str>]) -> Sent {
    let mut dead_ids = HashSet::new();
    let mut dead = Vec::new();
    for (ev, why) in batch.events.iter().zip(refused) {
        if let Some(why) = why {
            if dead_ids.insert(ev.record.seq) {
                dead.push(DeadEvent::new(ev.record.clone(), *why));
            }
        }
    }
    let mut seen = HashSet::new();
    let records = batch
        .events
        .iter()
        .filter(|e| seen.insert(e.record.seq))
        .count();
    Sent {
        delivered: (records - dead.len()) as u64,
        dead,
    }
}

impl LogsService {
    async fn ensure(&self, group: &str, stream: &str) -> std::result::Result<(), ErrorFacts> {
        let known = self.groups.lock().unwrap().contains(group);
        if !known {
            let mut req = self.client.create_log_group().log_group_name(group);
            if let Some(k) = &self.kms_key_id {
                req = req.kms_key_id(k);
            }
            match req.send().await {
                Ok(_) => {
                    tracing::info!(sink = %self.sink, group, "created log group");
                    if let Some(days) = self.retention_days {
                        self.client
                            .put_retention_policy()
                            .log_group_name(group)
                            .retention_in_days(days as i32)
                            .send()
                            .await
                            .map_err(|e| ErrorFacts::from_sdk(&e))?;
                    }
                }
                Err(e) => {
                    let f = ErrorFacts::from_sdk(&e);
                    if f.code.as_deref() != Some("ResourceAlreadyExistsException") {
                        return Err(f);
                    }
                }
            }
            self.groups.lock().unwrap().insert(group.to_owned());
        }
        match self
            .client
            .create_log_stream()
            .log_group_name(group)
            .log_stream_name(stream)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let f = ErrorFacts::from_sdk(&e);
                match f.code.as_deref() {
                    Some("ResourceAlreadyExistsException") => Ok(()),
                    Some("ResourceNotFoundException") => {
                        self.groups.lock().unwrap().remove(group);
                        Err(f)
                    }
                    _ => Err(f),
                }
            }
        }
    }

    fn explain(&self, batch: &LogBatch, f: &ErrorFacts, d: Decision) -> String {
        let (g, s, sink) = (&batch.group, &batch.stream, &self.sink);
        match f.code.as_deref() {
            Some("ResourceNotFoundException") if !self.create_missing => format!(
                "log group `{g}` or stream `{s}` does not exist; create them or set `sinks.{sink}.create_missing = true` (events stay buffered and are retried)"
            ),
            Some("AccessDeniedException") => format!(
                "CloudWatch Logs denied access to `{g}`; grant logs:PutLogEvents, logs:CreateLogGroup and logs:CreateLogStream (events stay buffered and are retried)"
            ),
            _ => match d {
                Decision::Throttled(_) => format!("CloudWatch Logs is throttling: {}", f.describe()),
                Decision::Retry => format!("PutLogEvents failed, retrying: {}", f.describe()),
                Decision::Permanent => format!(
                    "CloudWatch Logs refused a request to `{g}`/`{s}`: {}; retrying slowly",
                    f.describe()
                ),
            },
        }
    }
}

#[async_trait::async_trait]
impl Sender for LogsService {
    type Batch = LogBatch;

    async fn send(&self, batch: LogBatch) -> Result<Sent> {
        let events: Vec<InputLogEvent> = batch
            .events
            .iter()
            .map(|e| {
                InputLogEvent::builder()
                    .timestamp(e.ts)
                    .message(e.message.clone())
                    .build()
                    .expect("timestamp and message are set")
            })
            .collect();
        let mut backoff = Backoff::default();
        let problem = format!("sink {}", self.sink);
        loop {
            let call = self
                .client
                .put_log_events()
                .log_group_name(&batch.group)
                .log_stream_name(&batch.stream)
                .set_log_events(Some(events.clone()))
                .send();
            let res = tokio::select! {
                _ = self.stop.cancelled() => return Err(Error::ShuttingDown),
                r = call => r,
            };
            let facts = match res {
                Ok(out) => {
                    if backoff.attempts() > 0 {
                        self.metrics.set_problem(&problem, None);
                    }
                    let refused = match out.rejected_log_events_info() {
                        Some(info) => rejected(info, batch.events.len()),
                        None => vec![None; batch.events.len()],
                    };
                    return Ok(settle(&batch, &refused));
                }
                Err(e) => ErrorFacts::from_sdk(&e),
            };
            if facts.code.as_deref() == Some("ResourceNotFoundException") && self.create_missing {
                match self.ensure(&batch.group, &batch.stream).await {
                    Ok(()) => continue,
                    Err(f) => {
                        tracing::warn!(sink = %self.sink, group = %batch.group, "could not create the log group or stream: {}", f.describe());
                    }
                }
            }
            if facts.code.as_deref() == Some("InvalidParameterException") {
                // The batch itself is wrong (not a transient state): it
                // would fail forever, so its events are dead-lettered.
                let reason = format!("refused: {}", facts.describe());
                tracing::error!(sink = %self.sink, group = %batch.group, "{reason}");
                let refused = vec![Some("invalid_parameter"); batch.events.len()];
                return Ok(settle(&batch, &refused));
            }
            let decision = classify(&facts);
            let delay = backoff.next_delay(decision);
            self.metrics
                .retried(&self.sink)
                .inc_by(batch.events.len() as u64);
            let text = self.explain(&batch, &facts, decision);
            tracing::warn!(sink = %self.sink, retry_in = ?delay, "{text}");
            self.metrics.set_problem(&problem, Some(text));
            tokio::select! {
                _ = self.stop.cancelled() => return Err(Error::ShuttingDown),
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }
}
