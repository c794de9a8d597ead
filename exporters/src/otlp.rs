//! OTLP export of the same logs and metrics to an OpenTelemetry collector
//! (OTLP/HTTP with JSON bodies), off unless the broker configures an
//! endpoint.
//!
//! Metrics: every Prometheus series of the [catalog](crate::catalog) as an
//! observable instrument of the same name (counters as cumulative sums,
//! the rest as gauges), with the same labels as attributes (`name`
//! included), read from the [`MetricsRegistry`] at each export. Logs: the
//! `tracing` events, through OpenTelemetry's tracing bridge
//! ([`OtlpExporter::log_layer`]).

use std::time::Duration;

use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge;
use opentelemetry_otlp::{LogExporter, MetricExporter, Protocol, WithExportConfig};
use opentelemetry_sdk::logs::{SdkLogger, SdkLoggerProvider};
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::Resource;

use crate::catalog::{self, Kind};
use crate::registry::MetricsRegistry;
use crate::Error;

/// Where and how often to export.
#[derive(Debug, Clone)]
pub struct OtlpConfig {
    /// The collector's OTLP/HTTP base URL, e.g. `http://127.0.0.1:4318`;
    /// `/v1/metrics` and `/v1/logs` are appended.
    pub endpoint: String,
    /// How often metrics are exported (default 60 s).
    pub metrics_interval: Duration,
    /// The `service.name` resource attribute (default `wharf-broker`).
    pub service_name: String,
}

impl OtlpConfig {
    /// Defaults for a collector at `endpoint`.
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            metrics_interval: Duration::from_secs(60),
            service_name: "wharf-broker".into(),
        }
    }
}

/// A running OTLP export; [`OtlpExporter::shutdown`] flushes it.
#[derive(Debug)]
pub struct OtlpExporter {
    meters: SdkMeterProvider,
    logs: SdkLoggerProvider,
}

fn otlp_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Otlp(format!("{what}: {e}"))
}

impl OtlpExporter {
    /// Starts exporting `registry`'s metrics, and prepares the log export.
    /// Exports run on OpenTelemetry's own threads, never on the caller's.
    pub fn start(cfg: &OtlpConfig, registry: &MetricsRegistry) -> Result<Self, Error> {
        let base = cfg.endpoint.trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Error::Config {
                key: "otlp.endpoint",
                reason: format!(
                    "`{base}` is not an http:// or https:// URL, e.g. http://127.0.0.1:4318"
                ),
            });
        }
        let resource = Resource::builder()
            .with_service_name(cfg.service_name.clone())
            .with_attributes([
                KeyValue::new("kafka.cluster.name", registry.cluster().to_string()),
                KeyValue::new("kafka.broker.id", registry.broker_id().to_string()),
            ])
            .build();

        let metric_exporter = MetricExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpJson)
            .with_endpoint(format!("{base}/v1/metrics"))
            .build()
            .map_err(|e| otlp_err("cannot build the OTLP metric exporter", e))?;
        let reader = PeriodicReader::builder(metric_exporter)
            .with_interval(cfg.metrics_interval)
            .build();
        let meters = SdkMeterProvider::builder()
            .with_resource(resource.clone())
            .with_reader(reader)
            .build();
        register_instruments(&meters, registry);

        let log_exporter = LogExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpJson)
            .with_endpoint(format!("{base}/v1/logs"))
            .build()
            .map_err(|e| otlp_err("cannot build the OTLP log exporter", e))?;
        let logs = SdkLoggerProvider::builder()
            .with_resource(resource)
            .with_batch_exporter(log_exporter)
            .build();
        Ok(Self { meters, logs })
    }

    /// A `tracing` layer sending events to the collector as OTLP log
    /// records; add it beside [`LogLayer`](crate::LogLayer), with its own
    /// filter.
    pub fn log_layer(&self) -> OpenTelemetryTracingBridge<SdkLoggerProvider, SdkLogger> {
        OpenTelemetryTracingBridge::new(&self.logs)
    }

    /// Exports everything pending now.
    pub fn flush(&self) -> Result<(), Error> {
        self.meters
            .force_flush()
            .map_err(|e| otlp_err("flushing OTLP metrics failed", e))?;
        self.logs
            .force_flush()
            .map_err(|e| otlp_err("flushing OTLP logs failed", e))
    }

    /// Flushes and stops the exports.
    pub fn shutdown(self) -> Result<(), Error> {
        let m = self.meters.shutdown();
        let l = self.logs.shutdown();
        m.map_err(|e| otlp_err("stopping the OTLP metric export failed", e))?;
        l.map_err(|e| otlp_err("stopping the OTLP log export failed", e))
    }
}

/// One observable instrument per Prometheus metric name of the catalog.
fn register_instruments(meters: &SdkMeterProvider, registry: &MetricsRegistry) {
    let meter = meters.meter("wharf-broker");
    let mut done: Vec<&str> = Vec::new();
    for def in catalog::CATALOG {
        let Some(p) = def.prometheus else { continue };
        if done.contains(&p.metric) {
            continue;
        }
        done.push(p.metric);
        // (row key, value of the `name` label) of every row of this metric.
        let rows: Vec<(&'static str, Option<&'static str>)> = catalog::CATALOG
            .iter()
            .filter_map(|d| {
                d.prometheus
                    .filter(|q| q.metric == p.metric)
                    .map(|q| (d.key, q.name_label))
            })
            .collect();
        let counter = catalog::CATALOG
            .iter()
            .filter(|d| d.prometheus.is_some_and(|q| q.metric == p.metric))
            .all(|d| d.kind == Kind::Counter);
        let reg = registry.clone();
        let observe = move |report: &mut dyn FnMut(f64, &[KeyValue])| {
            for s in reg.collect() {
                let Some((_, name)) = rows.iter().find(|(k, _)| *k == s.key) else {
                    continue;
                };
                let mut attrs: Vec<KeyValue> = Vec::with_capacity(s.labels.len() + 1);
                if let Some(n) = name {
                    attrs.push(KeyValue::new("name", *n));
                }
                attrs.extend(s.labels.iter().map(|(k, v)| KeyValue::new(*k, v.clone())));
                report(s.value, &attrs);
            }
        };
        if counter {
            meter
                .f64_observable_counter(p.metric)
                .with_description(def.description)
                .with_callback(move |o| observe(&mut |v, a| o.observe(v, a)))
                .build();
        } else {
            meter
                .f64_observable_gauge(p.metric)
                .with_description(def.description)
                .with_callback(move |o| observe(&mut |v, a| o.observe(v, a)))
                .build();
        }
    }
}
