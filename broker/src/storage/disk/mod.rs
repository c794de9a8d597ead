//! The disk storage engine.
//!
//! Layout under the data directory:
//!
//! ```text
//! logs/<topic>-<partition>/<base offset, 20 digits>.log    record batches, one frame each
//! logs/<topic>-<partition>/<base offset, 20 digits>.index  per batch: frame position + batch header
//! logs/<topic>-<partition>/log-start-offset              set by DeleteRecords (see [`log_start`])
//! state/<name>                                            topic metadata, committed offsets
//! ```
//!
//! Rules:
//! - The `.log` file is the truth. Its `.index` (offsets and max
//!   timestamps, i.e. the offset index and the time index in one) is
//!   trusted only for closed segments whose index ends with a completion
//!   frame; otherwise it is rebuilt by scanning the segment.
//! - On open, the active segment is scanned and a torn tail truncated, so
//!   every batch acknowledged before a crash is read back at its offset.
//! - Retention deletes whole closed segments, never the active one.
//!   DeleteRecords persists the new log start offset first, then deletes
//!   the segments wholly below it (rolling the active one first when it
//!   is wholly below too).
//! - Every file goes through [`frames`], the single at-rest seam.

pub mod frames;
mod log_start;
mod read_arena;
mod readahead;
mod segment;
mod tail_cache;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::Mutex;

use self::frames::{read_frames, AtRest, FrameWriter};
use self::read_arena::ReadArenas;
use self::readahead::{ReadPlan, Readaheads};
use self::segment::Segment;
use self::tail_cache::{LogId, TailCache};
use super::{
    expired_segments, segments_below, Engine, LogPolicy, PartitionLog, SegmentInfo, StorageError,
    TailCacheStats,
};
use crate::protocol::batch::BatchHeader;

/// Stores partitions and state files under one data directory.
#[derive(Debug, Clone)]
pub struct DiskEngine {
    root: PathBuf,
    at_rest: AtRest,
    state_writers: Arc<Mutex<HashMap<String, FrameWriter>>>,
    tail: Arc<TailCache>,
    arenas: Arc<ReadArenas>,
    readaheads: Arc<Readaheads>,
}

impl DiskEngine {
    /// Opens (creating if needed) the data directory `root`.
    pub fn open(root: &Path, at_rest: AtRest) -> Result<DiskEngine, StorageError> {
        for sub in ["logs", "state"] {
            let dir = root.join(sub);
            std::fs::create_dir_all(&dir).map_err(|e| StorageError::io(&dir, e))?;
        }
        Ok(DiskEngine {
            root: root.to_path_buf(),
            at_rest,
            state_writers: Default::default(),
            tail: Arc::new(TailCache::new(0)),
            arenas: Default::default(),
            readaheads: Default::default(),
        })
    }

    /// Keeps up to `bytes` of the most recently appended batches (of all
    /// partitions) in memory for consumers at the tail; 0 (the default of
    /// [`DiskEngine::open`]) keeps none.
    pub fn with_tail_cache(mut self, bytes: usize) -> DiskEngine {
        self.tail = Arc::new(TailCache::new(bytes));
        self
    }

    /// Lets logs read ahead for consumers catching up from the segments,
    /// holding at most `bytes` in all (see `readahead`); 0 (the default of
    /// [`DiskEngine::open`]) reads only what is fetched.
    pub fn with_readahead(mut self, bytes: usize) -> DiskEngine {
        self.readaheads = Arc::new(Readaheads::new(bytes));
        self
    }

    fn log_dir(&self, topic: &str, partition: i32) -> PathBuf {
        self.root.join("logs").join(format!("{topic}-{partition}"))
    }

    fn state_path(&self, name: &str) -> PathBuf {
        self.root.join("state").join(name)
    }
}

fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StorageError::io(dir, e))
}

/// One partition on disk.
#[derive(Debug)]
pub struct DiskLog {
    dir: PathBuf,
    at_rest: AtRest,
    segments: Vec<Segment>,
    start: i64,
    next: i64,
    policy: LogPolicy,
    tail: Arc<TailCache>,
    tail_id: LogId,
    arenas: Arc<ReadArenas>,
    readaheads: Arc<Readaheads>,
}

