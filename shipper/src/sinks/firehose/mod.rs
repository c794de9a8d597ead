//! The Firehose sink: events packed newline-delimited into records
//! ([`batch`]), records sent with PutRecordBatch, per-record results read
//! so that only the failed records are retried and the ones that keep
//! failing are dead-lettered ([`service`]); optionally each record an AWS
//! Encryption SDK message, base64 on one line.

pub mod batch;
mod config;
pub mod service;
mod sink;

pub use config::{FirehoseEncryption, FirehoseSinkConfig};
pub use sink::build;
