//! The one seam between the shipper's files (buffer segments, dead
//! letters) and `envelope`'s at-rest format: every frame is sealed with
//! AES-256-GCM under a per-file data key wrapped by the master key, and a
//! torn tail is cut at reopening ([`wharf_envelope::atrest`]).
//!
//! The encryption context of each file names its purpose, and readers
//! insist on it; a segment passed off as another is caught by the
//! sequence numbers of its records. (No per-file name in the context, so
//! the data-key cache serves many files with one KMS call.)

use std::path::Path;
use std::sync::Arc;

use wharf_envelope::atrest::{SealedReader, SealedWriter, Tail, WriterOptions};
use wharf_envelope::{EncryptionContext, KeyProvider};

use crate::error::Result;

/// Largest frame payload (a line may be up to 64 MiB; batches are split
/// well below this).
pub(crate) const MAX_FRAME: u32 = 80 << 20;

/// What reopening a file found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Recovery {
    /// Whole frames kept.
    pub(crate) frames: u64,
    /// Bytes of a torn tail that were cut off.
    pub(crate) truncated_bytes: u64,
    /// Whether the file was already sealed by a final frame.
    pub(crate) sealed: bool,
}

/// Opens and creates the files of one purpose (`shipper-buffer`,
/// `shipper-dead-letter`) under one master key.
#[derive(Clone)]
pub struct AtRest {
    keys: Arc<dyn KeyProvider>,
    purpose: &'static str,
}

impl AtRest {
    /// Files of `purpose` under `keys`.
    pub fn new(keys: Arc<dyn KeyProvider>, purpose: &'static str) -> AtRest {
        AtRest { keys, purpose }
    }

    fn context(&self, _path: &Path) -> EncryptionContext {
        let mut c = EncryptionContext::new();
        c.insert("purpose".into(), self.purpose.into());
        c
    }

    /// Creates a new, empty file (it must not exist).
    pub(crate) async fn create(&self, path: &Path) -> Result<FrameWriter> {
        let opts = WriterOptions {
            max_frame_len: MAX_FRAME,
        };
        let inner =
            SealedWriter::create_with(path, self.keys.as_ref(), &self.context(path), opts).await?;
        Ok(FrameWriter { inner })
    }

    /// Reopens a file after a crash: keeps every whole frame, cuts a torn
    /// tail. A sealed file cannot be appended to: no writer is returned.
    pub(crate) async fn open_append(&self, path: &Path) -> Result<(Option<FrameWriter>, Recovery)> {
        let reader = self.open(path).await?;
        let mut frames = reader.inner.frames();
        let mut n = 0;
        for f in frames.by_ref() {
            f?;
            n += 1;
        }
        let tail = frames.tail();
        let mut rec = Recovery {
            frames: n,
            ..Recovery::default()
        };
        match tail {
            Some(Tail::Finished { .. }) => {
                rec.sealed = true;
                return Ok((None, rec));
            }
            Some(Tail::Torn { len, .. }) => rec.truncated_bytes = len,
            _ => {}
        }
        let (inner, _) = SealedWriter::open_append(path, self.keys.as_ref()).await?;
        Ok((Some(FrameWriter { inner }), rec))
    }

    /// Opens a file to read its frames.
    pub(crate) async fn open(&self, path: &Path) -> Result<FrameReader> {
        let inner =
            SealedReader::open_expecting(path, self.keys.as_ref(), &self.context(path)).await?;
        let pos = inner.data_start();
        Ok(FrameReader { inner, pos })
    }
}

/// Appends frames to one file.
pub(crate) struct FrameWriter {
    inner: SealedWriter,
}

impl FrameWriter {
    /// Appends one frame; returns its position in the file.
    pub(crate) fn append(&mut self, payload: &[u8]) -> Result<u64> {
        Ok(self.inner.append(payload)?)
    }

    /// Bytes in the file so far.
    pub(crate) fn len(&self) -> u64 {
        self.inner.position()
    }

    /// Makes everything appended so far durable.
    pub(crate) fn sync(&mut self) -> Result<()> {
        Ok(self.inner.sync()?)
    }

