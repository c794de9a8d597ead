//! The one seam between the storage engine and the bytes on disk.
//!
//! Every file the broker writes (segments, indexes, state files) is a
//! sequence of frames appended through [`FrameWriter`] and read back
//! through [`FrameReader`] or [`read_frames`]. Which at-rest format the
//! frames use is decided here and nowhere else:
//!
//! - [`AtRest::Sealed`]: `envelope`'s at-rest format (AES-256-GCM frames
//!   under a per-file data key wrapped by the master key, torn tails
//!   detected, tampering refused). The default.
//! - [`AtRest::Plain`]: `u32 length | u32 crc32c(payload) | payload`, for
//!   benchmarks that compare against no encryption.

use std::fs::{File, OpenOptions};
use std::io::{IoSlice, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use wharf_envelope::atrest::{FrameBuffer, SealedReader, SealedWriter, Tail, WriterOptions};
use wharf_envelope::{EncryptionContext, KeyProvider, LocalKeyProvider};

use crate::storage::StorageError;

const PLAIN_FRAME_HEADER: u64 = 8;
/// Largest frame (one record batch) the broker writes: 64 MiB.
pub const MAX_FRAME_BYTES: u32 = 64 << 20;
/// Name of the local master key file inside the data directory.
pub const LOCAL_KEY_FILE: &str = "master.key";

/// How frames are protected at rest.
#[derive(Clone)]
pub enum AtRest {
    /// No encryption (benchmarks and comparison only).
    Plain,
    /// Envelope encryption under a master key.
    Sealed {
        /// The master key provider.
        keys: Arc<dyn KeyProvider>,
        /// Encryption context bound into every file's wrapped key.
        context: EncryptionContext,
    },
}

impl AtRest {
    /// Envelope encryption under the local master key `data_dir/master.key`
    /// (created with mode 0600 when missing).
    pub async fn local(data_dir: &Path) -> Result<AtRest, StorageError> {
        let path = data_dir.join(LOCAL_KEY_FILE);
        let keys = LocalKeyProvider::open_or_create(&path).map_err(|e| crypto(&path, e))?;
        Ok(AtRest::sealed(Arc::new(keys)))
    }

    /// Envelope encryption under `keys`.
    pub fn sealed(keys: Arc<dyn KeyProvider>) -> AtRest {
        let context: EncryptionContext =
            [("purpose".to_string(), "wharf-broker-storage".to_string())].into();
        AtRest::Sealed { keys, context }
    }
}

impl std::fmt::Debug for AtRest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AtRest::Plain => f.write_str("plaintext"),
            AtRest::Sealed { .. } => f.write_str("sealed"),
        }
    }
}

