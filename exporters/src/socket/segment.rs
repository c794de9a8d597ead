//! The seam between the spool and the bytes on disk.
//!
//! A spool segment is one file holding a sequence of frames, one frame per
//! telemetry line. [`SegmentFormat`] creates and opens segments; the spool
//! never touches file contents itself, so the format can change without
//! touching the spool's ordering and accounting rules.
//!
//! [`PlainSegments`] is the interim format: `WHARFSPOOL1\n`, then frames of
//! a 4-byte big-endian length and the line. It is **not encrypted**; it will
//! be replaced by `wharf-envelope`'s at-rest format (`SealedWriter` /
//! `SealedReader`, one frame per append) once that lands on main. A frame
//! cut short by a crash ends the segment: the frames before it are kept.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

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

const MAGIC: &[u8] = b"WHARFSPOOL1\n";
/// Refuse frames above this size when reading: a damaged length must not
/// make the reader allocate gigabytes.
const MAX_FRAME: u32 = 16 * 1024 * 1024;

/// The interim, unencrypted segment format (see the module docs).
#[derive(Debug, Default, Clone, Copy)]
pub struct PlainSegments;

#[async_trait::async_trait]
impl SegmentFormat for PlainSegments {
    async fn create(&self, path: &Path) -> Result<Box<dyn SegmentWriter>, Error> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|source| file_err(path, source))?;
        let mut out = BufWriter::new(file);
        out.write_all(MAGIC).map_err(|s| file_err(path, s))?;
        Ok(Box::new(PlainWriter {
            path: path.to_path_buf(),
            out,
            len: MAGIC.len() as u64,
        }))
    }

    async fn open(&self, path: &Path) -> Result<Box<dyn SegmentReader>, Error> {
        let file = File::open(path).map_err(|s| file_err(path, s))?;
        let mut input = BufReader::new(file);
        let mut magic = [0u8; MAGIC.len()];
        input
            .read_exact(&mut magic)
            .map_err(|s| file_err(path, s))?;
        if magic != MAGIC {
            return Err(Error::SpoolCorrupt {
                path: path.to_path_buf(),
                frame: 0,
                reason: "it does not start with the spool header".into(),
            });
        }
        Ok(Box::new(PlainReader {
            path: path.to_path_buf(),
            input,
            frame: 0,
        }))
    }
}

fn file_err(path: &Path, source: std::io::Error) -> Error {
    Error::SpoolFile {
        path: path.to_path_buf(),
        source,
    }
}

struct PlainWriter {
    path: PathBuf,
    out: BufWriter<File>,
    len: u64,
}

impl SegmentWriter for PlainWriter {
    fn append(&mut self, frame: &[u8]) -> Result<(), Error> {
        let n = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        self.out
            .write_all(&n.to_be_bytes())
            .and_then(|_| self.out.write_all(frame))
            .map_err(|s| file_err(&self.path, s))?;
        self.len += 4 + frame.len() as u64;
        Ok(())
    }

    fn len(&self) -> u64 {
        self.len
    }

    fn is_empty(&self) -> bool {
        self.len == MAGIC.len() as u64
    }

    fn finish(mut self: Box<Self>) -> Result<(), Error> {
        self.out.flush().map_err(|s| file_err(&self.path, s))
    }
}

struct PlainReader {
    path: PathBuf,
    input: BufReader<File>,
    frame: u64,
}

impl SegmentReader for PlainReader {
    fn next_frame(&mut self) -> Result<Option<Vec<u8>>, Error> {
        let mut len = [0u8; 4];
        match read_full(&mut self.input, &mut len) {
            Ok(0) => return Ok(None),
            Ok(4) => {}
            Ok(_) => return Err(self.corrupt("the file ends inside a frame length")),
            Err(s) => return Err(file_err(&self.path, s)),
        }
        let len = u32::from_be_bytes(len);
        if len > MAX_FRAME {
            return Err(self.corrupt("a frame length is impossibly large"));
        }
        let mut frame = vec![0u8; len as usize];
        match read_full(&mut self.input, &mut frame) {
            Ok(n) if n == frame.len() => {}
            Ok(_) => return Err(self.corrupt("the file ends inside a frame")),
            Err(s) => return Err(file_err(&self.path, s)),
        }
        self.frame += 1;
        Ok(Some(frame))
    }
}

impl PlainReader {
    fn corrupt(&self, reason: &str) -> Error {
        Error::SpoolCorrupt {
            path: self.path.clone(),
            frame: self.frame,
            reason: reason.into(),
        }
    }
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
