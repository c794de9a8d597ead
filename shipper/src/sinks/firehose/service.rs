//! PutRecordBatch calls. A whole-call failure goes through the classifier
//! (throttling and 5xx: backoff and retry all). A partial failure
//! (`FailedPutCount` > 0) is read record by record: the records that
//! succeeded are done and never sent again; the failed ones are retried
//! after a jittered backoff, and a record that fails `max_attempts` times
//! (throttling does not count) is dead-lettered with its error code.

use std::sync::Arc;

use aws_sdk_firehose::primitives::Blob;
use aws_sdk_firehose::types::Record as FhRecord;
use aws_sdk_firehose::Client;
use base64::Engine;
use tokio_util::sync::CancellationToken;
use wharf_envelope::{EncryptionContext, KeyProvider};

use super::batch::{Packed, RecordBatch, MAX_RECORD_BYTES};
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::sinks::dead_letter::DeadEvent;
use crate::sinks::driver::{Sender, Sent};
use crate::sinks::retry::{classify, Backoff, Decision, ErrorFacts};

/// A Firehose client from the standard chain with the sink's endpoint.
pub async fn client(endpoint_url: Option<&str>) -> Client {
    Client::new(&crate::sinks::aws::sdk_config(endpoint_url).await)
}

/// Sends a sink's batches.
pub struct FirehoseService {
    /// The client.
    pub client: Client,
    /// The delivery stream.
    pub stream: String,
    /// The sink's name.
    pub sink: String,
    /// Attempts before a failing record is dead-lettered.
    pub max_attempts: u32,
    /// Envelope encryption of each record (`None`: plain).
    pub sealer: Option<Arc<dyn KeyProvider>>,
    /// Metrics and health.
    pub metrics: Arc<Metrics>,
    /// Cancelled when the sink must give up.
    pub stop: CancellationToken,
}

/// What to do with each record of a call, given per-record error codes
/// (`None`: it succeeded), the attempts each has had (updated) and the
/// limit: `Ok(true)` keep for retry, `Ok(false)` done, `Err(reason)` dead.
pub fn judge(
    codes: &[Option<String>],
    attempts: &mut [u32],
    max_attempts: u32,
) -> Vec<std::result::Result<bool, String>> {
    codes
        .iter()
        .zip(attempts.iter_mut())
        .map(|(code, tries)| match code {
            None => Ok(false),
            Some(code) => {
                let facts = ErrorFacts {
                    code: Some(code.clone()),
                    ..Default::default()
                };
                if !matches!(classify(&facts), Decision::Throttled(_)) {
                    *tries += 1;
                }
                if *tries >= max_attempts {
                    Err(format!("failed_{code}"))
                } else {
                    Ok(true)
                }
            }
        })
        .collect()
}

impl FirehoseService {
    async fn encode(&self, p: &Packed) -> Result<Vec<u8>> {
        let Some(provider) = &self.sealer else {
            return Ok(p.data.clone());
        };
        let mut context = EncryptionContext::new();
        context.insert("purpose".into(), "wharf-shipper-firehose".into());
        context.insert("sink".into(), self.sink.clone());
        context.insert("delivery_stream".into(), self.stream.clone());
        let sealed = wharf_envelope::message::encrypt(provider.as_ref(), &context, &p.data).await?;
        let mut out = base64::engine::general_purpose::STANDARD
            .encode(sealed)
            .into_bytes();
        out.push(b'\n');
        Ok(out)
    }
}

#[async_trait::async_trait]
impl Sender for FirehoseService {
    type Batch = RecordBatch;

