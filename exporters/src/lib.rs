//! The broker-side telemetry of Wharf.
//!
//! - [`socket::SocketWriter`]: the non-blocking NDJSON writer to the
//!   shipper's Unix socket, with acks, resends and a bounded spool on disk.
//! - [`catalog`]: every metric with its MSK Prometheus and CloudWatch names,
//!   units and monitoring levels; `docs/metrics.md` is generated from it.
//! - [`LogLayer`]: a `tracing` layer turning events into JSON log records
//!   on any [`LineSink`]; [`log_filter`] sets levels per module.

#![warn(missing_docs)]

pub mod catalog;
mod error;
pub mod logs;
mod sink;
pub mod socket;
#[allow(dead_code)] // epoch_millis is for the metric snapshots (next step)
mod time;

pub use error::Error;
pub use logs::{log_filter, LogLayer};
pub use sink::{LineSink, MemorySink};
pub use socket::{SocketWriter, SocketWriterConfig, WriterStats};