fn crypto(path: &Path, e: wharf_envelope::Error) -> StorageError {
    StorageError::Crypto {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// A frame read back, with its position.
#[derive(Debug, Clone)]
pub struct RecoveredFrame {
    /// Position to pass to [`FrameReader::read_at`].
    pub pos: u64,
    /// The payload.
    pub data: Bytes,
}

/// Every intact frame of a file, and whether the file was finished
/// ([`FrameWriter::finish`]). A torn tail is left out (and logged).
pub async fn read_frames(
    path: &Path,
    at_rest: &AtRest,
) -> Result<(Vec<RecoveredFrame>, bool), StorageError> {
    match at_rest {
        AtRest::Plain => {
            let mut all = Vec::new();
            File::open(path)
                .and_then(|mut f| f.read_to_end(&mut all))
                .map_err(|e| StorageError::io(path, e))?;
            let (frames, end) = plain_frames(&all);
            if end < all.len() {
                tracing::warn!(path = %path.display(), torn_bytes = all.len() - end, "file has a torn tail");
            }
            Ok((frames, false))
        }
        AtRest::Sealed { keys, .. } => {
            let reader = SealedReader::open(path, keys.as_ref())
                .await
                .map_err(|e| crypto(path, e))?;
            let mut iter = reader.frames();
            let mut frames = Vec::new();
            for f in iter.by_ref() {
                let f = f.map_err(|e| crypto(path, e))?;
                frames.push(RecoveredFrame {
                    pos: f.position,
                    data: Bytes::from(f.data),
                });
            }
            let finished = match iter.tail() {
                Some(Tail::Finished { .. }) => true,
                Some(Tail::Torn { offset, len }) => {
                    tracing::warn!(path = %path.display(), offset, len, "file has a torn tail");
                    false
                }
                _ => false,
            };
            Ok((frames, finished))
        }
    }
}

fn plain_frames(all: &[u8]) -> (Vec<RecoveredFrame>, usize) {
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
    (frames, at)
}

/// Appends frames to one file.
#[derive(Debug)]
pub struct FrameWriter {
    path: PathBuf,
    inner: WriterInner,
}

#[derive(Debug)]
enum WriterInner {
    Plain { file: File, len: u64 },
    Sealed(SealedWriter),
}

impl FrameWriter {
    /// Creates `path`, replacing any file there.
    pub async fn create(path: &Path, at_rest: &AtRest) -> Result<FrameWriter, StorageError> {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StorageError::io(path, e)),
        }
        let inner = match at_rest {
            AtRest::Plain => {
                let file = OpenOptions::new()
                    .create(true)
                    .truncate(true)
                    .read(true)
                    .write(true)
                    .open(path)
                    .map_err(|e| StorageError::io(path, e))?;
                WriterInner::Plain { file, len: 0 }
            }
            AtRest::Sealed { keys, context } => {
                let options = WriterOptions {
                    max_frame_len: MAX_FRAME_BYTES,
                };
                let w = SealedWriter::create_with(path, keys.as_ref(), context, options)
                    .await
                    .map_err(|e| crypto(path, e))?;
                WriterInner::Sealed(w)
            }
        };
        Ok(FrameWriter {
            path: path.to_path_buf(),
            inner,
        })
    }

    /// Reopens an unfinished file for appending after a restart; a torn
    /// tail (a crash mid-write) is cut off first.
    pub async fn open_append(path: &Path, at_rest: &AtRest) -> Result<FrameWriter, StorageError> {
        let inner = match at_rest {
            AtRest::Plain => {
                let mut file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(path)
                    .map_err(|e| StorageError::io(path, e))?;
                let mut all = Vec::new();
                file.read_to_end(&mut all)
                    .map_err(|e| StorageError::io(path, e))?;
                let (_, end) = plain_frames(&all);
                if end < all.len() {
                    tracing::warn!(path = %path.display(), kept = end, dropped = all.len() - end, "truncating torn tail");
                    file.set_len(end as u64)
                        .map_err(|e| StorageError::io(path, e))?;
                    file.sync_data().map_err(|e| StorageError::io(path, e))?;
                }
                file.seek(SeekFrom::Start(end as u64))
                    .map_err(|e| StorageError::io(path, e))?;
                WriterInner::Plain {
                    file,
                    len: end as u64,
                }
            }
            AtRest::Sealed { keys, .. } => {
                let (w, recovery) = SealedWriter::open_append(path, keys.as_ref())
                    .await
                    .map_err(|e| crypto(path, e))?;
                if let Some((offset, len)) = recovery.torn {
                    tracing::warn!(path = %path.display(), offset, len, "truncated torn tail");
                }
                WriterInner::Sealed(w)
            }
        };
        Ok(FrameWriter {
            path: path.to_path_buf(),
            inner,
        })
    }

    /// Appends one frame and returns its position.
    pub async fn append(&mut self, data: &[u8]) -> Result<u64, StorageError> {
        match &mut self.inner {
            WriterInner::Plain { file, len } => {
                let pos = *len;
                let mut header = [0u8; PLAIN_FRAME_HEADER as usize];
                header[..4].copy_from_slice(&(data.len() as u32).to_be_bytes());
                header[4..].copy_from_slice(&crc32c::crc32c(data).to_be_bytes());
                // Header and data in one write, without copying the data
                // into a frame first.
                write_all_vectored(file, &mut [IoSlice::new(&header), IoSlice::new(data)])
                    .map_err(|e| StorageError::io(&self.path, e))?;
                *len += PLAIN_FRAME_HEADER + data.len() as u64;
                Ok(pos)
            }
            WriterInner::Sealed(w) => w.append(data).map_err(|e| crypto(&self.path, e)),
        }
    }

    /// Makes every appended frame durable (fdatasync).
    pub async fn sync(&mut self) -> Result<(), StorageError> {
        match &mut self.inner {
            WriterInner::Plain { file, .. } => file
                .sync_data()
                .map_err(|e| StorageError::io(&self.path, e)),
            WriterInner::Sealed(w) => w.sync().map_err(|e| crypto(&self.path, e)),
        }
    }

    /// Marks the file complete (sealed format: the final frame) and syncs.
    pub async fn finish(self) -> Result<(), StorageError> {
        match self.inner {
            WriterInner::Plain { file, .. } => file
                .sync_data()
                .map_err(|e| StorageError::io(&self.path, e)),
            WriterInner::Sealed(w) => w.finish().map(|_| ()).map_err(|e| crypto(&self.path, e)),
        }
    }
}