/// Ends the run of batches read into `arena` so far, if any.
fn end_run(arena: &mut Option<read_arena::Arena<'_>>, out: &mut Vec<Bytes>) {
    if let Some(run) = arena.as_mut().map(|a| a.buf().split()) {
        if !run.is_empty() {
            out.push(run.freeze());
        }
    }
}

impl DiskLog {
    async fn roll(&mut self, base_offset: i64, now_ms: i64) -> Result<(), StorageError> {
        if let Some(active) = self.segments.last_mut() {
            active.close().await?;
        }
        self.segments
            .push(Segment::create(&self.dir, base_offset, now_ms, &self.at_rest).await?);
        sync_dir(&self.dir)
    }

    fn first_stored_offset(&self) -> i64 {
        self.segments
            .iter()
            .find_map(|s| s.first_offset())
            .unwrap_or(self.next)
    }

    fn delete_segments(&mut self, n: usize) -> Result<(), StorageError> {
        for seg in self.segments.drain(..n) {
            seg.delete()?;
        }
        if n > 0 {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// The batches a read at `offset` answers with: whole batches up to
    /// `max_bytes`, at least one; (segment, entry) pairs.
    fn pick(&self, offset: i64, max_bytes: usize) -> Vec<(usize, usize)> {
        let mut picked = Vec::new();
        let mut used = 0usize;
        for (s, seg) in self
            .segments
            .iter()
            .enumerate()
            .skip(self.segment_for_offset(offset))
        {
            let first = seg
                .entries
                .partition_point(|e| e.header.last_offset < offset);
            for (e, entry) in seg.entries.iter().enumerate().skip(first) {
                if !picked.is_empty() && used + entry.header.size > max_bytes {
                    return picked;
                }
                used += entry.header.size;
                picked.push((s, e));
            }
        }
        picked
    }

    /// After a fetch answered from the segments: starts reading what a
    /// fetch at `offset` will get, if that is stored and none of it is in
    /// the tail cache (see `readahead`).
    fn read_ahead(&self, offset: i64, max_bytes: usize) {
        if !self.readaheads.enabled() || offset >= self.next {
            return;
        }
        let picked = self.pick(offset, max_bytes);
        let mut reads = Vec::with_capacity(picked.len());
        let mut room = 0;
        let mut end = offset;
        for (s, e) in picked {
            let (seg, entry) = (&self.segments[s], &self.segments[s].entries[e]);
            if self.tail.contains(self.tail_id, entry.header.base_offset) {
                return;
            }
            room += frames::read_room(entry.header.size);
            end = entry.header.last_offset + 1;
            reads.push((seg.reader(), entry.pos));
        }
        let plan = ReadPlan {
            batches: reads.len(),
            end,
            room,
        };
        let arenas = Arc::clone(&self.arenas);
        let read = move || {
            let mut arena = arenas.take(room);
            for (reader, pos) in &reads {
                reader.append_to(*pos, arena.buf())?;
            }
            Ok(arena.buf().split().freeze())
        };
        self.readaheads
            .start(self.tail_id, offset, max_bytes, plan, read);
    }

    fn segment_for_offset(&self, offset: i64) -> usize {
        self.segments
            .partition_point(|s| s.last_offset().is_some_and(|last| last < offset))
    }
}

#[async_trait]
impl PartitionLog for DiskLog {
    fn log_start_offset(&self) -> i64 {
        self.start
    }
    fn next_offset(&self) -> i64 {
        self.next
    }
    fn headers(&self) -> Vec<BatchHeader> {
        self.segments
            .iter()
            .flat_map(|s| s.entries.iter().map(|e| e.header))
            .collect()
    }
    async fn append(
        &mut self,
        header: &BatchHeader,
        batch: Bytes,
        now_ms: i64,
    ) -> Result<(), StorageError> {
        let roll = match self.segments.last() {
            None => true,
            Some(s) => {
                !s.is_writable()
                    || self
                        .policy
                        .should_roll(s.size, s.created_ms, batch.len() as u64, now_ms)
            }
        };
        if roll {
            self.roll(header.base_offset, now_ms).await?;
        }
        let active = self.segments.last_mut().expect("an active segment");
        active.append(header, &batch).await?;
        self.next = header.last_offset + 1;
        self.tail.insert(self.tail_id, header.base_offset, &batch);
        Ok(())
    }
    async fn read(&mut self, offset: i64, max_bytes: usize) -> Result<Vec<Bytes>, StorageError> {
        if let Some(taken) = self.readaheads.take(self.tail_id, offset, max_bytes) {
            // A failed read-ahead falls through to the read below, which
            // reports its error.
            if let Ok(Ok(run)) = taken.task.await {
                self.tail.count_read_ahead(taken.plan.batches);
                self.read_ahead(taken.plan.end, max_bytes);
                return Ok(vec![run]);
            }
        }
        // First what to answer with (whole batches up to max_bytes, at
        // least one), then the batches: from the tail cache, or read into
        // one arena reserved for all the rest (see `read_arena`).
        let picked = self.pick(offset, max_bytes);
        let mut room = 0;
        let cached: Vec<Option<Bytes>> = picked
            .iter()
            .map(|&(s, e)| {
                let header = &self.segments[s].entries[e].header;
                let hit = self.tail.get(self.tail_id, header.base_offset);
                if hit.is_none() {
                    room += frames::read_room(header.size);
                }
                hit
            })
            .collect();
        // Batches read from the segments one after another lie back to
        // back in the arena and go out as one run (no copy to join them).
        let mut arena = None;
        let mut out = Vec::with_capacity(1);
        for (hit, &(s, e)) in cached.into_iter().zip(&picked) {
            match hit {
                Some(batch) => {
                    end_run(&mut arena, &mut out);
                    out.push(batch);
                }
                None => {
                    let arena = arena.get_or_insert_with(|| self.arenas.take(room));
                    let seg = &self.segments[s];
                    seg.read_onto(&seg.entries[e], arena.buf())?;
                }
            }
        }
        let from_segments = arena.is_some();
        end_run(&mut arena, &mut out);
        drop(arena);
        let last = picked.last().map(|&(s, e)| &self.segments[s].entries[e]);
        if let Some(last) = last.filter(|_| from_segments) {
            self.read_ahead(last.header.last_offset + 1, max_bytes);
        }
        Ok(out)
    }
    fn batch_for_timestamp(&self, timestamp: i64) -> Option<BatchHeader> {
        self.segments
            .iter()
            .filter(|s| s.max_timestamp >= timestamp)
            .flat_map(|s| s.entries.iter())
            .find(|e| e.header.max_timestamp >= timestamp)
            .map(|e| e.header)
    }
    async fn flush(&mut self) -> Result<(), StorageError> {
        match self.segments.last_mut() {
            Some(active) => active.sync().await,
            None => Ok(()),
        }
    }
    async fn apply_retention(
        &mut self,
        policy: &LogPolicy,
        now_ms: i64,
    ) -> Result<usize, StorageError> {
        let infos: Vec<SegmentInfo> = self
            .segments
            .iter()
            .map(|s| SegmentInfo {
                size: s.size,
                max_timestamp: s.max_timestamp,
            })
            .collect();
        let n = expired_segments(&infos, policy, now_ms);
        self.delete_segments(n)?;
        self.start = self.start.max(self.first_stored_offset());
        Ok(n)
    }
    async fn delete_records_before(
        &mut self,
        offset: i64,
        now_ms: i64,
    ) -> Result<usize, StorageError> {
        let offset = offset.min(self.next);
        if offset <= self.start {
            return Ok(0);
        }
        log_start::write(&self.dir, &self.at_rest, offset).await?;
        self.start = offset;
        let active_below = self
            .segments
            .last()
            .and_then(|s| s.last_offset())
            .is_some_and(|last| last < offset);
        if active_below {
            self.roll(self.next, now_ms).await?;
        }
        let lasts: Vec<Option<i64>> = self.segments.iter().map(|s| s.last_offset()).collect();
        let n = segments_below(&lasts, offset);
        self.delete_segments(n)?;
        Ok(n)
    }
    fn set_policy(&mut self, policy: LogPolicy) {
        self.policy = policy;
    }
    fn size_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.size).sum()
    }
}

