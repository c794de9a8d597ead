//! The shipper's own metrics (Prometheus text on `/metrics`) and health.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabel {
    source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InvalidLabel {
    source: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SinkLabel {
    sink: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabel {
    operation: String,
}

/// Every metric the shipper exports.
pub struct Metrics {
    registry: Registry,
    received: Family<SourceLabel, Counter>,
    acked: Family<SourceLabel, Counter>,
    invalid: Family<InvalidLabel, Counter>,
    dropped: Family<SourceLabel, Counter>,
    connections: Family<SourceLabel, Gauge>,
    delivered: Family<SinkLabel, Counter>,
    retried: Family<SinkLabel, Counter>,
    dead_lettered: Family<SinkLabel, Counter>,
    oversize: Family<SinkLabel, Counter>,
    objects: Family<SinkLabel, Counter>,
    object_bytes: Family<SinkLabel, Counter>,
    oldest_age: Family<SinkLabel, Gauge<f64, AtomicU64>>,
    kms_calls: Family<OpLabel, Counter>,
    /// Total bytes of the buffer's segment files.
    pub buffer_bytes: Gauge,
    problems: Mutex<BTreeMap<String, String>>,
    /// Per sink: when the oldest event it has not had acknowledged was
    /// accepted (epoch ms); the age gauge is computed from it at scrape.
    oldest_pending: Mutex<BTreeMap<String, Option<u64>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("wharf_shipper");
        let m = Metrics {
            received: Family::default(),
            acked: Family::default(),
            invalid: Family::default(),
            dropped: Family::default(),
            connections: Family::default(),
            delivered: Family::default(),
            retried: Family::default(),
            dead_lettered: Family::default(),
            oversize: Family::default(),
            objects: Family::default(),
            object_bytes: Family::default(),
            oldest_age: Family::default(),
            kms_calls: Family::default(),
            buffer_bytes: Gauge::default(),
            problems: Mutex::default(),
            oldest_pending: Mutex::default(),
            registry: Registry::default(),
        };
        registry.register(
            "events_received",
            "Lines accepted by a source",
            m.received.clone(),
        );
        registry.register(
            "events_acked",
            "Lines acked to clients after they were durable",
            m.acked.clone(),
        );
        registry.register("events_dead_lettered", "Lines refused by a source (bad JSON, no kind, too long), written to the dead-letter file", m.invalid.clone());
        registry.register(
            "events_dropped",
            "Lines dropped because the buffer was full (when_full = drop_newest)",
            m.dropped.clone(),
        );
        registry.register(
            "connections",
            "Clients connected to a source",
            m.connections.clone(),
        );
        registry.register(
            "sink_events_delivered",
            "Events a sink's destination acknowledged",
            m.delivered.clone(),
        );
        registry.register(
            "sink_events_retried",
            "Events in requests a sink retried",
            m.retried.clone(),
        );
        registry.register(
            "sink_events_dead_lettered",
            "Events a sink gave up on and dead-lettered",
            m.dead_lettered.clone(),
        );
        registry.register(
            "sink_events_oversize",
            "Events longer than the destination allows, truncated or split with a marker",
            m.oversize.clone(),
        );
        registry.register("sink_objects", "Objects a sink wrote", m.objects.clone());
        registry.register(
            "sink_object_bytes",
            "Bytes of the objects a sink wrote (compressed, encrypted)",
            m.object_bytes.clone(),
        );
        registry.register(
            "sink_oldest_unacked_age_seconds",
            "Age of the oldest event a sink has not yet had acknowledged",
            m.oldest_age.clone(),
        );
        registry.register(
            "kms_calls",
            "Calls to the master key (GenerateDataKey, Decrypt)",
            m.kms_calls.clone(),
        );
        registry.register(
            "buffer_bytes",
            "Bytes of the durable buffer's segment files",
            m.buffer_bytes.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let now = chrono::Utc::now().timestamp_millis() as u64;
        for (sink, since) in self.oldest_pending.lock().unwrap().iter() {
            let age = since.map_or(0.0, |t| now.saturating_sub(t) as f64 / 1000.0);
            self.oldest_age(sink).set(age);
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }

    fn src(source: &str) -> SourceLabel {
        SourceLabel {
            source: source.to_owned(),
        }
    }

    fn sink(sink: &str) -> SinkLabel {
        SinkLabel {
            sink: sink.to_owned(),
        }
    }

    /// Creates every per-source and per-sink series at 0, so that
    /// dashboards and alert rules see them before the first event (and
    /// `increase()` counts that first event).
    pub fn declare(&self, sources: &[String], sinks: &[String]) {
        for source in sources {
            self.received(source);
            self.acked(source);
            self.dropped(source);
            self.connections(source);
            for reason in [
                "incomplete",
                "not_json",
                "not_object",
                "missing_kind",
                "bad_kind",
                "bad_ts",
                "too_long",
            ] {
                self.invalid(source, reason);
            }
        }
        for sink in sinks {
            self.delivered(sink);
            self.retried(sink);
            self.sink_dead_lettered(sink);
            self.objects(sink);
            self.object_bytes(sink);
        }
    }

    /// Lines a source accepted.
    pub fn received(&self, source: &str) -> Counter {
        self.received.get_or_create(&Self::src(source)).clone()
    }
    /// Lines acked.
    pub fn acked(&self, source: &str) -> Counter {
        self.acked.get_or_create(&Self::src(source)).clone()
    }
    /// Lines refused for `reason`.
    pub fn invalid(&self, source: &str, reason: &str) -> Counter {
        self.invalid
            .get_or_create(&InvalidLabel {
                source: source.to_owned(),
                reason: reason.to_owned(),
            })
            .clone()
    }
    /// Lines dropped on a full buffer.
    pub fn dropped(&self, source: &str) -> Counter {
        self.dropped.get_or_create(&Self::src(source)).clone()
    }
    /// Connected clients.
    pub fn connections(&self, source: &str) -> Gauge {
        self.connections.get_or_create(&Self::src(source)).clone()
    }
    /// Events delivered by a sink.
    pub fn delivered(&self, sink: &str) -> Counter {
        self.delivered.get_or_create(&Self::sink(sink)).clone()
    }
    /// Events retried by a sink.
    pub fn retried(&self, sink: &str) -> Counter {
        self.retried.get_or_create(&Self::sink(sink)).clone()
    }
    /// Events dead-lettered by a sink.
    pub fn sink_dead_lettered(&self, sink: &str) -> Counter {
        self.dead_lettered.get_or_create(&Self::sink(sink)).clone()
    }
    /// Events a sink truncated or split.
    pub fn oversize(&self, sink: &str) -> Counter {
        self.oversize.get_or_create(&Self::sink(sink)).clone()
    }
    /// Objects written by a sink.
    pub fn objects(&self, sink: &str) -> Counter {
        self.objects.get_or_create(&Self::sink(sink)).clone()
    }
    /// Object bytes written by a sink.
    pub fn object_bytes(&self, sink: &str) -> Counter {
        self.object_bytes.get_or_create(&Self::sink(sink)).clone()
    }
    /// Records when the oldest event `sink` has not had acknowledged was
    /// accepted (`None`: it has everything acknowledged).
    pub fn set_oldest_pending(&self, sink: &str, accepted_millis: Option<u64>) {
        self.oldest_pending
            .lock()
            .unwrap()
            .insert(sink.to_owned(), accepted_millis);
    }

    /// Oldest unacknowledged event's age for a sink.
    fn oldest_age(&self, sink: &str) -> Gauge<f64, AtomicU64> {
        self.oldest_age.get_or_create(&Self::sink(sink)).clone()
    }
    /// Counts one call to the master key.
    pub fn kms_call(&self, operation: &str) {
        self.kms_calls
            .get_or_create(&OpLabel {
                operation: operation.to_owned(),
            })
            .inc();
    }

    /// Records (or, with `None`, clears) a problem a part of the shipper
    /// has, shown by `/health`.
    pub fn set_problem(&self, part: &str, problem: Option<String>) {
        let mut p = self.problems.lock().unwrap();
        match problem {
            Some(text) => {
                p.insert(part.to_owned(), text);
            }
            None => {
                p.remove(part);
            }
        }
    }

    /// The current problems, by part.
    pub fn problems(&self) -> BTreeMap<String, String> {
        self.problems.lock().unwrap().clone()
    }
}
