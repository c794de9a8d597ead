//! Calls to S3, each retried through the classifier with jittered backoff
//! until it succeeds or the sink is told to stop.

use std::future::Future;
use std::sync::Arc;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::Client;
use tokio_util::sync::CancellationToken;

use super::S3SinkConfig;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::sinks::retry::{classify, Backoff, Decision, ErrorFacts};

/// An S3 client from the standard chain (`AWS_ENDPOINT_URL`, `AWS_REGION`,
/// profiles, ...), with the sink's overrides.
pub async fn client(cfg: &S3SinkConfig) -> Client {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(url) = &cfg.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    let sdk = loader.load().await;
    let path_style = cfg
        .force_path_style
        .unwrap_or_else(|| sdk.endpoint_url().is_some());
    let conf = aws_sdk_s3::config::Builder::from(&sdk)
        .force_path_style(path_style)
        .build();
    Client::from_conf(conf)
}

/// S3 calls for one sink.
#[derive(Clone)]
pub struct S3Service {
    /// The client.
    pub client: Client,
    /// The bucket.
    pub bucket: String,
    /// The sink's name.
    pub sink: String,
    /// Metrics and health.
    pub metrics: Arc<Metrics>,
    /// Cancelled when the sink must give up (shutdown deadline).
    pub stop: CancellationToken,
}

impl S3Service {
    /// Runs `call` until it succeeds; `events` is how many events ride on
    /// it (for the retried metric).
    pub async fn retry<T, E, F, Fut>(&self, what: &str, events: u64, mut call: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = std::result::Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let mut backoff = Backoff::default();
        loop {
            let res = tokio::select! {
                _ = self.stop.cancelled() => return Err(Error::ShuttingDown),
                r = call() => r,
            };
            match res {
                Ok(v) => {
                    if backoff.attempts() > 0 {
                        self.metrics
                            .set_problem(&format!("sink {}", self.sink), None);
                        tracing::info!(sink = %self.sink, what, "S3 answers again");
                    }
                    return Ok(v);
                }
                Err(e) => {
                    let facts = ErrorFacts::from_sdk(&e);
                    let decision = classify(&facts);
                    let delay = backoff.next_delay(decision);
                    self.metrics.retried(&self.sink).inc_by(events);
                    let text = self.explain(&facts, decision);
                    if decision == Decision::Permanent {
                        tracing::error!(sink = %self.sink, what, retry_in = ?delay, "{text}");
                    } else {
                        tracing::warn!(sink = %self.sink, what, retry_in = ?delay, "{text}");
                    }
                    self.metrics
                        .set_problem(&format!("sink {}", self.sink), Some(text));
                    tokio::select! {
                        _ = self.stop.cancelled() => return Err(Error::ShuttingDown),
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }

    /// A sentence saying what failed and what to do.
    fn explain(&self, f: &ErrorFacts, d: Decision) -> String {
        let b = &self.bucket;
        let s = &self.sink;
        match f.code.as_deref() {
            Some("NoSuchBucket") => format!(
                "S3 bucket `{b}` does not exist; create it or set `sinks.{s}.bucket` (events stay buffered and are retried)"
            ),
            Some("AccessDenied") | Some("AllAccessDisabled") => format!(
                "access to S3 bucket `{b}` was denied; grant the shipper's credentials s3:PutObject and the multipart actions on it (events stay buffered and are retried)"
            ),
            Some("InvalidAccessKeyId") | Some("SignatureDoesNotMatch") => format!(
                "S3 refused the shipper's credentials ({}); fix AWS_ACCESS_KEY_ID / AWS_PROFILE (events stay buffered and are retried)",
                f.describe()
            ),
            Some(c) if c.starts_with("KMS") => format!(
                "S3 could not use the SSE-KMS key of `sinks.{s}.sse_kms_key_id` ({}); check the key and the shipper's kms:GenerateDataKey permission",
                f.describe()
            ),
            _ => match d {
                Decision::Permanent => format!(
                    "S3 refused a request to bucket `{b}`: {}; retrying slowly",
                    f.describe()
                ),
                Decision::Throttled(_) => format!("S3 is throttling: {}", f.describe()),
                Decision::Retry => format!("S3 call failed, retrying: {}", f.describe()),
            },
        }
    }
}
