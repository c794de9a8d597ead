//! `wharf-shipper`: the sidecar that takes NDJSON telemetry on a Unix
//! socket, keeps it in a durable buffer, and ships it to its sinks.
//!
//! Data flows one way:
//!
//! - [`source`]: the socket source ([`source::socket::SocketSource`]) reads
//!   lines ([`source::parse`]), refuses bad ones with an error line and a
//!   dead letter, appends good ones as [`record::Record`]s to the buffer and
//!   acks them once durable.
//! - [`buffer`]: the durable buffer ([`buffer::Buffer`]): segment files,
//!   group fsync, one cursor per sink in a ledger, deletion only when every
//!   sink is past a segment. Its module doc states its rules.
//! - [`sinks`]: one folder per sink, built from [`sinks::SinkConfig`] by one
//!   `match` in [`app`]. The object sinks (S3, file) share
//!   [`sinks::object`]: key templates with Hive partitions, batching,
//!   NDJSON + compression + encryption, and the pipeline that moves a
//!   sink's cursor. Every AWS error goes through [`sinks::retry::classify`].
//! - [`config`]: the TOML file and `WHARF_*` overrides; [`metrics`] and
//!   [`api`]: `/metrics` and `/health`; [`app`]: wiring and shutdown.

#![warn(missing_docs)]

pub mod api;
pub mod app;
pub mod buffer;
pub mod config;
pub mod error;
pub mod keys;
pub mod metrics;
pub mod record;
pub mod sinks;
pub mod source;

pub use error::{Error, Result};
