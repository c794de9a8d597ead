//! The broker-side telemetry of Wharf.
//!
//! - [`socket::SocketWriter`]: the non-blocking NDJSON writer to the
//!   shipper's Unix socket, with acks, resends and a bounded spool on disk.

#![warn(missing_docs)]

mod error;
pub mod socket;
#[allow(dead_code)] // used by the log layer and audit records (next steps)
mod time;

pub use error::Error;
pub use socket::{SocketWriter, SocketWriterConfig, WriterStats};
