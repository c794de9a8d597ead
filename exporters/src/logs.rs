//! Broker `tracing` events as JSON log records on the shipper's socket.
//!
//! [`LogLayer`] is a `tracing-subscriber` layer: each event becomes one
//! line `{"kind":"log","ts":…,"level":"INFO","message":…,"target":…,
//! "cluster":…,"broker":…, <fields>}`. Fields of the spans the event is in
//! are included (innermost wins), then the event's own fields. A field whose
//! name is one of the record's own keys is written as `field.<name>`.
//! Levels per module come from an `EnvFilter` built by [`log_filter`], e.g.
//! `info,wharf_broker::storage=debug`.

use std::fmt;
use std::time::SystemTime;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{EnvFilter, Layer};

use crate::sink::LineSink;
use crate::time::rfc3339_millis;
use crate::Error;

const RESERVED: &[&str] = &[
    "kind", "ts", "level", "message", "target", "cluster", "broker",
];

/// Turns events into log records on a [`LineSink`]; see the module docs.
pub struct LogLayer<W> {
    sink: W,
    cluster: String,
    broker: String,
}

impl<W: LineSink> LogLayer<W> {
    /// A layer writing to `sink`, stamping every record with the cluster
    /// name and broker id.
    pub fn new(sink: W, cluster: impl Into<String>, broker_id: impl fmt::Display) -> Self {
        Self {
            sink,
            cluster: cluster.into(),
            broker: broker_id.to_string(),
        }
    }
}

/// Parses per-module level directives (`EnvFilter` syntax), naming the bad
/// part when they do not parse.
pub fn log_filter(directives: &str) -> Result<EnvFilter, Error> {
    EnvFilter::builder()
        .parse(directives)
        .map_err(|e| Error::LogDirectives {
            directives: directives.to_string(),
            reason: e.to_string(),
        })
}

/// Span fields, kept in the span's extensions.
struct SpanFields(Map<String, Value>);

struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl JsonVisitor<'_> {
    fn put(&mut self, field: &Field, value: Value) {
        self.0.insert(field.name().to_string(), value);
    }
}

impl Visit for JsonVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(
            field,
            serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number),
        );
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, value.to_string().into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, format!("{value:?}").into());
    }
}

impl<S, W> Layer<S> for LogLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: LineSink,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Map::new();
        attrs.record(&mut JsonVisitor(&mut fields));
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(fields));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            let mut ext = span.extensions_mut();
            if let Some(SpanFields(fields)) = ext.get_mut::<SpanFields>() {
                values.record(&mut JsonVisitor(fields));
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Map::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(SpanFields(f)) = span.extensions().get::<SpanFields>() {
                    fields.extend(f.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
        }
        let mut own = Map::new();
        event.record(&mut JsonVisitor(&mut own));
        let message = own
            .remove("message")
            .unwrap_or(Value::String(String::new()));
        fields.extend(own);

        let meta = event.metadata();
        let mut record = Map::new();
        record.insert("kind".into(), "log".into());
        record.insert("ts".into(), rfc3339_millis(SystemTime::now()).into());
        record.insert("level".into(), meta.level().as_str().into());
        record.insert("message".into(), message);
        record.insert("target".into(), meta.target().into());
        record.insert("cluster".into(), self.cluster.as_str().into());
        record.insert("broker".into(), self.broker.as_str().into());
        for (k, v) in fields {
            if RESERVED.contains(&k.as_str()) {
                record.insert(format!("field.{k}"), v);
            } else {
                record.insert(k, v);
            }
        }
        let line = serde_json::to_vec(&Value::Object(record)).unwrap_or_default();
        self.sink.try_send_line(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::MemorySink;
    use tracing_subscriber::layer::SubscriberExt;

    fn capture(directives: &str, f: impl FnOnce()) -> Vec<Value> {
        let sink = MemorySink::new();
        let subscriber = tracing_subscriber::registry().with(
            LogLayer::new(sink.clone(), "orders", 2).with_filter(log_filter(directives).unwrap()),
        );
        tracing::subscriber::with_default(subscriber, f);
        sink.json_lines()
    }

    #[test]
    fn an_event_becomes_one_log_record_with_its_fields_and_span_fields() {
        let lines = capture("info", || {
            let span = tracing::info_span!("conn", peer = "10.0.0.7:5123", client_id = "kcat");
            let _g = span.enter();
            tracing::info!(
                topic = "payments",
                partition = 3,
                bytes = 1024u64,
                ok = true,
                "produced"
            );
        });
        assert_eq!(lines.len(), 1);
        let r = &lines[0];
        assert_eq!(r["kind"], "log");
        assert_eq!(r["level"], "INFO");
        assert_eq!(r["message"], "produced");
        assert_eq!(r["target"], module_path!());
        assert_eq!(r["cluster"], "orders");
        assert_eq!(r["broker"], "2");
        assert_eq!(r["topic"], "payments");
        assert_eq!(r["partition"], 3);
        assert_eq!(r["bytes"], 1024);
        assert_eq!(r["ok"], true);
        assert_eq!(r["peer"], "10.0.0.7:5123");
        assert_eq!(r["client_id"], "kcat");
        let ts = r["ts"].as_str().unwrap();
        assert!(
            ts.len() == 24 && ts.ends_with('Z') && ts.as_bytes()[10] == b'T',
            "{ts}"
        );
    }

    #[test]
    fn fields_named_like_record_keys_do_not_overwrite_them() {
        let lines = capture("info", || {
            tracing::warn!(level = "custom", broker = 9, "clash");
        });
        assert_eq!(lines[0]["level"], "WARN");
        assert_eq!(lines[0]["broker"], "2");
        assert_eq!(lines[0]["field.level"], "custom");
        assert_eq!(lines[0]["field.broker"], 9);
    }

    #[test]
    fn levels_are_chosen_per_module() {
        let lines = capture("warn,wharf_broker::storage=debug", || {
            tracing::info!(target: "wharf_broker::protocol", "hidden");
            tracing::debug!(target: "wharf_broker::storage::segment", "shown debug");
            tracing::trace!(target: "wharf_broker::storage", "hidden trace");
            tracing::error!(target: "wharf_broker::protocol", "shown error");
        });
        let messages: Vec<&str> = lines
            .iter()
            .map(|l| l["message"].as_str().unwrap())
            .collect();
        assert_eq!(messages, ["shown debug", "shown error"]);
    }

    #[test]
    fn bad_directives_are_refused_with_the_text() {
        let err = log_filter("info,wharf_broker=loud")
            .unwrap_err()
            .to_string();
        assert!(err.contains("wharf_broker=loud"), "{err}");
    }
}
