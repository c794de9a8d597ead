//! Retry decisions for every AWS call, as one pure function.
//!
//! [`classify`] looks at the facts of an error (error code, HTTP status,
//! whether the request got an answer at all) and says whether to retry
//! soon, back off because AWS is throttling, or stop because retrying
//! cannot help. [`Backoff`] turns attempts into jittered delays. Both are
//! tested on fixtures without a network; sinks convert SDK errors with
//! [`ErrorFacts::from_sdk`].

use std::time::Duration;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_smithy_types::error::metadata::ErrorMetadata;

/// What went wrong with a call, independent of the SDK's types.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorFacts {
    /// The service's error code (`SlowDown`, `NoSuchBucket`, ...).
    pub code: Option<String>,
    /// The service's message.
    pub message: Option<String>,
    /// HTTP status, when there was a response.
    pub status: Option<u16>,
    /// No response: timeout, connection refused or reset.
    pub transport: Option<Transport>,
    /// A `Retry-After` the service sent.
    pub retry_after: Option<Duration>,
}

/// How a request failed without an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// It timed out.
    Timeout,
    /// It could not be sent or the connection broke.
    Io,
    /// The SDK could not build it (a bug or bad configuration).
    Construction,
}

/// What to do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Transient: retry after a short jittered backoff.
    Retry,
    /// The service is throttling: back off longer (at least the hint).
    Throttled(Option<Duration>),
    /// Retrying the same request cannot succeed.
    Permanent,
}

const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

const TRANSIENT: &[&str] = &[
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "InternalServiceError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "ServiceFailure",
    "OperationAborted",
    "ExpiredToken",
    "ExpiredTokenException",
    "RequestExpired",
    "RequestTimeTooSkewed",
    "IDPCommunicationError",
];

/// The decision for an error.
pub fn classify(e: &ErrorFacts) -> Decision {
    if let Some(code) = e.code.as_deref() {
        if THROTTLING.contains(&code) {
            return Decision::Throttled(e.retry_after);
        }
        if TRANSIENT.contains(&code) {
            return Decision::Retry;
        }
    }
    match e.status {
        Some(429) => return Decision::Throttled(e.retry_after),
        Some(s) if s >= 500 => return Decision::Retry,
        Some(408) => return Decision::Retry,
        Some(s) if (400..500).contains(&s) => return Decision::Permanent,
        _ => {}
    }
    match e.transport {
        Some(Transport::Timeout) | Some(Transport::Io) => Decision::Retry,
        Some(Transport::Construction) => Decision::Permanent,
        // A modelled error without a status we know: be safe and retry.
        None => Decision::Retry,
    }
}

impl ErrorFacts {
    /// The facts of an AWS SDK error.
    pub fn from_sdk<E>(err: &aws_sdk_s3::error::SdkError<E, HttpResponse>) -> ErrorFacts
    where
        E: ProvideErrorMetadata,
    {
        use aws_sdk_s3::error::SdkError;
        let mut f = ErrorFacts::default();
        match err {
            SdkError::ConstructionFailure(_) => f.transport = Some(Transport::Construction),
            SdkError::TimeoutError(_) => f.transport = Some(Transport::Timeout),
            SdkError::DispatchFailure(d) => {
                f.transport = Some(if d.is_timeout() {
                    Transport::Timeout
                } else {
                    Transport::Io
                })
            }
            SdkError::ResponseError(r) => {
                f.status = Some(r.raw().status().as_u16());
                f.transport = Some(Transport::Io);
            }
            SdkError::ServiceError(s) => {
                let raw = s.raw();
                f.status = Some(raw.status().as_u16());
                f.retry_after = raw
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.parse::<u64>().ok())
                    .map(Duration::from_secs);
                let meta: &ErrorMetadata = ProvideErrorMetadata::meta(s.err());
                f.code = meta.code().map(str::to_owned);
                f.message = meta.message().map(str::to_owned);
            }
            _ => f.transport = Some(Transport::Io),
        }
        f
    }

    /// A one-line description for logs.
    pub fn describe(&self) -> String {
        match (&self.code, &self.status, &self.transport) {
            (Some(c), s, _) => format!(
                "{c}{}{}",
                s.map(|s| format!(" (HTTP {s})")).unwrap_or_default(),
                self.message
                    .as_ref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            ),
            (None, Some(s), _) => format!("HTTP {s}"),
            (None, None, Some(Transport::Timeout)) => "the request timed out".into(),
            (None, None, Some(Transport::Io)) => "the endpoint could not be reached".into(),
            (None, None, Some(Transport::Construction)) => "the request could not be built".into(),
            (None, None, None) => "an unknown error".into(),
        }
    }
}

