//! The AWS SDK configuration every AWS sink starts from: the standard
//! chain (`AWS_ENDPOINT_URL`, `AWS_REGION`, profiles, ...), the sink's
//! endpoint override, and timeouts so that a connection that never
//! answers becomes a retried timeout rather than a stuck sink.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;

/// Longest a connection may take to open.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest one attempt of a call may take (a full 4 MiB PutRecordBatch
/// included).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);

/// The SDK configuration of a sink with `endpoint_url`.
pub async fn sdk_config(endpoint_url: Option<&str>) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).timeout_config(
        TimeoutConfig::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .operation_attempt_timeout(ATTEMPT_TIMEOUT)
            .build(),
    );
    if let Some(url) = endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}
