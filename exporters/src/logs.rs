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

use serde_json::Value;
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
    /// `,"cluster":…,"broker":…`, serialized once.
    identity: String,
}

impl<W: LineSink> LogLayer<W> {
    /// A layer writing to `sink`, stamping every record with the cluster
    /// name and broker id.
    pub fn new(sink: W, cluster: impl Into<String>, broker_id: impl fmt::Display) -> Self {
        let cluster = Value::String(cluster.into());
        let broker = Value::String(broker_id.to_string());
        let mut identity = Vec::new();
        push_field(&mut identity, "cluster", &cluster);
        push_field(&mut identity, "broker", &broker);
        Self {
            sink,
            identity: String::from_utf8(identity).unwrap_or_default(),
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

/// Fields by name, in the order they were recorded; a name recorded again
/// replaces its value.
type Fields = Vec<(&'static str, Value)>;

/// Span fields, kept in the span's extensions.
struct SpanFields(Fields);

struct JsonVisitor<'a>(&'a mut Fields);

impl JsonVisitor<'_> {
    fn put(&mut self, field: &Field, value: Value) {
        let name = field.name();
        match self.0.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name, value)),
        }
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

/// Appends `"key":` then the JSON of `value`.
fn push_field(out: &mut Vec<u8>, key: &str, value: &Value) {
    out.push(b',');
    let _ = serde_json::to_writer(&mut *out, key);
    out.push(b':');
    let _ = serde_json::to_writer(&mut *out, value);
}

impl<S, W> Layer<S> for LogLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: LineSink,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::new();
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
        let mut own = Fields::new();
        event.record(&mut JsonVisitor(&mut own));
        let message = own
            .iter()
            .position(|(k, _)| *k == "message")
            .map(|i| own.swap_remove(i).1);

        let meta = event.metadata();
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(b"{\"kind\":\"log\",\"ts\":\"");
        out.extend_from_slice(rfc3339_millis(SystemTime::now()).as_bytes());
        out.extend_from_slice(b"\",\"level\":\"");
        out.extend_from_slice(meta.level().as_str().as_bytes());
        out.extend_from_slice(b"\",\"message\":");
        match &message {
            Some(Value::String(m)) => {
                let _ = serde_json::to_writer(&mut out, m);
            }
            Some(v) => {
                let _ = serde_json::to_writer(&mut out, &v.to_string());
            }
            None => out.extend_from_slice(b"\"\""),
        }
        push_field(&mut out, "target", &Value::String(meta.target().into()));
        out.extend_from_slice(self.identity.as_bytes());

        // The event's own fields win over its spans', inner spans over outer.
        let mut written: Vec<&'static str> = Vec::with_capacity(own.len() + 4);
        let mut write = |out: &mut Vec<u8>, k: &'static str, v: &Value| {
            if written.contains(&k) {
                return;
            }
            written.push(k);
            if RESERVED.contains(&k) {
                push_field(out, &format!("field.{k}"), v);
            } else {
                push_field(out, k, v);
            }
        };
        for (k, v) in &own {
            write(&mut out, k, v);
        }
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope {
                if let Some(SpanFields(f)) = span.extensions().get::<SpanFields>() {
                    for (k, v) in f {
                        write(&mut out, k, v);
                    }
                }
            }
        }
        out.push(b'}');
        self.sink.try_send_line(out);
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
    fn inner_spans_and_the_event_win_over_outer_spans() {
        let lines = capture("info", || {
            let outer = tracing::info_span!("conn", who = "outer", peer = "p");
            let _o = outer.enter();
            let inner = tracing::info_span!("req", who = "inner", request = "Produce");
            let _i = inner.enter();
            tracing::info!(request = "Fetch", "x");
        });
        let r = &lines[0];
        assert_eq!(r["who"], "inner");
        assert_eq!(r["request"], "Fetch");
        assert_eq!(r["peer"], "p");
        assert_eq!(r["message"], "x");
    }

    #[test]
    fn messages_and_values_are_escaped() {
        let lines = capture("info", || {
            tracing::info!(path = "a\"b\nc", "quote \" and newline \n end");
        });
        assert_eq!(lines[0]["message"], "quote \" and newline \n end");
        assert_eq!(lines[0]["path"], "a\"b\nc");
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
