//! The bounded local spool: lines the shipper has not acknowledged, kept in
//! order on disk while its socket is away.
//!
//! Rules, before any code:
//! - Every frame has an absolute index. Three positions move forward only
//!   (except `read`, see rewind): `committed <= read <= end`. Frames below
//!   `committed` are acknowledged by the shipper, frames in
//!   `committed..read` were sent and await an ack, frames in `read..end` are
//!   waiting to be sent.
//! - Frames are appended to the newest segment; a segment is finished
//!   (sealed) when it reaches the segment size or before it is first read,
//!   so a reader only ever reads finished files.
//! - A segment file is deleted only once every frame in it is committed.
//! - After a reconnect, `rewind` sets `read` back to `committed`: what was
//!   sent but not acknowledged is sent again, in the same order.
//! - The sum of segment sizes never exceeds `max_bytes`; an append that
//!   would pass it is refused and the caller counts the drop.
//! - Segments left by an earlier process are picked up at start, oldest
//!   first; a damaged tail (a crash mid-write) ends its segment, and the
//!   frames before it are kept.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::segment::{SegmentFormat, SegmentReader, SegmentWriter};
use crate::Error;

const SUFFIX: &str = ".seg";
/// Upper bound of the bytes a sealed frame adds to its plaintext.
const FRAME_OVERHEAD: u64 = 64;
/// Upper bound of a new segment file's header (two key slots of at least
/// 2 KiB each, more with a long wrapped key and context).
const HEADER_ALLOWANCE: u64 = 8192;

struct Segment {
    seq: u64,
    path: PathBuf,
    /// Absolute index of the first frame.
    first: u64,
    frames: u64,
    bytes: u64,
    /// Frames from this offset on could not be read back and are skipped.
    damaged_at: Option<u64>,
}

struct OpenReader {
    seq: u64,
    next_abs: u64,
    inner: Box<dyn SegmentReader>,
}

/// See the module docs.
pub(crate) struct Spool {
    dir: PathBuf,
    format: Arc<dyn SegmentFormat>,
    max_bytes: u64,
    segment_bytes: u64,
    segments: VecDeque<Segment>,
    /// Writer of `segments.back()` while that segment is not finished.
    active: Option<Box<dyn SegmentWriter>>,
    reader: Option<OpenReader>,
    /// Held (flock) for as long as the spool is open.
    _lock: std::fs::File,
    next_seq: u64,
    total_bytes: u64,
    committed: u64,
    read: u64,
    end: u64,
    /// Frames lost to damage, reported once each.
    pub(crate) lost: u64,
}

impl Spool {
    /// Opens (creating if needed) the spool in `dir` and picks up the
    /// segments an earlier process left there.
    pub(crate) async fn open(
        dir: &Path,
        format: Arc<dyn SegmentFormat>,
        max_bytes: u64,
    ) -> Result<Self, Error> {
        let dir_err = |source| Error::SpoolDir {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(dir_err)?;
        // One writer per spool: a second process would resend and delete
        // the first one's lines.
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(".lock"))
            .map_err(dir_err)?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(
            |_| Error::SpoolLocked {
                path: dir.to_path_buf(),
            },
        )?;
        let mut seqs = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(dir_err)? {
            let name = entry.map_err(dir_err)?.file_name();
            let name = name.to_string_lossy();
            if let Some(seq) = name
                .strip_suffix(SUFFIX)
                .and_then(|s| s.parse::<u64>().ok())
            {
                seqs.push(seq);
            }
        }
        seqs.sort_unstable();
        let mut spool = Spool {
            dir: dir.to_path_buf(),
            format,
            max_bytes,
            segment_bytes: (max_bytes / 8).clamp(16 * 1024, 8 * 1024 * 1024),
            segments: VecDeque::new(),
            active: None,
            reader: None,
            _lock: lock,
            next_seq: seqs.last().map_or(0, |s| s + 1),
            total_bytes: 0,
            committed: 0,
            read: 0,
            end: 0,
            lost: 0,
        };
        for seq in seqs {
            let path = spool.path_of(seq);
            let mut frames = 0;
            let mut reader = spool.format.open(&path).await;
            if let Ok(r) = reader.as_mut() {
                while let Ok(Some(_)) = r.next_frame() {
                    frames += 1;
                }
            }
            let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            if frames == 0 {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            spool.segments.push_back(Segment {
                seq,
                path,
                first: spool.end,
                frames,
                bytes,
                damaged_at: None,
            });
            spool.end += frames;
            spool.total_bytes += bytes;
        }
        Ok(spool)
    }

    fn path_of(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:020}{SUFFIX}"))
    }

    /// Whether frames wait to be sent.
    pub(crate) fn has_unread(&self) -> bool {
        self.read < self.end
    }

    /// Frames held (sent or not) that are not acknowledged yet.
    pub(crate) fn pending(&self) -> u64 {
        self.end - self.committed
    }

    /// Bytes the spool's files take.
    pub(crate) fn bytes(&self) -> u64 {
        self.total_bytes
    }

