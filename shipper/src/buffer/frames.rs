//! The one seam between the buffer and its file format: append frames,
//! sync, seal; reopen with torn-tail recovery; read frames back.
//!
//! This is the plaintext stand-in with the same shape as `envelope`'s
//! at-rest format (`SealedWriter` / `SealedReader`): a 16-byte header, then
//! frames of `len u32 | crc32 u32 | payload`, closed by a final frame of
//! length `u32::MAX`. Switching to encrypted files changes this file only.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

const MAGIC: &[u8; 16] = b"WHARFBUF\x01\0\0\0\0\0\0\0";
const FINAL: u32 = u32::MAX;
/// Largest payload a frame may hold.
pub(crate) const MAX_FRAME: usize = 256 << 20;

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

/// Appends frames to one file.
pub(crate) struct FrameWriter {
    path: PathBuf,
    out: BufWriter<File>,
    len: u64,
}

impl FrameWriter {
    /// Creates a new, empty file (it must not exist).
    pub(crate) fn create(path: &Path) -> Result<Self> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        let mut w = FrameWriter {
            path: path.to_owned(),
            out: BufWriter::with_capacity(256 << 10, file),
            len: 0,
        };
        w.write(MAGIC)?;
        Ok(w)
    }

    /// Reopens a file for appending after a crash: keeps every whole frame,
    /// cuts a torn tail. A sealed file cannot be appended to; its recovery
    /// says so and no writer is returned.
    pub(crate) fn open_append(path: &Path) -> Result<(Option<Self>, Recovery)> {
        let (good_len, recovery) = scan(path)?;
        if recovery.sealed {
            return Ok((None, recovery));
        }
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        file.set_len(good_len).map_err(|e| Error::io(path, e))?;
        let mut file = file;
        file.seek(SeekFrom::Start(good_len))
            .map_err(|e| Error::io(path, e))?;
        file.sync_all().map_err(|e| Error::io(path, e))?;
        Ok((
            Some(FrameWriter {
                path: path.to_owned(),
                out: BufWriter::with_capacity(256 << 10, file),
                len: good_len,
            }),
            recovery,
        ))
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.out
            .write_all(bytes)
            .map_err(|e| Error::io(&self.path, e))?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Appends one frame; returns its position (byte offset) in the file.
    pub(crate) fn append(&mut self, payload: &[u8]) -> Result<u64> {
        assert!(payload.len() <= MAX_FRAME, "frame larger than MAX_FRAME");
        let pos = self.len;
        let mut head = [0u8; 8];
        head[..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        head[4..].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
        self.write(&head)?;
        self.write(payload)?;
        Ok(pos)
    }

    /// Bytes in the file so far.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Makes everything appended so far durable.
    pub(crate) fn sync(&mut self) -> Result<()> {
        self.out.flush().map_err(|e| Error::io(&self.path, e))?;
        self.out
            .get_ref()
            .sync_data()
            .map_err(|e| Error::io(&self.path, e))
    }

    /// Writes the final frame and syncs: the file is complete.
    pub(crate) fn finish(mut self) -> Result<()> {
        self.write(&FINAL.to_le_bytes())?;
        self.write(&0u32.to_le_bytes())?;
        self.sync()
    }
}

fn scan(path: &Path) -> Result<(u64, Recovery)> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let total = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut reader = FrameReader::from_file(path, file)?;
    let mut rec = Recovery::default();
    loop {
        match reader.next_frame() {
            Ok(Some(_)) => rec.frames += 1,
            Ok(None) => break,
            Err(_) => break,
        }
    }
    rec.sealed = reader.sealed;
    rec.truncated_bytes = total - reader.pos;
    Ok((reader.pos, rec))
}

/// Reads frames back in order.
pub(crate) struct FrameReader {
    path: PathBuf,
    input: BufReader<File>,
    pos: u64,
    sealed: bool,
    buf: Vec<u8>,
}