    /// Writes the final frame and syncs: the file is complete.
    pub(crate) fn finish(self) -> Result<()> {
        self.inner.finish()?;
        Ok(())
    }
}

/// Reads frames back in order.
pub(crate) struct FrameReader {
    inner: SealedReader,
    pos: u64,
}

impl FrameReader {
    /// The next frame's payload; `None` at the final frame or the end.
    pub(crate) fn next_frame(&mut self) -> Result<Option<Vec<u8>>> {
        match self.inner.read_at(self.pos)? {
            Some(f) => {
                self.pos = f.next_position;
                Ok(Some(f.data))
            }
            None => Ok(None),
        }
    }
}

/// Packs records' encodings into one frame payload: `len u32 | bytes`, repeated.
pub(crate) fn pack(out: &mut Vec<u8>, record: &[u8]) {
    out.extend_from_slice(&(record.len() as u32).to_le_bytes());
    out.extend_from_slice(record);
}

/// The records packed in a frame payload.
pub(crate) fn unpack(frame: &[u8]) -> impl Iterator<Item = Result<&[u8], ()>> {
    let mut rest = frame;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        if rest.len() < 4 {
            rest = &[];
            return Some(Err(()));
        }
        let len = u32::from_le_bytes(rest[..4].try_into().unwrap()) as usize;
        if rest.len() < 4 + len {
            rest = &[];
            return Some(Err(()));
        }
        let (rec, tail) = rest[4..].split_at(len);
        rest = tail;
        Some(Ok(rec))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use wharf_envelope::LocalKeyProvider;

    fn at() -> AtRest {
        AtRest::new(Arc::new(LocalKeyProvider::random()), "test")
    }

    #[tokio::test]
    async fn frames_round_trip_encrypted_and_seal() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a");
        let a = at();
        let mut w = a.create(&p).await.unwrap();
        w.append(b"one secret").unwrap();
        w.append(b"").unwrap();
        w.finish().unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert!(
            !bytes.windows(10).any(|w| w == b"one secret"),
            "encrypted on disk"
        );
        let mut r = a.open(&p).await.unwrap();
        assert_eq!(r.next_frame().unwrap().unwrap(), b"one secret");
        assert_eq!(r.next_frame().unwrap().unwrap(), b"");
        assert!(r.next_frame().unwrap().is_none());
        let (w, rec) = a.open_append(&p).await.unwrap();
        assert!(w.is_none() && rec.sealed && rec.frames == 2);
        // Another purpose's file: refused.
        let other = AtRest::new(a.keys.clone(), "other");
        assert!(other.open(&p).await.is_err());
    }

    #[tokio::test]
    async fn torn_tail_is_cut_and_appending_continues() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a");
        let a = at();
        let mut w = a.create(&p).await.unwrap();
        w.append(b"kept").unwrap();
        w.append(b"torn frame").unwrap();
        w.sync().unwrap();
        drop(w);
        let len = std::fs::metadata(&p).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        let (w, rec) = a.open_append(&p).await.unwrap();
        assert_eq!(rec.frames, 1);
        assert!(rec.truncated_bytes > 0);
        let mut w = w.unwrap();
        w.append(b"after").unwrap();
        w.finish().unwrap();
        let mut r = a.open(&p).await.unwrap();
        assert_eq!(r.next_frame().unwrap().unwrap(), b"kept");
        assert_eq!(r.next_frame().unwrap().unwrap(), b"after");
        assert!(r.next_frame().unwrap().is_none());
    }

    #[test]
    fn pack_unpack() {
        let mut f = Vec::new();
        pack(&mut f, b"ab");
        pack(&mut f, b"");
        pack(&mut f, b"cde");
        let got: Vec<_> = unpack(&f).map(|r| r.unwrap().to_vec()).collect();
        assert_eq!(got, vec![b"ab".to_vec(), vec![], b"cde".to_vec()]);
        assert!(unpack(&f[..f.len() - 1]).any(|r| r.is_err()));
    }
}
