//! Builds the Firehose sink: a [`FirehoseBatcher`], a
//! [`FirehoseService`] and the request [`Driver`].

use std::sync::Arc;

use wharf_envelope::KeyProvider;

use super::batch::FirehoseBatcher;
use super::config::{FirehoseEncryption, FirehoseSinkConfig};
use super::service::{client, FirehoseService};
use crate::error::Result;
use crate::sinks::cloudwatch_logs::Wiring;
use crate::sinks::driver::Driver;

/// The running sink; `provider` is the shipper's (cached) master key.
pub async fn build(
    w: Wiring,
    c: &FirehoseSinkConfig,
    provider: Arc<dyn KeyProvider>,
) -> Result<Driver<FirehoseBatcher, FirehoseService>> {
    let encrypted = c.encryption == FirehoseEncryption::Envelope;
    let service = FirehoseService {
        client: client(c.endpoint_url.as_deref()).await,
        stream: c.delivery_stream.clone(),
        sink: w.name.clone(),
        max_attempts: c.max_attempts,
        sealer: encrypted.then_some(provider),
        metrics: w.metrics.clone(),
        stop: w.hard_stop,
    };
    Ok(Driver {
        name: w.name,
        filter: w.filter,
        batcher: FirehoseBatcher::new(c.pack_bytes(), encrypted, c.max_age.0),
        sender: Arc::new(service),
        dead_letter: w.dead_letter,
        max_in_flight: c.max_in_flight,
        buffer: w.buffer,
        metrics: w.metrics,
    })
}
