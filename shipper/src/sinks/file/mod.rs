//! The file sink: the S3 layout under a local directory, each object
//! written to a temporary file, fsynced, then renamed into place.

mod config;
mod sink;

pub use config::FileSinkConfig;
pub use sink::FileStore;