    /// Appends a frame; `Ok(None)` when the spool is full (the caller counts
    /// the drop), otherwise its absolute index.
    pub(crate) async fn append(&mut self, frame: &[u8]) -> Result<Option<u64>, Error> {
        let need_new = match &self.active {
            None => true,
            Some(w) => w.len() >= self.segment_bytes,
        };
        // Room for the frame and its record overhead (header, GCM tag), and
        // for a new segment's header when one is needed.
        let header = if need_new { HEADER_ALLOWANCE } else { 0 };
        if self.total_bytes + frame.len() as u64 + FRAME_OVERHEAD + header > self.max_bytes {
            return Ok(None);
        }
        if need_new {
            self.seal_active()?;
            let seq = self.next_seq;
            self.next_seq += 1;
            let path = self.path_of(seq);
            let writer = self.format.create(&path).await?;
            let bytes = writer.len();
            self.total_bytes += bytes;
            self.segments.push_back(Segment {
                seq,
                path,
                first: self.end,
                frames: 0,
                bytes,
                damaged_at: None,
            });
            self.active = Some(writer);
        }
        let writer = self
            .active
            .as_mut()
            .expect("an active segment was just ensured");
        writer.append(frame)?;
        let seg = self
            .segments
            .back_mut()
            .expect("the active segment is listed");
        let new_bytes = writer.len();
        self.total_bytes = self.total_bytes - seg.bytes + new_bytes;
        seg.bytes = new_bytes;
        seg.frames += 1;
        let abs = self.end;
        self.end += 1;
        Ok(Some(abs))
    }

    /// Marks everything appended so far as sent (used when lines that were
    /// sent from memory are moved into the spool).
    pub(crate) fn mark_all_read(&mut self) {
        self.read = self.end;
    }

    fn seal_active(&mut self) -> Result<(), Error> {
        if let Some(w) = self.active.take() {
            w.finish()?;
            if let Some(seg) = self.segments.back_mut() {
                seg.bytes = std::fs::metadata(&seg.path).map_or(seg.bytes, |m| m.len());
            }
            self.total_bytes = self.segments.iter().map(|s| s.bytes).sum();
        }
        Ok(())
    }

    /// Finishes the segment being written, so that a later process can
    /// read it.
    pub(crate) fn close(&mut self) -> Result<(), Error> {
        self.seal_active()
    }

    /// The next frame to send and its absolute index, `None` when all were
    /// sent.
    pub(crate) async fn next_unread(&mut self) -> Result<Option<(u64, Vec<u8>)>, Error> {
        loop {
            if self.read >= self.end {
                return Ok(None);
            }
            let read = self.read;
            let idx = self
                .segments
                .iter()
                .position(|s| s.first <= read && read < s.first + s.frames)
                .expect("every unread frame lies in a listed segment");
            let (seq, first, frames, damaged_at, path) = {
                let s = &self.segments[idx];
                (s.seq, s.first, s.frames, s.damaged_at, s.path.clone())
            };
            if damaged_at.is_some_and(|d| read >= first + d) {
                self.read = first + frames;
                continue;
            }
            if idx + 1 == self.segments.len() && self.active.is_some() {
                self.seal_active()?;
            }
            let reusable = matches!(&self.reader, Some(r) if r.seq == seq && r.next_abs <= read);
            if !reusable {
                let inner = match self.format.open(&path).await {
                    Ok(inner) => inner,
                    Err(_) => {
                        self.mark_damaged(idx, 0);
                        continue;
                    }
                };
                self.reader = Some(OpenReader {
                    seq,
                    next_abs: first,
                    inner,
                });
            }
            let reader = self.reader.as_mut().expect("a reader was just ensured");
            let mut failed_at = None;
            while reader.next_abs <= read {
                match reader.inner.next_frame() {
                    Ok(Some(frame)) => {
                        reader.next_abs += 1;
                        if reader.next_abs > read {
                            self.read += 1;
                            return Ok(Some((read, frame)));
                        }
                    }
                    Ok(None) | Err(_) => {
                        failed_at = Some(reader.next_abs - first);
                        break;
                    }
                }
            }
            if let Some(offset) = failed_at {
                self.reader = None;
                self.mark_damaged(idx, offset);
            }
        }
    }

    fn mark_damaged(&mut self, idx: usize, offset: u64) {
        let seg = &mut self.segments[idx];
        if seg.damaged_at.is_none() {
            seg.damaged_at = Some(offset);
            self.lost += seg.frames - offset;
        }
    }

    /// Sends everything from the oldest unacknowledged frame again.
    pub(crate) fn rewind(&mut self) {
        self.read = self.committed;
    }

