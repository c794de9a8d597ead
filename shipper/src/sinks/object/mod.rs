//! What the sinks that write objects share: key templates, batching,
//! encoding (NDJSON, compression, encryption) and the pipeline that drives
//! an [`store::ObjectStore`].

pub mod config;
pub mod encode;
pub mod pipeline;
pub mod seal;
pub mod store;
pub mod template;
