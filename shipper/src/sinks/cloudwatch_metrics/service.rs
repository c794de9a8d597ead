//! PutMetricData calls with a gzipped body, retried through the classifier;
//! a request CloudWatch refuses as invalid has its records dead-lettered.

use std::sync::Arc;

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit, StatisticSet};
use aws_sdk_cloudwatch::Client;
use tokio_util::sync::CancellationToken;

use super::aggregate::{Datum, MetricBatch, Values};
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::sinks::dead_letter::DeadEvent;
use crate::sinks::driver::{Sender, Sent};
use crate::sinks::retry::{classify, Backoff, Decision, ErrorFacts};

/// A CloudWatch client from the standard chain; `compress` gzips every
/// PutMetricData body (the SDK's request compression, from 0 bytes up).
pub async fn client(endpoint_url: Option<&str>, compress: bool) -> Client {
    let sdk = crate::sinks::aws::sdk_config(endpoint_url).await;
    let conf = aws_sdk_cloudwatch::config::Builder::from(&sdk)
        .disable_request_compression(!compress)
        .request_min_compression_size_bytes(0)
        .build();
    Client::from_conf(conf)
}

/// The SDK's datum for ours.
pub fn to_sdk(d: &Datum, storage_resolution: i32) -> MetricDatum {
    let dims = d
        .dimensions
        .iter()
        .map(|(k, v)| Dimension::builder().name(k).value(v).build())
        .collect();
    let mut b = MetricDatum::builder()
        .metric_name(&d.name)
        .set_dimensions(Some(dims))
        .timestamp(DateTime::from_millis(d.timestamp_ms))
        .storage_resolution(storage_resolution);
    if let Some(u) = &d.unit {
        b = b.unit(StandardUnit::from(u.as_str()));
    }
    match &d.values {
        Values::Counts(vc) => b
            .set_values(Some(vc.iter().map(|(v, _)| *v).collect()))
            .set_counts(Some(vc.iter().map(|(_, n)| *n).collect())),
        Values::Stats(s) => b.statistic_values(
            StatisticSet::builder()
                .sample_count(s.count)
                .sum(s.sum)
                .minimum(s.min)
                .maximum(s.max)
                .build(),
        ),
    }
    .build()
}

/// Sends a sink's batches.
pub struct MetricsService {
    /// The client.
    pub client: Client,
    /// The namespace.
    pub namespace: String,
    /// 1 or 60.
    pub storage_resolution: i32,
    /// The sink's name.
    pub sink: String,
    /// Metrics and health.
    pub metrics: Arc<Metrics>,
    /// Cancelled when the sink must give up.
    pub stop: CancellationToken,
}

const INVALID: &[&str] = &[
    "InvalidParameterValue",
    "InvalidParameterCombination",
    "MissingParameter",
    "InvalidParameterValueException",
];

#[async_trait::async_trait]
impl Sender for MetricsService {
    type Batch = MetricBatch;

    async fn send(&self, batch: MetricBatch) -> Result<Sent> {
        let datums: Vec<MetricDatum> = batch
            .datums
            .iter()
            .map(|d| to_sdk(d, self.storage_resolution))
            .collect();
        let records: u64 = batch.records.iter().map(|r| r.len() as u64).sum();
        let mut backoff = Backoff::default();
        let problem = format!("sink {}", self.sink);
        loop {
            let call = self
                .client
                .put_metric_data()
                .namespace(&self.namespace)
                .set_metric_data(Some(datums.clone()))
                .send();
            let res = tokio::select! {
                _ = self.stop.cancelled() => return Err(Error::ShuttingDown),
                r = call => r,
            };
            let facts = match res {
                Ok(_) => {
                    if backoff.attempts() > 0 {
                        self.metrics.set_problem(&problem, None);
                    }
                    return Ok(Sent {
                        delivered: records,
                        dead: Vec::new(),
                    });
                }
                Err(e) => ErrorFacts::from_sdk(&e),
            };
            if facts.code.as_deref().is_some_and(|c| INVALID.contains(&c)) {
                let reason = format!("refused: {}", facts.describe());
                let dead = batch
                    .records
                    .iter()
                    .flatten()
                    .map(|r| DeadEvent::new(r.clone(), reason.clone()))
                    .collect();
                return Ok(Sent { delivered: 0, dead });
            }
            let decision = classify(&facts);
            let delay = backoff.next_delay(decision);
            self.metrics.retried(&self.sink).inc_by(records);
            let text = match decision {
                Decision::Throttled(_) => format!("CloudWatch is throttling PutMetricData: {}", facts.describe()),
                Decision::Retry => format!("PutMetricData failed, retrying: {}", facts.describe()),
                Decision::Permanent => format!(
                    "CloudWatch refused PutMetricData to namespace `{}`: {}; grant cloudwatch:PutMetricData (retrying slowly)",
                    self.namespace,
                    facts.describe()
                ),
            };
            tracing::warn!(sink = %self.sink, retry_in = ?delay, "{text}");
            self.metrics.set_problem(&problem, Some(text));
            tokio::select! {
                _ = self.stop.cancelled() => return Err(Error::ShuttingDown),
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }
}