    /// Records that every frame up to and including `abs` is acknowledged,
    /// deleting the segments that are now wholly acknowledged.
    pub(crate) fn commit_through(&mut self, abs: u64) -> Result<(), Error> {
        self.committed = self.committed.max(abs + 1).min(self.end);
        while let Some(front) = self.segments.front() {
            let done = front.first + front.frames <= self.committed;
            let is_active = self.segments.len() == 1 && self.active.is_some();
            if !done || (is_active && self.read < self.end) {
                break;
            }
            if is_active {
                self.seal_active()?;
            }
            let seg = self.segments.pop_front().expect("front exists");
            if self.reader.as_ref().is_some_and(|r| r.seq == seg.seq) {
                self.reader = None;
            }
            std::fs::remove_file(&seg.path).map_err(|source| Error::SpoolFile {
                path: seg.path.clone(),
                source,
            })?;
            self.total_bytes -= seg.bytes.min(self.total_bytes);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::socket::segment::SealedSegments;
    use wharf_envelope::LocalKeyProvider;

    async fn spool(dir: &Path, max: u64) -> Spool {
        let keys = Arc::new(LocalKeyProvider::from_key([7; 32]));
        Spool::open(dir, Arc::new(SealedSegments::new(keys, "test")), max)
            .await
            .unwrap()
    }

    fn segment_files(dir: &Path) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "seg"))
            .collect();
        files.sort();
        files
    }

    async fn read_all(s: &mut Spool) -> Vec<String> {
        let mut out = Vec::new();
        while let Some((_, f)) = s.next_unread().await.unwrap() {
            out.push(String::from_utf8(f).unwrap());
        }
        out
    }

    #[tokio::test]
    async fn reads_back_in_order_across_segments_and_deletes_when_acked() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = spool(dir.path(), 256 * 1024).await;
        let lines: Vec<String> = (0..500)
            .map(|i| format!("line {i:04} {}", "x".repeat(40)))
            .collect();
        for l in &lines {
            assert!(s.append(l.as_bytes()).await.unwrap().is_some());
        }
        assert!(segment_files(dir.path()).len() > 1, "several segments");
        assert_eq!(read_all(&mut s).await, lines);
        s.rewind();
        assert_eq!(
            read_all(&mut s).await,
            lines,
            "a rewind sends everything again"
        );
        s.commit_through(249).unwrap();
        s.rewind();
        assert_eq!(read_all(&mut s).await, lines[250..].to_vec());
        s.commit_through(499).unwrap();
        assert_eq!(s.pending(), 0);
        assert_eq!(segment_files(dir.path()).len(), 0, "acked segments deleted");
        assert_eq!(s.bytes(), 0);
    }

    #[tokio::test]
    async fn refuses_appends_past_its_bound() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = spool(dir.path(), 64 * 1024).await;
        let mut stored = 0;
        for _ in 0..1000 {
            if s.append(&[b'a'; 100]).await.unwrap().is_some() {
                stored += 1;
            }
        }
        assert!(stored > 300 && stored < 600, "stored {stored}");
        assert!(s.bytes() <= 64 * 1024, "{} bytes", s.bytes());
        let on_disk: u64 = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        assert!(on_disk <= 64 * 1024, "{on_disk} bytes on disk");
    }

    #[tokio::test]
    async fn a_new_process_picks_up_what_was_left_and_keeps_frames_before_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        {
            // A process that dies without finishing its segment.
            let mut s = spool(dir.path(), 1 << 20).await;
            for i in 0..10 {
                s.append(format!("l{i}").as_bytes()).await.unwrap();
            }
        }
        // ... while writing the last frame: cut it short.
        let seg = segment_files(dir.path())[0].clone();
        let bytes = std::fs::read(&seg).unwrap();
        std::fs::write(&seg, &bytes[..bytes.len() - 3]).unwrap();
        let mut s = spool(dir.path(), 1 << 20).await;
        s.append(b"after").await.unwrap();
        let got = read_all(&mut s).await;
        let mut want: Vec<String> = (0..9).map(|i| format!("l{i}")).collect();
        want.push("after".into());
        assert_eq!(got, want);
    }

    #[tokio::test]
    async fn a_second_writer_on_the_same_spool_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let first = spool(dir.path(), 1 << 20).await;
        let keys = Arc::new(LocalKeyProvider::from_key([7; 32]));
        let second = Spool::open(
            dir.path(),
            Arc::new(SealedSegments::new(keys, "test")),
            1 << 20,
        )
        .await;
        let err = second.err().expect("refused").to_string();
        assert!(err.contains(&dir.path().display().to_string()), "{err}");
        drop(first);
        spool(dir.path(), 1 << 20).await;
    }

    #[tokio::test]
    async fn segments_are_encrypted_and_bound_to_their_context() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = spool(dir.path(), 1 << 20).await;
            s.append(b"secret-telemetry-line").await.unwrap();
            s.close().unwrap();
        }
        let seg = segment_files(dir.path())[0].clone();
        let bytes = std::fs::read(&seg).unwrap();
        assert!(wharf_envelope::atrest::is_sealed_file(&bytes));
        assert!(
            !bytes.windows(6).any(|w| w == b"secret"),
            "plaintext on disk"
        );
        // Another cluster's spool refuses the file rather than replaying it.
        let keys = Arc::new(LocalKeyProvider::from_key([7; 32]));
        let mut other = Spool::open(
            dir.path(),
            Arc::new(SealedSegments::new(keys, "other")),
            1 << 20,
        )
        .await
        .unwrap();
        assert_eq!(read_all(&mut other).await, Vec::<String>::new());
    }
}
