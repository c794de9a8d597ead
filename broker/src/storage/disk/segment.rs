//! One segment: a `.log` file of record batches and its `.index`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::frames::{read_frames, AtRest, FrameReader, FrameWriter};
use crate::protocol::batch::{stored_header, BatchHeader, BATCH_HEADER_BYTES};
use crate::storage::StorageError;

/// Last frame of the index of a closed segment: the index is complete.
const INDEX_COMPLETE: &[u8] = b"wharf-index-complete";

/// Where one batch lives.
#[derive(Debug, Clone, Copy)]
pub(super) struct Entry {
    pub(super) header: BatchHeader,
    pub(super) pos: u64,
}

#[derive(Debug)]
pub(super) struct Segment {
    pub(super) created_ms: i64,
    pub(super) size: u64,
    pub(super) max_timestamp: i64,
    pub(super) entries: Vec<Entry>,
    log_path: PathBuf,
    index_path: PathBuf,
    at_rest: AtRest,
    reader: Arc<FrameReader>,
    writer: Option<FrameWriter>,
    index: Option<FrameWriter>,
}

fn paths(dir: &Path, base_offset: i64) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("{base_offset:020}.log")),
        dir.join(format!("{base_offset:020}.index")),
    )
}

fn index_record(entry: &Entry, batch: &[u8]) -> Vec<u8> {
    let mut rec = Vec::with_capacity(8 + BATCH_HEADER_BYTES);
    rec.extend_from_slice(&entry.pos.to_be_bytes());
    rec.extend_from_slice(&batch[..BATCH_HEADER_BYTES]);
    rec
}

fn corrupt(path: &Path, reason: String) -> StorageError {
    StorageError::Corrupt {
        path: path.display().to_string(),
        reason,
    }
}

impl Segment {
    pub(super) async fn create(
        dir: &Path,
        base_offset: i64,
        now_ms: i64,
        at_rest: &AtRest,
    ) -> Result<Segment, StorageError> {
        let (log_path, index_path) = paths(dir, base_offset);
        let writer = FrameWriter::create(&log_path, at_rest).await?;
        let index = FrameWriter::create(&index_path, at_rest).await?;
        let reader = Arc::new(FrameReader::open(&log_path, at_rest).await?);
        Ok(Segment {
            created_ms: now_ms,
            size: 0,
            max_timestamp: now_ms,
            entries: Vec::new(),
            log_path,
            index_path,
            at_rest: at_rest.clone(),
            reader,
            writer: Some(writer),
            index: Some(index),
        })
    }

    /// Opens a segment found on disk. The active one is scanned (torn tail
    /// truncated) and its index rebuilt; a closed one is loaded from a
    /// complete index, or scanned when its index is missing or partial.
    pub(super) async fn open(
        dir: &Path,
        base_offset: i64,
        active: bool,
        now_ms: i64,
        at_rest: &AtRest,
    ) -> Result<Segment, StorageError> {
        let (log_path, index_path) = paths(dir, base_offset);
        let mut seg = Segment {
            created_ms: now_ms,
            size: 0,
            max_timestamp: now_ms,
            entries: Vec::new(),
            reader: Arc::new(FrameReader::open(&log_path, at_rest).await?),
            log_path,
            index_path,
            at_rest: at_rest.clone(),
            writer: None,
            index: None,
        };
        if !active && seg.load_complete_index().await? {
            return Ok(seg);
        }
        let (frames, finished) = read_frames(&seg.log_path, at_rest).await?;
        let mut index = FrameWriter::create(&seg.index_path, at_rest).await?;
        for frame in frames {
            let header = stored_header(&frame.data)
                .map_err(|e| corrupt(&seg.log_path, format!("batch at {}: {e}", frame.pos)))?;
            let entry = Entry {
                header,
                pos: frame.pos,
            };
            index.append(&index_record(&entry, &frame.data)).await?;
            seg.push(entry);
        }
        if seg.entries.is_empty() {
            seg.max_timestamp = now_ms;
        }
        if active && !finished {
            seg.writer = Some(FrameWriter::open_append(&seg.log_path, at_rest).await?);
            seg.index = Some(index);
        } else {
            index.append(INDEX_COMPLETE).await?;
            index.finish().await?;
        }
        Ok(seg)
    }

    async fn load_complete_index(&mut self) -> Result<bool, StorageError> {
        if !self.index_path.exists() {
            return Ok(false);
        }
        let Ok((frames, _)) = read_frames(&self.index_path, &self.at_rest).await else {
            return Ok(false);
        };
        if frames.last().map(|f| &f.data[..]) != Some(INDEX_COMPLETE) {
            return Ok(false);
        }
        for frame in &frames[..frames.len() - 1] {
            if frame.data.len() != 8 + BATCH_HEADER_BYTES {
                return Ok(false);
            }
            let pos = u64::from_be_bytes(frame.data[..8].try_into().expect("8 bytes"));
            let Ok(header) = stored_header(&frame.data[8..]) else {
                return Ok(false);
            };
            self.push(Entry { header, pos });
        }
        Ok(true)
    }

    fn push(&mut self, entry: Entry) {
        if self.entries.is_empty() {
            self.max_timestamp = entry.header.max_timestamp;
        }
        self.size += entry.header.size as u64;
        self.max_timestamp = self.max_timestamp.max(entry.header.max_timestamp);
        self.entries.push(entry);
    }

    /// Whether appends can go to this segment (it is the unfinished active one).
    pub(super) fn is_writable(&self) -> bool {
        self.writer.is_some()
    }

    pub(super) fn first_offset(&self) -> Option<i64> {
        self.entries.first().map(|e| e.header.base_offset)
    }

    pub(super) fn last_offset(&self) -> Option<i64> {
        self.entries.last().map(|e| e.header.last_offset)
    }

    pub(super) async fn append(
        &mut self,
        header: &BatchHeader,
        batch: &Bytes,
    ) -> Result<(), StorageError> {
        let writer = self.writer.as_mut().expect("append to the active segment");
        let pos = writer.append(batch).await?;
        let entry = Entry {
            header: *header,
            pos,
        };
        if let Some(index) = self.index.as_mut() {
            index.append(&index_record(&entry, batch)).await?;
        }
        self.push(entry);
        Ok(())
    }

    /// The segment's reader, for reading on another thread.
    pub(super) fn reader(&self) -> Arc<FrameReader> {
        Arc::clone(&self.reader)
    }

    /// Reads the batch of `entry` onto the end of `arena`'s unsplit part.
    pub(super) fn read_onto(
        &self,
        entry: &Entry,
        arena: &mut BytesMut,
    ) -> Result<(), StorageError> {
        self.reader.append_to(entry.pos, arena).map(|_| ())
    }

    pub(super) async fn sync(&mut self) -> Result<(), StorageError> {
        match self.writer.as_mut() {
            Some(w) => w.sync().await,
            None => Ok(()),
        }
    }

    /// Seals the segment: no more appends, index marked complete.
    pub(super) async fn close(&mut self) -> Result<(), StorageError> {
        if let Some(w) = self.writer.take() {
            w.finish().await?;
        }
        if let Some(mut index) = self.index.take() {
            index.append(INDEX_COMPLETE).await?;
            index.finish().await?;
        }
        Ok(())
    }

    pub(super) fn delete(self) -> Result<(), StorageError> {
        std::fs::remove_file(&self.log_path).map_err(|e| StorageError::io(&self.log_path, e))?;
        match std::fs::remove_file(&self.index_path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StorageError::io(&self.index_path, e)),
        }
    }
}
