//! The broker-side telemetry of Wharf.
//!
//! - [`socket::SocketWriter`]: the non-blocking NDJSON writer to the
//!   shipper's Unix socket, with acks, resends and a bounded spool on disk.
//! - [`catalog`]: every metric with its MSK Prometheus and CloudWatch names,
//!   units and monitoring levels; `docs/metrics.md` is generated from it.
//! - [`MetricsRegistry`]: atomic counters and gauges the broker updates
//!   without locks, rendered as Prometheus text ([`http`] serves it on
//!   port 11001), as metric snapshot records with CloudWatch names
//!   ([`registry::snapshot`]) and as CloudWatch EMF ([`registry::emf`]).
//! - [`Auditor`] and [`AuditEvent`]: CloudTrail-shaped audit records, one
//!   per admin request.
//! - [`LogLayer`]: a `tracing` layer turning events into JSON log records
//!   on any [`LineSink`]; [`log_filter`] sets levels per module.
//! - `otlp` (feature `otlp`, on by default): OTLP/HTTP export of the same
//!   logs and metrics to a collector, started only when configured.
//!
//! - [`Telemetry`]: all of the above started from the broker's
//!   `[telemetry]` settings ([`TelemetryConfig`]) in one call.
//!
//! Wiring it into a broker by hand (what [`Telemetry::start`] does):
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//! use tracing_subscriber::layer::SubscriberExt;
//! use tracing_subscriber::util::SubscriberInitExt;
//! use tracing_subscriber::Layer;
//! use wharf_exporters::catalog::Level;
//! use wharf_exporters::registry::snapshot::{run_snapshots, DEFAULT_PERIOD};
//! use wharf_exporters::*;
//!
//! # async fn broker() -> Result<(), Box<dyn std::error::Error>> {
//! let keys = Arc::new(wharf_envelope::LocalKeyProvider::open_or_create("/var/lib/wharf/master.key")?);
//! // 1. The writer to the shipper's socket, with its encrypted spool.
//! let writer = SocketWriter::start(SocketWriterConfig::new(
//!     "/run/wharf/shipper.sock", "/var/lib/wharf/telemetry-spool", keys, "orders",
//! ))?;
//! // 2. Logs: tracing events become `kind: log` lines.
//! tracing_subscriber::registry()
//!     .with(LogLayer::new(writer.clone(), "orders", 1).with_filter(log_filter("info,wharf_broker::storage=debug")?))
//!     .init();
//! // 3. Metrics: handles updated on the hot path...
//! let metrics = MetricsRegistry::new("orders", 1);
//! metrics.attach_writer(writer.counters());
//! let payments = metrics.topic("payments");       // look up once, keep
//! payments.record_produce(1024, 10);              // per produce: atomics only
//! metrics.record_request(0, Duration::from_micros(850), false); // per request, by API key
//! metrics.set_gauge(BrokerGauge::PartitionCount, 3);
//! // ... served to Prometheus on 11001 and sent as snapshots every 60 s.
//! let listener = http::bind("0.0.0.0:11001".parse()?).await?;
//! tokio::spawn(http::serve(listener, metrics.clone(), std::future::pending()));
//! tokio::spawn(run_snapshots(metrics.clone(), writer.clone(), Level::Default, DEFAULT_PERIOD, std::future::pending()));
//! // 4. Audit: one record per admin request.
//! let audit = Auditor::new(writer.clone(), "orders", 1);
//! audit.emit(AuditEvent::new("CreateTopics").client_id("rdkafka").request_parameters(serde_json::json!({"topics": ["payments"]})));
//! // 5. On shutdown: flush what the shipper has not acknowledged into the spool.
//! writer.shutdown(Duration::from_secs(5));
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod audit;
pub mod catalog;
pub mod config;
mod error;
pub mod http;
pub mod logs;
#[cfg(feature = "otlp")]
pub mod otlp;
pub mod registry;
mod sink;
pub mod socket;
pub mod telemetry;
mod time;

pub use audit::{AuditEvent, Auditor};
pub use config::{TelemetryConfig, TelemetrySettings};
pub use error::Error;
pub use logs::{log_filter, LogLayer};
pub use registry::{BrokerGauge, MetricsRegistry};
pub use sink::{LineSink, MemorySink};
pub use socket::{SocketWriter, SocketWriterConfig, WriterStats};
pub use telemetry::Telemetry;