impl FrameReader {
    /// Opens a file and checks its header.
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        Self::from_file(path, file)
    }

    fn from_file(path: &Path, file: File) -> Result<Self> {
        let mut input = BufReader::with_capacity(256 << 10, file);
        let mut magic = [0u8; 16];
        input.read_exact(&mut magic).map_err(|e| Error::Corrupt {
            path: path.to_owned(),
            reason: format!("cannot read its header ({e})"),
        })?;
        if &magic != MAGIC {
            return Err(Error::Corrupt {
                path: path.to_owned(),
                reason: "it is not a Wharf buffer file (wrong header)".into(),
            });
        }
        Ok(FrameReader {
            path: path.to_owned(),
            input,
            pos: 16,
            sealed: false,
            buf: Vec::new(),
        })
    }

    /// Whether the final frame has been read.
    pub(crate) fn sealed(&self) -> bool {
        self.sealed
    }

    /// The next frame's payload; `None` at the final frame or at a clean
    /// end of file; an error for a torn or damaged frame.
    pub(crate) fn next_frame(&mut self) -> Result<Option<&[u8]>> {
        if self.sealed {
            return Ok(None);
        }
        let mut head = [0u8; 8];
        match read_full(&mut self.input, &mut head) {
            Ok(0) => return Ok(None),
            Ok(8) => {}
            Ok(_) => return Err(self.corrupt("torn frame header")),
            Err(e) => return Err(Error::io(&self.path, e)),
        }
        let len = u32::from_le_bytes(head[..4].try_into().unwrap());
        let crc = u32::from_le_bytes(head[4..].try_into().unwrap());
        if len == FINAL {
            self.sealed = true;
            self.pos += 8;
            return Ok(None);
        }
        let len = len as usize;
        if len > MAX_FRAME {
            return Err(self.corrupt("frame length out of range"));
        }
        self.buf.resize(len, 0);
        match read_full(&mut self.input, &mut self.buf) {
            Ok(n) if n == len => {}
            Ok(_) => return Err(self.corrupt("torn frame")),
            Err(e) => return Err(Error::io(&self.path, e)),
        }
        if crc32fast::hash(&self.buf) != crc {
            return Err(self.corrupt("frame checksum mismatch"));
        }
        self.pos += 8 + len as u64;
        Ok(Some(&self.buf))
    }

    fn corrupt(&self, what: &str) -> Error {
        Error::Corrupt {
            path: self.path.clone(),
            reason: format!("{what} at byte {}", self.pos),
        }
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_seal() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a");
        let mut w = FrameWriter::create(&p).unwrap();
        w.append(b"one").unwrap();
        w.append(b"").unwrap();
        w.append(b"three").unwrap();
        w.finish().unwrap();
        let mut r = FrameReader::open(&p).unwrap();
        let mut got = Vec::new();
        while let Some(f) = r.next_frame().unwrap() {
            got.push(f.to_vec());
        }
        assert!(r.sealed());
        assert_eq!(got, vec![b"one".to_vec(), vec![], b"three".to_vec()]);
        let (w, rec) = FrameWriter::open_append(&p).unwrap();
        assert!(w.is_none() && rec.sealed && rec.frames == 3);
    }

    #[test]
    fn torn_tail_is_cut_and_appending_continues() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a");
        let mut w = FrameWriter::create(&p).unwrap();
        w.append(b"kept").unwrap();
        w.append(b"torn frame").unwrap();
        w.sync().unwrap();
        drop(w);
        let len = std::fs::metadata(&p).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        let (w, rec) = FrameWriter::open_append(&p).unwrap();
        assert_eq!(rec.frames, 1);
        assert_eq!(rec.truncated_bytes, 8 + 10 - 3);
        let mut w = w.unwrap();
        w.append(b"after").unwrap();
        w.finish().unwrap();
        let mut r = FrameReader::open(&p).unwrap();
        assert_eq!(r.next_frame().unwrap().unwrap(), b"kept");
        assert_eq!(r.next_frame().unwrap().unwrap(), b"after");
        assert!(r.next_frame().unwrap().is_none());
    }
}