    async fn send(&self, batch: RecordBatch) -> Result<Sent> {
        let mut sent = Sent::default();
        let mut data = Vec::with_capacity(batch.records.len());
        let mut pending = Vec::new();
        for (i, p) in batch.records.iter().enumerate() {
            let bytes = self.encode(p).await?;
            if bytes.len() > MAX_RECORD_BYTES {
                // The batcher's bound makes this impossible; never send it.
                for r in &p.events {
                    sent.dead.push(DeadEvent::new(r.clone(), "too_large"));
                }
                data.push(Blob::new(Vec::new()));
                continue;
            }
            data.push(Blob::new(bytes));
            pending.push(i);
        }
        let mut attempts = vec![0u32; batch.records.len()];
        let mut backoff = Backoff::default();
        let problem = format!("sink {}", self.sink);
        while !pending.is_empty() {
            let records: Vec<FhRecord> = pending
                .iter()
                .map(|&i| {
                    FhRecord::builder()
                        .data(data[i].clone())
                        .build()
                        .expect("data set")
                })
                .collect();
            let call = self
                .client
                .put_record_batch()
                .delivery_stream_name(&self.stream)
                .set_records(Some(records))
                .send();
            let res = tokio::select! {
                _ = self.stop.cancelled() => return Err(Error::ShuttingDown),
                r = call => r,
            };
            let (codes, decision, text) = match res {
                Ok(out) => {
                    let responses = out.request_responses();
                    let codes: Vec<Option<String>> = (0..pending.len())
                        .map(|k| match responses.get(k) {
                            Some(r) => r.error_code().map(str::to_owned),
                            None => Some("MissingResponse".into()),
                        })
                        .collect();
                    let failed = codes.iter().flatten().count();
                    let first = codes.iter().flatten().next().cloned().unwrap_or_default();
                    let throttled = codes.iter().flatten().any(|c| {
                        let f = ErrorFacts {
                            code: Some(c.clone()),
                            ..Default::default()
                        };
                        matches!(classify(&f), Decision::Throttled(_))
                    });
                    (
                        codes,
                        if throttled { Decision::Throttled(None) } else { Decision::Retry },
                        format!("Firehose refused {failed} of {} records ({first}); retrying only those", pending.len()),
                    )
                }
                Err(e) => {
                    let facts = ErrorFacts::from_sdk(&e);
                    let d = classify(&facts);
                    let code = facts
                        .code
                        .clone()
                        .unwrap_or_else(|| "InternalFailure".into());
                    // A stream that is missing or forbidden is a setup
                    // problem, not the records': retry slowly, uncounted.
                    let setup = code == "ResourceNotFoundException"
                        || code.starts_with("AccessDenied")
                        || code == "UnrecognizedClientException";
                    let code = if setup || matches!(d, Decision::Throttled(_)) {
                        "ThrottlingException".to_owned()
                    } else {
                        code
                    };
                    (
                        vec![Some(code); pending.len()],
                        d,
                        format!(
                            "PutRecordBatch to `{}` failed: {}",
                            self.stream,
                            facts.describe()
                        ),
                    )
                }
            };
            let mut pend_attempts: Vec<u32> = pending.iter().map(|&i| attempts[i]).collect();
            let verdicts = judge(&codes, &mut pend_attempts, self.max_attempts);
            let mut next = Vec::new();
            for ((&i, v), tries) in pending.iter().zip(verdicts).zip(pend_attempts) {
                attempts[i] = tries;
                match v {
                    Ok(false) => sent.delivered += batch.records[i].events.len() as u64,
                    Ok(true) => next.push(i),
                    Err(reason) => {
                        for r in &batch.records[i].events {
                            sent.dead.push(DeadEvent::new(r.clone(), reason.clone()));
                        }
                    }
                }
            }
            pending = next;
            if pending.is_empty() {
                break;
            }
            let retried: u64 = pending
                .iter()
                .map(|&i| batch.records[i].events.len() as u64)
                .sum();
            self.metrics.retried(&self.sink).inc_by(retried);
            let delay = backoff.next_delay(decision);
            tracing::warn!(sink = %self.sink, retry_in = ?delay, "{text}");
            self.metrics.set_problem(&problem, Some(text));
            tokio::select! {
                _ = self.stop.cancelled() => return Err(Error::ShuttingDown),
                _ = tokio::time::sleep(delay) => {}
            }
        }
        if backoff.attempts() > 0 {
            self.metrics.set_problem(&problem, None);
        }
        Ok(sent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_failed_records_are_kept_and_throttling_uses_no_attempts() {
        let codes = vec![
            None,
            Some("ServiceUnavailableException".to_owned()),
            Some("InternalFailure".to_owned()),
            Some("ThrottlingException".to_owned()),
        ];
        let mut attempts = vec![0, 0, 0, 0];
        let v = judge(&codes, &mut attempts, 2);
        assert_eq!(v, vec![Ok(false), Ok(true), Ok(true), Ok(true)]);
        assert_eq!(attempts, vec![0, 0, 1, 0]);
        let v = judge(&codes, &mut attempts, 2);
        assert_eq!(v[2], Err("failed_InternalFailure".to_owned()));
        assert_eq!(v[1], Ok(true), "throttled records are never given up");
    }
}
