//! The CloudWatch Logs sink: events as PutLogEvents batches into log
//! groups and streams named by templates, within every rule of the API
//! ([`batch`]), with refused events dead-lettered ([`service`]).

pub mod batch;
mod config;
pub mod service;
mod sink;
pub mod template;

pub use config::{CloudWatchLogsSinkConfig, LogsBatchConfig, LogsTarget, RETENTION_DAYS};
pub use sink::{build, record_format, Wiring};