/// Jittered exponential backoff ("full jitter").
#[derive(Debug, Clone)]
pub struct Backoff {
    /// First delay's upper bound.
    pub base: Duration,
    /// Largest delay.
    pub max: Duration,
    attempt: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(20),
            attempt: 0,
        }
    }
}

impl Backoff {
    /// Failures so far.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// Starts over after a success.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The delay before the next attempt, given the decision.
    pub fn next_delay(&mut self, decision: Decision) -> Duration {
        self.attempt = self.attempt.saturating_add(1);
        let (base, floor) = match decision {
            Decision::Retry => (self.base, Duration::ZERO),
            Decision::Throttled(hint) => (self.base * 5, hint.unwrap_or(Duration::ZERO)),
            Decision::Permanent => (self.max, self.max / 2),
        };
        let cap = base
            .saturating_mul(1u32 << self.attempt.min(16))
            .min(self.max);
        let jittered = cap.mul_f64(rand::random::<f64>());
        jittered.max(floor).min(self.max.max(floor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(code: Option<&str>, status: Option<u16>, transport: Option<Transport>) -> ErrorFacts {
        ErrorFacts {
            code: code.map(str::to_owned),
            status,
            transport,
            ..Default::default()
        }
    }

    #[test]
    fn fixtures() {
        use Decision::*;
        let cases = [
            (facts(Some("SlowDown"), Some(503), None), Throttled(None)),
            (
                facts(Some("ThrottlingException"), Some(400), None),
                Throttled(None),
            ),
            (facts(None, Some(429), None), Throttled(None)),
            (facts(Some("InternalError"), Some(500), None), Retry),
            (facts(Some("ServiceUnavailable"), Some(503), None), Retry),
            (facts(None, Some(502), None), Retry),
            (facts(Some("RequestTimeout"), Some(400), None), Retry),
            (facts(Some("ExpiredToken"), Some(400), None), Retry),
            (facts(None, None, Some(Transport::Timeout)), Retry),
            (facts(None, None, Some(Transport::Io)), Retry),
            (facts(Some("NoSuchBucket"), Some(404), None), Permanent),
            (facts(Some("AccessDenied"), Some(403), None), Permanent),
            (
                facts(Some("InvalidAccessKeyId"), Some(403), None),
                Permanent,
            ),
            (facts(Some("EntityTooSmall"), Some(400), None), Permanent),
            (
                facts(Some("KMS.NotFoundException"), Some(400), None),
                Permanent,
            ),
            (facts(None, None, Some(Transport::Construction)), Permanent),
        ];
        for (f, want) in cases {
            assert_eq!(classify(&f), want, "{f:?}");
        }
        let hinted = ErrorFacts {
            retry_after: Some(Duration::from_secs(3)),
            ..facts(Some("SlowDown"), Some(503), None)
        };
        assert_eq!(classify(&hinted), Throttled(Some(Duration::from_secs(3))));
    }

    #[test]
    fn backoff_grows_with_jitter_and_respects_hints_and_cap() {
        let mut b = Backoff::default();
        for _ in 0..50 {
            let d = b.next_delay(Decision::Retry);
            assert!(d <= b.max);
        }
        let mut b = Backoff::default();
        let d = b.next_delay(Decision::Throttled(Some(Duration::from_secs(2))));
        assert!(d >= Duration::from_secs(2));
        let mut b = Backoff::default();
        let delays: Vec<_> = (0..20).map(|_| b.next_delay(Decision::Retry)).collect();
        assert!(
            delays
                .iter()
                .collect::<std::collections::HashSet<_>>()
                .len()
                > 1,
            "jittered"
        );
        b.reset();
        assert_eq!(b.attempts(), 0);
    }
}