/// Writes all of `bufs` to `file`, in order, however the kernel splits
/// the writes.
fn write_all_vectored(file: &mut impl Write, mut bufs: &mut [IoSlice<'_>]) -> std::io::Result<()> {
    IoSlice::advance_slices(&mut bufs, 0);
    while !bufs.is_empty() {
        match file.write_vectored(bufs) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads frames of one file by position.
#[derive(Debug)]
pub struct FrameReader {
    path: PathBuf,
    inner: ReaderInner,
}

#[derive(Debug)]
enum ReaderInner {
    Plain(File),
    Sealed(Box<SealedReader>),
}

impl FrameReader {
    /// Opens `path` for reading.
    pub async fn open(path: &Path, at_rest: &AtRest) -> Result<FrameReader, StorageError> {
        let inner = match at_rest {
            AtRest::Plain => {
                ReaderInner::Plain(File::open(path).map_err(|e| StorageError::io(path, e))?)
            }
            AtRest::Sealed { keys, .. } => {
                let r = SealedReader::open(path, keys.as_ref())
                    .await
                    .map_err(|e| crypto(path, e))?;
                ReaderInner::Sealed(Box::new(r))
            }
        };
        Ok(FrameReader {
            path: path.to_path_buf(),
            inner,
        })
    }

    /// Reads the frame at `pos` (a position returned by
    /// [`FrameWriter::append`]) onto the end of `arena`'s unsplit part,
    /// so that frames read one after another lie back to back in one
    /// buffer; returns its length. On error the arena is as it was.
    /// Blocking (positional reads of a local file), so that a blocking
    /// thread can read ahead with it.
    pub fn append_to(&self, pos: u64, arena: &mut BytesMut) -> Result<usize, StorageError> {
        let start = arena.len();
        let read = self.read_frame(pos, &mut InArena { arena, start });
        if read.is_err() {
            arena.truncate(start);
        }
        read
    }

    fn read_frame(&self, pos: u64, slot: &mut InArena<'_>) -> Result<usize, StorageError> {
        let missing = || StorageError::Corrupt {
            path: self.path.display().to_string(),
            reason: format!("no frame at position {pos}"),
        };
        match &self.inner {
            ReaderInner::Plain(file) => {
                let mut header = [0u8; PLAIN_FRAME_HEADER as usize];
                file.read_exact_at(&mut header, pos)
                    .map_err(|e| StorageError::io(&self.path, e))?;
                let len = u32::from_be_bytes(header[..4].try_into().expect("4 bytes")) as usize;
                let crc = u32::from_be_bytes(header[4..].try_into().expect("4 bytes"));
                if len > MAX_FRAME_BYTES as usize {
                    return Err(missing());
                }
                let data = slot.set_len(len);
                file.read_exact_at(data, pos + PLAIN_FRAME_HEADER)
                    .map_err(|e| StorageError::io(&self.path, e))?;
                if crc32c::crc32c(data) != crc {
                    return Err(StorageError::Corrupt {
                        path: self.path.display().to_string(),
                        reason: format!("frame at {pos} fails its checksum"),
                    });
                }
                Ok(len)
            }
            ReaderInner::Sealed(r) => {
                r.read_at_into(pos, slot)
                    .map_err(|e| crypto(&self.path, e))?
                    .ok_or_else(missing)?;
                Ok(slot.arena.len() - slot.start)
            }
        }
    }
}

/// Room a frame of `len` bytes takes in an arena while it is read: a
/// sealed frame is read with its AES-GCM tag, which the plaintext then
/// leaves unused.
pub(super) fn read_room(len: usize) -> usize {
    len + 16
}

/// A frame read onto the end of an arena: the arena from `start` on.
struct InArena<'a> {
    arena: &'a mut BytesMut,
    start: usize,
}

impl FrameBuffer for InArena<'_> {
    fn set_len(&mut self, len: usize) -> &mut [u8] {
        self.arena.truncate(self.start);
        self.arena.resize(self.start + len, 0);
        &mut self.arena[self.start..]
    }
    fn truncate(&mut self, len: usize) {
        self.arena.truncate(self.start + len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn round_trip(at_rest: AtRest) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut w = FrameWriter::create(&path, &at_rest).await.unwrap();
        let a = w.append(b"first frame").await.unwrap();
        let b = w.append(b"second frame").await.unwrap();
        w.sync().await.unwrap();
        let r = FrameReader::open(&path, &at_rest).await.unwrap();
        let mut arena = BytesMut::new();
        assert_eq!(r.append_to(b, &mut arena).unwrap(), 12);
        assert_eq!(r.append_to(a, &mut arena).unwrap(), 11);
        assert_eq!(&arena[..], b"second framefirst frame", "back to back");
        drop(w);
        // A torn tail: half a frame appended by a crash.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[0, 0, 0, 50, 1, 2, 3]).unwrap();
        let (frames, finished) = read_frames(&path, &at_rest).await.unwrap();
        assert_eq!(frames.len(), 2);
        assert!(!finished);
        let mut w = FrameWriter::open_append(&path, &at_rest).await.unwrap();
        let c = w.append(b"third").await.unwrap();
        w.finish().await.unwrap();
        let (frames, _) = read_frames(&path, &at_rest).await.unwrap();
        assert_eq!(
            frames.iter().map(|f| &f.data[..]).collect::<Vec<_>>(),
            [&b"first frame"[..], b"second frame", b"third"]
        );
        assert_eq!(frames[2].pos, c);
    }

    #[tokio::test]
    async fn plaintext_frames_round_trip_and_recover() {
        round_trip(AtRest::Plain).await;
    }

    #[tokio::test]
    async fn sealed_frames_round_trip_recover_and_hide_the_plaintext() {
        let at_rest = AtRest::sealed(Arc::new(LocalKeyProvider::random()));
        round_trip(at_rest.clone()).await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        let mut w = FrameWriter::create(&path, &at_rest).await.unwrap();
        w.append(b"PLAINTEXT-MARKER-123").await.unwrap();
        w.finish().await.unwrap();
        let raw = std::fs::read(&path).unwrap();
        assert!(!raw.windows(20).any(|w| w == b"PLAINTEXT-MARKER-123"));
        let (frames, finished) = read_frames(&path, &at_rest).await.unwrap();
        assert!(finished);
        assert_eq!(&frames[0].data[..], b"PLAINTEXT-MARKER-123");
    }

    /// Takes at most three bytes a call, and is interrupted once.
    struct Trickle {
        out: Vec<u8>,
        interrupted: bool,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if !self.interrupted {
                self.interrupted = true;
                return Err(std::io::ErrorKind::Interrupted.into());
            }
            let n = buf.len().min(3);
            self.out.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn vectored_writes_finish_whatever_the_kernel_takes_per_call() {
        let mut w = Trickle {
            out: Vec::new(),
            interrupted: false,
        };
        let header = [1u8, 2, 3, 4, 5, 6, 7, 8];
        let mut bufs = [
            IoSlice::new(&[]),
            IoSlice::new(&header),
            IoSlice::new(b"data"),
        ];
        write_all_vectored(&mut w, &mut bufs).unwrap();
        assert_eq!(w.out, b"\x01\x02\x03\x04\x05\x06\x07\x08data");
    }
}
