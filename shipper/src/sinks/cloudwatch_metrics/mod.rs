//! The CloudWatch metrics sink: metric records ([`parse`]) aggregated per
//! metric, dimensions and period into PutMetricData requests within the
//! API's limits ([`aggregate`]), sent gzipped ([`service`]); or, with
//! `mode = "emf"`, written as Embedded Metric Format events through the
//! CloudWatch Logs sink ([`emf`]).

pub mod aggregate;
mod config;
pub mod emf;
pub mod parse;
pub mod service;
mod sink;

pub use config::{CloudWatchMetricsSinkConfig, MetricsMode, METRIC_ONLY};
pub use sink::spawn;
