//! Builds the sink: a [`LogBatcher`] over the templates, a
//! [`LogsService`], and the request [`Driver`].

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::batch::{Format, LogBatcher};
use super::config::LogsTarget;
use super::service::{client, LogsService};
use super::template::NameTemplate;
use crate::buffer::Buffer;
use crate::error::Result;
use crate::metrics::Metrics;
use crate::record::Record;
use crate::sinks::dead_letter::SinkDeadLetter;
use crate::sinks::driver::Driver;
use crate::sinks::Filter;

/// The message of a record: its delivered NDJSON form (with `wharf_id`),
/// without the newline.
pub fn record_format(group: NameTemplate, stream: NameTemplate) -> Format {
    Box::new(move |r: &Record| {
        let event = if group.has_fields() || stream.has_fields() {
            serde_json::from_slice::<serde_json::Value>(&r.line).ok()
        } else {
            None
        };
        let mut out = Vec::with_capacity(r.line.len() + 64);
        r.write_ndjson(&mut out);
        out.pop();
        let message = String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        Ok((
            group.render(r, event.as_ref()),
            stream.render(r, event.as_ref()),
            message,
        ))
    })
}

/// Everything a sink needs from the shipper.
pub struct Wiring {
    /// The sink's name.
    pub name: String,
    /// Which records it takes.
    pub filter: Filter,
    /// The buffer.
    pub buffer: Buffer,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Where refused events go.
    pub dead_letter: Arc<SinkDeadLetter>,
    /// Cancelled when requests must give up.
    pub hard_stop: CancellationToken,
}

/// A running sink sending `target`'s events formatted by `format`.
pub async fn build(
    w: Wiring,
    target: &LogsTarget,
    format: Format,
) -> Result<Driver<LogBatcher, LogsService>> {
    let service_name = w.name.clone();
    let service = LogsService {
        client: client(target.endpoint_url.as_deref()).await,
        sink: w.name.clone(),
        create_missing: target.create_missing,
        retention_days: target.retention_days,
        kms_key_id: target.kms_key_id.clone(),
        metrics: w.metrics.clone(),
        stop: w.hard_stop,
        groups: Default::default(),
    };
    Ok(Driver {
        name: w.name,
        filter: w.filter,
        batcher: {
            let mut b = LogBatcher::new(target.limits(), format);
            b.oversize = w.metrics.oversize(&service_name);
            b
        },
        sender: Arc::new(service),
        dead_letter: w.dead_letter,
        max_in_flight: target.max_in_flight,
        buffer: w.buffer,
        metrics: w.metrics,
    })
}