#[async_trait]
impl Engine for DiskEngine {
    type Log = DiskLog;

    async fn open_log(
        &self,
        topic: &str,
        partition: i32,
        policy: LogPolicy,
    ) -> Result<DiskLog, StorageError> {
        let dir = self.log_dir(topic, partition);
        std::fs::create_dir_all(&dir).map_err(|e| StorageError::io(&dir, e))?;
        let mut bases: Vec<i64> = std::fs::read_dir(&dir)
            .map_err(|e| StorageError::io(&dir, e))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_suffix(".log")?.parse().ok()
            })
            .collect();
        bases.sort_unstable();
        let now = crate::now_ms();
        let mut segments = Vec::with_capacity(bases.len());
        for (i, base) in bases.iter().enumerate() {
            let active = i + 1 == bases.len();
            segments.push(Segment::open(&dir, *base, active, now, &self.at_rest).await?);
        }
        let next = segments
            .iter()
            .rev()
            .find_map(|s| s.last_offset())
            .map_or_else(|| bases.last().copied().unwrap_or(0), |last| last + 1);
        let first_stored = segments
            .iter()
            .find_map(|s| s.first_offset())
            .unwrap_or(next);
        let moved = log_start::read(&dir, &self.at_rest).await?;
        let start = first_stored.max(moved.unwrap_or(i64::MIN)).min(next);
        Ok(DiskLog {
            dir,
            at_rest: self.at_rest.clone(),
            segments,
            start,
            next,
            policy,
            tail_id: self.tail.new_log(),
            tail: self.tail.clone(),
            arenas: self.arenas.clone(),
            readaheads: self.readaheads.clone(),
        })
    }

    async fn delete_topic(&self, topic: &str) -> Result<(), StorageError> {
        let logs = self.root.join("logs");
        let prefix = format!("{topic}-");
        for entry in std::fs::read_dir(&logs)
            .map_err(|e| StorageError::io(&logs, e))?
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().to_string();
            let is_partition = name
                .strip_prefix(&prefix)
                .is_some_and(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
            if is_partition {
                std::fs::remove_dir_all(entry.path())
                    .map_err(|e| StorageError::io(&entry.path(), e))?;
            }
        }
        sync_dir(&logs)
    }

    async fn read_state(&self, name: &str) -> Result<Vec<Bytes>, StorageError> {
        let path = self.state_path(name);
        if !path.exists() {
            return Ok(Vec::new());
        }
        let _writers = self.state_writers.lock().await;
        let (frames, _) = read_frames(&path, &self.at_rest).await?;
        Ok(frames.into_iter().map(|f| f.data).collect())
    }

    async fn write_state(&self, name: &str, records: &[Bytes]) -> Result<(), StorageError> {
        let path = self.state_path(name);
        let tmp = self.state_path(&format!("{name}.tmp"));
        let mut writers = self.state_writers.lock().await;
        let mut writer = FrameWriter::create(&tmp, &self.at_rest).await?;
        for r in records {
            writer.append(r).await?;
        }
        writer.sync().await?;
        std::fs::rename(&tmp, &path).map_err(|e| StorageError::io(&path, e))?;
        sync_dir(&self.root.join("state"))?;
        writers.insert(name.to_string(), writer);
        Ok(())
    }

    fn tail_cache_stats(&self) -> Option<TailCacheStats> {
        Some(self.tail.stats())
    }

    async fn append_state(&self, name: &str, record: &[u8]) -> Result<(), StorageError> {
        let path = self.state_path(name);
        let mut writers = self.state_writers.lock().await;
        if !writers.contains_key(name) {
            let writer = if path.exists() {
                FrameWriter::open_append(&path, &self.at_rest).await?
            } else {
                let w = FrameWriter::create(&path, &self.at_rest).await?;
                sync_dir(&self.root.join("state"))?;
                w
            };
            writers.insert(name.to_string(), writer);
        }
        let writer = writers.get_mut(name).expect("inserted above");
        writer.append(record).await?;
        writer.sync().await
    }
}
