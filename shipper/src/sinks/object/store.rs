//! What an object destination (a directory, an S3 bucket) must do for the
//! shared pipeline in [`super::pipeline`].

use crate::error::Result;

use super::encode::ObjectWrite;

/// Facts about a finished object, for metadata and metrics.
#[derive(Debug, Clone)]
pub struct ObjectMeta {
    /// Events in it.
    pub events: u64,
    /// Sequence number of its first event.
    pub first_seq: u64,
    /// Uncompressed NDJSON bytes.
    pub raw_bytes: u64,
}

/// A place objects go. Calls retry on their own until they succeed or the
/// sink is told to stop ([`crate::error::Error::ShuttingDown`]).
#[async_trait::async_trait]
pub trait ObjectStore: Send {
    /// An object being written.
    type Upload: Send;

    /// Starts the object that will appear under `key`, returning the
    /// writer the encoded bytes stream into.
    async fn begin(&mut self, key: &str) -> Result<(Box<dyn ObjectWrite>, Self::Upload)>;

    /// Called after bytes were written; may ship what is ready (S3 parts).
    async fn progress(&mut self, upload: &mut Self::Upload, events: u64) -> Result<()>;

    /// Makes the object visible once its writer is finished; returns its
    /// size in bytes.
    async fn complete(&mut self, upload: Self::Upload, meta: &ObjectMeta) -> Result<u64>;
}
