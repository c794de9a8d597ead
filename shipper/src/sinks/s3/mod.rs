//! The S3 sink: objects through PutObject, or multipart uploads once an
//! object's bytes pass `part_bytes`, with the upload's id persisted so
//! that after a crash it is aborted rather than left dangling.

mod config;
mod service;
mod sink;
mod uploads;

pub use config::{S3SinkConfig, MAX_PARTS, MAX_PART_BYTES, MIN_PART_BYTES};
pub use service::{client, S3Service};
pub use sink::S3Store;
