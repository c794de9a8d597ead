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

#![warn(missing_docs)]

pub mod audit;
pub mod catalog;
mod error;
pub mod http;
pub mod logs;
pub mod registry;
mod sink;
pub mod socket;
mod time;

pub use audit::{AuditEvent, Auditor};
pub use error::Error;
pub use logs::{log_filter, LogLayer};
pub use registry::{BrokerGauge, MetricsRegistry};
pub use sink::{LineSink, MemorySink};
pub use socket::{SocketWriter, SocketWriterConfig, WriterStats};
