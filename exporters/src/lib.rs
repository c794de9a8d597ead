//! The broker-side telemetry of Wharf.
//!
//! - [`socket::SocketWriter`]: the non-blocking NDJSON writer to the
//!   shipper's Unix socket, with acks, resends and a bounded spool on disk.
//! - [`LogLayer`]: a `tracing` layer turning events into JSON log records
//!   on any [`LineSink`]; [`log_filter`] sets levels per module.

#![warn(missing_docs)]

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
