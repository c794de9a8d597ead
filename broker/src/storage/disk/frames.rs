//! The one seam between the storage engine and the bytes on disk.
//!
//! Every file the broker writes (segments, indexes, state files) is a
//! sequence of frames appended through [`FrameWriter`] and read back
//! through [`FrameReader`] or [`recover`]. Which at-rest format the frames
//! use is decided here and nowhere else.
//!
//! Plaintext format (used only when encryption is turned off):
//! `u32 length | u32 crc32c(payload) | payload`.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::storage::StorageError;

const PLAIN_FRAME_HEADER: u64 = 8;

/// How frames are protected at rest.
#[derive(Clone)]
pub enum AtRest {
    /// No encryption (testing and benchmarking only).
    Plain,
}

impl AtRest {
    /// Envelope encryption under the local master key in `data_dir`.
    ///
    /// Until `envelope`'s at-rest format lands this falls back to
    /// plaintext with a warning.
    pub async fn local(data_dir: &Path) -> Result<AtRest, StorageError> {
        tracing::warn!(data_dir = %data_dir.display(), "at-rest encryption not available yet: writing plaintext");
        Ok(AtRest::Plain)
    }
}

impl std::fmt::Debug for AtRest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AtRest::Plain => f.write_str("plaintext"),
        }
    }
}

/// Appends frames to one file.
#[derive(Debug)]
pub struct FrameWriter {
    path: PathBuf,
    file: File,
    len: u64,
}

/// A frame read back during recovery, with its position.
#[derive(Debug, Clone)]
pub struct RecoveredFrame {
    /// Position to pass to [`FrameReader::read_at`].
    pub pos: u64,
    /// The payload.
    pub data: Bytes,
}

impl FrameWriter {
    /// Creates (or truncates) `path`.
    pub async fn create(path: &Path, at_rest: &AtRest) -> Result<FrameWriter, StorageError> {
        let AtRest::Plain = at_rest;
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| StorageError::io(path, e))?;
        Ok(FrameWriter {
            path: path.to_path_buf(),
            file,
            len: 0,
        })
    }

    /// Appends one frame and returns its position.
    pub async fn append(&mut self, data: &[u8]) -> Result<u64, StorageError> {
        let pos = self.len;
        let mut buf = Vec::with_capacity(data.len() + PLAIN_FRAME_HEADER as usize);
        buf.extend_from_slice(&(data.len() as u32).to_be_bytes());
        buf.extend_from_slice(&crc32c::crc32c(data).to_be_bytes());
        buf.extend_from_slice(data);
        self.file
            .write_all(&buf)
            .map_err(|e| StorageError::io(&self.path, e))?;
        self.len += buf.len() as u64;
        Ok(pos)
    }

    /// Makes every appended frame durable (fdatasync).
    pub async fn sync(&mut self) -> Result<(), StorageError> {
        self.file
            .sync_data()
            .map_err(|e| StorageError::io(&self.path, e))
    }

    /// Closes the file after a final sync.
    pub async fn finish(mut self) -> Result<(), StorageError> {
        self.sync().await
    }
}

/// Opens `path` for appending after reading back every intact frame; a
/// torn or corrupt tail (a crash mid-write) is truncated away.
pub async fn recover(
    path: &Path,
    at_rest: &AtRest,
) -> Result<(FrameWriter, Vec<RecoveredFrame>), StorageError> {
    let AtRest::Plain = at_rest;
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| StorageError::io(path, e))?;
    let mut all = Vec::new();
    file.read_to_end(&mut all)
        .map_err(|e| StorageError::io(path, e))?;
    let mut frames = Vec::new();
    let mut at = 0usize;
    while at + PLAIN_FRAME_HEADER as usize <= all.len() {
        let len = u32::from_be_bytes(all[at..at + 4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_be_bytes(all[at + 4..at + 8].try_into().expect("4 bytes"));
        let start = at + PLAIN_FRAME_HEADER as usize;
        if start + len > all.len() || crc32c::crc32c(&all[start..start + len]) != crc {
            break;
        }
        frames.push(RecoveredFrame {
            pos: at as u64,
            data: Bytes::copy_from_slice(&all[start..start + len]),
        });
        at = start + len;
    }
    if at < all.len() {
        tracing::warn!(path = %path.display(), kept = at, dropped = all.len() - at, "truncating torn tail");
        file.set_len(at as u64)
            .map_err(|e| StorageError::io(path, e))?;
        file.sync_data().map_err(|e| StorageError::io(path, e))?;
    }
    file.seek(SeekFrom::Start(at as u64))
        .map_err(|e| StorageError::io(path, e))?;
    Ok((
        FrameWriter {
            path: path.to_path_buf(),
            file,
            len: at as u64,
        },
        frames,
    ))
}

/// Reads frames of one file by position.
#[derive(Debug)]
pub struct FrameReader {
    path: PathBuf,
    file: File,
}

impl FrameReader {
    /// Opens `path` for reading.
    pub async fn open(path: &Path, at_rest: &AtRest) -> Result<FrameReader, StorageError> {
        let AtRest::Plain = at_rest;
        let file = File::open(path).map_err(|e| StorageError::io(path, e))?;
        Ok(FrameReader {
            path: path.to_path_buf(),
            file,
        })
    }

    /// The frame at `pos` (a position returned by [`FrameWriter::append`]).
    pub async fn read_at(&self, pos: u64) -> Result<Bytes, StorageError> {
        let mut header = [0u8; PLAIN_FRAME_HEADER as usize];
        self.file
            .read_exact_at(&mut header, pos)
            .map_err(|e| StorageError::io(&self.path, e))?;
        let len = u32::from_be_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_be_bytes(header[4..].try_into().expect("4 bytes"));
        let mut data = vec![0u8; len];
        self.file
            .read_exact_at(&mut data, pos + PLAIN_FRAME_HEADER)
            .map_err(|e| StorageError::io(&self.path, e))?;
        if crc32c::crc32c(&data) != crc {
            return Err(StorageError::Corrupt {
                path: self.path.display().to_string(),
                reason: format!("frame at {pos} fails its checksum"),
            });
        }
        Ok(Bytes::from(data))
    }
}
