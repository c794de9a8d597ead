//! The seam between the spool and the bytes on disk.
//!
//! A spool segment is one file holding a sequence of frames, one frame per
//! telemetry line. [`SegmentFormat`] creates and opens segments; the spool
//! never touches file contents itself, so the format can change without
//! touching the spool's ordering and accounting rules.
//!
//! [`SealedSegments`] stores each segment in `wharf-envelope`'s at-rest
//! format: one sealed frame (AES-256-GCM) per line, the data key wrapped by
//! the configured master key in the file header, under an encryption
//! context naming the cluster and the purpose. A frame torn by a crash ends
//! the segment: the frames before it are kept. A segment is finished (its
//! final frame written and synced) before it is read.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use wharf_envelope::atrest::{SealedReader, SealedWriter};
use wharf_envelope::{EncryptionContext, KeyProvider};

use crate::Error;

/// Creates and opens spool segment files.
#[async_trait::async_trait]
pub trait SegmentFormat: Send + Sync + std::fmt::Debug {
    /// Creates a new, empty segment at `path` (which does not exist yet).
    async fn create(&self, path: &Path) -> Result<Box<dyn SegmentWriter>, Error>;
    /// Opens an existing, finished segment for reading from its first frame.
    async fn open(&self, path: &Path) -> Result<Box<dyn SegmentReader>, Error>;
}

/// Appends frames to one segment.
pub trait SegmentWriter: Send {
    /// Appends one frame.
    fn append(&mut self, frame: &[u8]) -> Result<(), Error>;
    /// Bytes the file holds so far, header included.
    fn len(&self) -> u64;
    /// Whether no frame was appended yet.
    fn is_empty(&self) -> bool;
    /// Marks the segment complete and flushes it; no frame follows.
    fn finish(self: Box<Self>) -> Result<(), Error>;
}

/// Reads the frames of one segment, in order.
pub trait SegmentReader: Send {
    /// The next frame, `None` at the end. A damaged tail ends the segment
    /// with an error; the frames returned before it stay valid.
    fn next_frame(&mut self) -> Result<Option<Vec<u8>>, Error>;
}

/// Spool segments in the at-rest format (see the module docs).
#[derive(Debug, Clone)]
pub struct SealedSegments {
    keys: Arc<dyn KeyProvider>,
    context: EncryptionContext,
}

impl SealedSegments {
    /// Segments sealed under data keys from `keys`, with the encryption
    /// context `{cluster: <cluster>, purpose: broker-telemetry-spool}`.
    pub fn new(keys: Arc<dyn KeyProvider>, cluster: &str) -> Self {
        let context = [
            ("cluster".to_string(), cluster.to_string()),
            ("purpose".to_string(), "broker-telemetry-spool".to_string()),
        ]
        .into_iter()
        .collect();
        Self::with_context(keys, context)
    }

    /// Segments sealed under `context` (every segment read back must carry
    /// exactly this context).
    pub fn with_context(keys: Arc<dyn KeyProvider>, context: EncryptionContext) -> Self {
        Self { keys, context }
    }
}

fn sealed_err(path: &Path, source: wharf_envelope::Error) -> Error {
    Error::SpoolSealed {
        path: path.to_path_buf(),
        source,
    }
}

#[async_trait::async_trait]
impl SegmentFormat for SealedSegments {
    async fn create(&self, path: &Path) -> Result<Box<dyn SegmentWriter>, Error> {
        let writer = SealedWriter::create(path, self.keys.as_ref(), &self.context)
            .await
            .map_err(|e| sealed_err(path, e))?;
        Ok(Box::new(SealedSegmentWriter {
            path: path.to_path_buf(),
            inner: writer,
        }))
    }

    async fn open(&self, path: &Path) -> Result<Box<dyn SegmentReader>, Error> {
        let reader = SealedReader::open_expecting(path, self.keys.as_ref(), &self.context)
            .await
            .map_err(|e| sealed_err(path, e))?;
        let pos = reader.data_start();
        Ok(Box::new(SealedSegmentReader {
            path: path.to_path_buf(),
            inner: reader,
            pos,
            next_number: 0,
        }))
    }
}

struct SealedSegmentWriter {
    path: PathBuf,
    inner: SealedWriter,
}

impl SegmentWriter for SealedSegmentWriter {
    fn append(&mut self, frame: &[u8]) -> Result<(), Error> {
        self.inner
            .append(frame)
            .map(|_| ())
            .map_err(|e| sealed_err(&self.path, e))
    }

    fn len(&self) -> u64 {
        self.inner.position()
    }

    fn is_empty(&self) -> bool {
        self.inner.frames() == 0
    }

    fn finish(self: Box<Self>) -> Result<(), Error> {
        let path = self.path;
        self.inner
            .finish()
            .map(|_| ())
            .map_err(|e| sealed_err(&path, e))
    }
}

struct SealedSegmentReader {
    path: PathBuf,
    inner: SealedReader,
    pos: u64,
    next_number: u64,
}

impl SegmentReader for SealedSegmentReader {
    fn next_frame(&mut self) -> Result<Option<Vec<u8>>, Error> {
        let Some(frame) = self
            .inner
            .read_at(self.pos)
            .map_err(|e| sealed_err(&self.path, e))?
        else {
            return Ok(None);
        };
        if frame.number != self.next_number {
            return Err(Error::SpoolCorrupt {
                path: self.path.clone(),
                frame: self.next_number,
                reason: format!("found frame {} in its place", frame.number),
            });
        }
        self.pos = frame.next_position;
        self.next_number += 1;
        Ok(Some(frame.data))
    }
}
