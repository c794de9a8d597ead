//! Reading an at-rest file: one frame at a position, or every frame in order.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use aws_lc_rs::aead::LessSafeKey;

use super::crypto::{self, FILE_ID_LEN, TAG_LEN};
use super::header::{read_exact_or_short, read_header, Header};
use super::record::{self, Kind, RecordHeader, NO_SESSION};
use crate::{EncryptionContext, Error, KeyProvider, WrappedKey};

/// Bytes read at once at a record's start: its header and a small body.
const FIRST_READ: usize = 4096;

/// Largest frame any reader accepts, whatever a header says (256 MiB).
pub const MAX_FRAME_LEN_LIMIT: u32 = 256 << 20;

/// One frame of the caller's data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// File offset of the frame's record (what [`super::SealedWriter::append`] returned).
    pub position: u64,
    /// The frame's number: 0 for the first frame of the file, then 1, 2, ...
    pub number: u64,
    /// The plaintext.
    pub data: Vec<u8>,
    /// File offset just past this frame's record: pass it to
    /// [`SealedReader::read_at`] to read the next frame.
    pub next_position: u64,
}

/// Where [`SealedReader::read_at_into`] found a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameAt {
    /// File offset of the frame's record.
    pub position: u64,
    /// The frame's number.
    pub number: u64,
    /// File offset just past this frame's record.
    pub next_position: u64,
}

/// How the readable part of a file ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tail {
    /// The file ends with its final frame: it was finished.
    Finished {
        /// File length.
        end: u64,
    },
    /// The file ends at a record boundary without a final frame: it is
    /// still being written, or its writer stopped (or crashed) between
    /// frames.
    Unfinished {
        /// File length.
        end: u64,
    },
    /// The last record is incomplete: a crash tore it while it was being
    /// written. Every frame before `offset` was read and authenticated.
    Torn {
        /// Where the incomplete record starts.
        offset: u64,
        /// How many bytes it has (all lost).
        len: u64,
    },
}

/// What is at a position of the data region.
pub(crate) enum Step<B = Vec<u8>> {
    /// An authenticated record: its header and plaintext (empty but for
    /// data records).
    Record(RecordHeader, B),
    /// Nothing: the file ends here.
    Eof,
    /// An incomplete record of this many bytes ends the file.
    Torn(u64),
}

/// Where [`SealedReader::read_at_into`] puts a frame: a `Vec<u8>`, or a
/// caller's buffer that it reuses across reads (the broker reads a fetch's
/// frames into one `BytesMut` it keeps, instead of a fresh allocation per
/// frame that the allocator may hand back to the kernel after use).
pub trait FrameBuffer {
    /// Makes the buffer exactly `len` bytes long and returns them; their
    /// contents are overwritten, so any initialized bytes will do.
    fn set_len(&mut self, len: usize) -> &mut [u8];
    /// Shortens the buffer to `len` bytes (the plaintext, after the tag).
    fn truncate(&mut self, len: usize);
}

impl FrameBuffer for Vec<u8> {
    fn set_len(&mut self, len: usize) -> &mut [u8] {
        self.clear();
        self.resize(len, 0);
        self
    }
    fn truncate(&mut self, len: usize) {
        Vec::truncate(self, len);
    }
}

/// An open at-rest file, authenticated header and all.
#[derive(Debug)]
pub struct SealedReader {
    path: PathBuf,
    file: File,
    header: Header,
    sessions: Mutex<HashMap<u64, Arc<LessSafeKey>>>,
}

impl SealedReader {
    /// Opens `path` and authenticates its header, unwrapping its data key
    /// with `keys`.
    pub async fn open(path: impl AsRef<Path>, keys: &dyn KeyProvider) -> Result<Self, Error> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let header = read_header(path, &file, keys).await?;
        Ok(Self::from_parts(path, file, header))
    }

    /// Like [`SealedReader::open`], and checks that the file was sealed under
    /// exactly `expected` (so a file cannot be passed off as another's,
    /// e.g. a segment of another partition).
    pub async fn open_expecting(
        path: impl AsRef<Path>,
        keys: &dyn KeyProvider,
        expected: &EncryptionContext,
    ) -> Result<Self, Error> {
        let reader = Self::open(path, keys).await?;
        if reader.context() != expected {
            return Err(Error::ContextMismatch {
                path: reader.path.clone(),
                expected: show_context(expected),
                found: show_context(reader.context()),
            });
        }
        Ok(reader)
    }

    pub(crate) fn from_parts(path: &Path, file: File, header: Header) -> Self {
        Self {
            path: path.to_path_buf(),
            file,
            header,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The encryption context recorded in (and authenticated by) the header.
    pub fn context(&self) -> &EncryptionContext {
        &self.header.body.context
    }

    /// The wrapped data key in the header.
    pub fn wrapped_key(&self) -> &WrappedKey {
        &self.header.body.wrapped
    }

    /// The file's random id.
    pub fn file_id(&self) -> [u8; FILE_ID_LEN] {
        self.header.preamble.file_id
    }

    /// The largest frame (plaintext bytes) the writer allowed.
    pub fn max_frame_len(&self) -> u32 {
        self.header.body.max_frame_len
    }

    /// Offset of the first record: the position to start reading from.
    pub fn data_start(&self) -> u64 {
        self.header.preamble.data_start()
    }

    pub(crate) fn header(&self) -> &Header {
        &self.header
    }

    /// Reads the frame whose record starts at `position` (or the first
    /// frame after it, skipping the record that starts an append session).
    /// `Ok(None)` when the file ends there: at its end, at its final frame,
    /// or at a record still being written (or torn).
    pub fn read_at(&self, position: u64) -> Result<Option<Frame>, Error> {
        let mut data = Vec::new();
        Ok(self.read_at_into(position, &mut data)?.map(|at| Frame {
            position: at.position,
            number: at.number,
            data,
            next_position: at.next_position,
        }))
    }

    /// [`Self::read_at`] with the plaintext put in `out` (exactly the
    /// frame's bytes when `Some` is returned; unspecified otherwise).
    pub fn read_at_into<B: FrameBuffer>(
        &self,
        position: u64,
        out: &mut B,
    ) -> Result<Option<FrameAt>, Error> {
        let mut pos = position;
        loop {
            match self.step_into(pos, &mut *out)? {
                Step::Record(h, ()) => match h.kind {
                    Kind::Session => pos += h.record_len(),
                    Kind::Data => {
                        return Ok(Some(FrameAt {
                            position: pos,
                            number: h.number,
                            next_position: pos + h.record_len(),
                        }))
                    }
                    Kind::End => return Ok(None),
                },
                Step::Eof | Step::Torn(_) => return Ok(None),
            }
        }
    }

    /// Every frame from the start, in order, checking that none is
    /// missing, repeated or out of place. Ends at the end of the file; then
    /// [`Frames::tail`] tells how the file ends.
    pub fn frames(&self) -> Frames<'_> {
        Frames {
            reader: self,
            pos: self.data_start(),
            next_number: 0,
            session: None,
            tail: None,
            require_finished: false,
            failed: false,
        }
    }

    fn corrupt(&self, offset: u64, reason: impl Into<String>) -> Error {
        Error::Corrupt {
            path: self.path.clone(),
            offset,
            reason: reason.into(),
        }
    }

    /// Reads and authenticates the record at `pos`.
    pub(crate) fn step(&self, pos: u64) -> Result<Step, Error> {
        let mut body = Vec::new();
        Ok(match self.step_into(pos, &mut body)? {
            Step::Record(h, ()) => Step::Record(h, body),
            Step::Eof => Step::Eof,
            Step::Torn(len) => Step::Torn(len),
        })
    }

    /// [`Self::step`] with the plaintext put in `body`.
    fn step_into<B: FrameBuffer>(&self, pos: u64, body: &mut B) -> Result<Step<()>, Error> {
        if pos < self.data_start() {
            return Err(self.corrupt(pos, "no record starts inside the file header"));
        }
        // One read brings the header and, for small frames, the body.
        let mut head = [0u8; FIRST_READ];
        let got = self.read_up_to(&mut head, pos)?;
        if got == 0 {
            return Ok(Step::Eof);
        }
        let h = match record::parse(&head[..got]) {
            Ok(h) => h,
            Err(record::ParseError::Short(_)) => return Ok(Step::Torn(got as u64)),
            Err(record::ParseError::Bad(at, why)) => {
                return match self.zero_tail(pos)? {
                    Some(len) => Ok(Step::Torn(len)),
                    None => Err(self.corrupt(pos + at as u64, why)),
                }
            }
        };
        let max = u64::from(self.max_frame_len().min(MAX_FRAME_LEN_LIMIT)) + TAG_LEN as u64;
        if u64::from(h.sealed_len) > max {
            return Err(self.corrupt(
                pos,
                format!(
                    "a frame of {} bytes exceeds the file's limit of {max}",
                    h.sealed_len
                ),
            ));
        }
        if h.kind != Kind::Session && h.number >= 1 << 32 {
            return Err(self.corrupt(pos + 5, "frame number beyond 2^32"));
        }
        let (hlen, sealed_len) = (h.len(), h.sealed_len as usize);
        let sealed = body.set_len(sealed_len);
        let first = &head[hlen..got.min(hlen + sealed_len)];
        let have = first.len();
        sealed[..have].copy_from_slice(first);
        if have < sealed_len {
            let rest_at = pos + (hlen + have) as u64;
            match read_exact_or_short(&self.path, &self.file, &mut sealed[have..], rest_at) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e),
                Err(short) => return Ok(Step::Torn((hlen + have) as u64 + short)),
            }
        }
        let aad = crypto::record_aad(&self.header.preamble.file_id, pos, &h.signed_bytes());
        let opened = match h.kind {
            Kind::Session => {
                let salt = h.salt.expect("session records carry a salt");
                let key = crypto::session_key(
                    &self.header.data_key,
                    &self.header.preamble.file_id,
                    &salt,
                );
                let ok = crypto::open(&key, crypto::session_nonce(), &aad, sealed);
                if ok.is_some() {
                    self.sessions
                        .lock()
                        .expect("session cache lock")
                        .insert(pos, Arc::new(key));
                }
                ok
            }
            Kind::Data | Kind::End => {
                let key = self.session_key(h.link, pos)?;
                crypto::open(&key, crypto::numbered_nonce(h.number), &aad, sealed)
            }
        };
        let Some(len) = opened else {
            return Err(self.corrupt(
                pos,
                format!(
                    "record {} failed authentication (tampered, damaged or moved)",
                    h.number
                ),
            ));
        };
        body.truncate(len);
        Ok(Step::Record(h, ()))
    }

    /// The key of the session whose record is at `session_pos`, as cited
    /// by the record at `citing`.
    fn session_key(&self, session_pos: u64, citing: u64) -> Result<Arc<LessSafeKey>, Error> {
        if let Some(key) = self
            .sessions
            .lock()
            .expect("session cache lock")
            .get(&session_pos)
        {
            return Ok(key.clone());
        }
        if session_pos >= citing || session_pos < self.data_start() {
            return Err(self.corrupt(
                citing + 13,
                "the record names a session that does not precede it",
            ));
        }
        match self.step(session_pos) {
            Ok(Step::Record(h, _)) if h.kind == Kind::Session => {
                Ok(self.sessions.lock().expect("session cache lock")[&session_pos].clone())
            }
            Ok(_) => Err(self.corrupt(
                citing + 13,
                "the record names a session record that is not there",
            )),
            Err(e) => Err(e),
        }
    }

    /// If every byte from `pos` to the end of the file is zero (a crash on
    /// a file system that extended the file before writing it), the tail's
    /// length; otherwise `None`.
    fn zero_tail(&self, pos: u64) -> Result<Option<u64>, Error> {
        let end = self
            .file
            .metadata()
            .map_err(|source| Error::Io {
                path: self.path.clone(),
                source,
            })?
            .len();
        let len = end.saturating_sub(pos);
        if len > u64::from(self.max_frame_len()) + 1024 {
            return Ok(None);
        }
        let mut buf = vec![0u8; len as usize];
        let got = self.read_up_to(&mut buf, pos)?;
        Ok(buf[..got].iter().all(|&b| b == 0).then_some(got as u64))
    }

    fn read_up_to(&self, buf: &mut [u8], pos: u64) -> Result<usize, Error> {
        match read_exact_or_short(&self.path, &self.file, buf, pos) {
            Ok(Ok(())) => Ok(buf.len()),
            Ok(Err(e)) => Err(e),
            Err(short) => Ok(short as usize),
        }
    }
}

/// Every frame of a file in order; see [`SealedReader::frames`].
#[derive(Debug)]
pub struct Frames<'a> {
    reader: &'a SealedReader,
    pos: u64,
    next_number: u64,
    /// Position of the current session record.
    session: Option<u64>,
    tail: Option<Tail>,
    require_finished: bool,
    failed: bool,
}

impl Frames<'_> {
    /// Makes a file that does not end with its final frame an error
    /// ([`Error::Truncated`]) instead of a [`Tail`]: use it for files known
    /// to be finished (e.g. a rolled segment), so that a truncation at a
    /// frame boundary is caught.
    pub fn require_finished(mut self) -> Self {
        self.require_finished = true;
        self
    }

    /// How the file ends, once the iterator has returned `None`.
    pub fn tail(&self) -> Option<Tail> {
        self.tail
    }

    /// Frames read so far.
    pub fn frames_read(&self) -> u64 {
        self.next_number
    }

    /// Position of the last session record read, if any.
    pub(crate) fn last_session(&self) -> Option<u64> {
        self.session
    }

    fn next_inner(&mut self) -> Result<Option<Frame>, Error> {
        loop {
            let pos = self.pos;
            let h = match self.reader.step(pos)? {
                Step::Eof => return self.end(Tail::Unfinished { end: pos }),
                Step::Torn(len) => return self.end(Tail::Torn { offset: pos, len }),
                Step::Record(h, data) => {
                    self.check_order(pos, &h)?;
                    self.pos += h.record_len();
                    match h.kind {
                        Kind::Session => {
                            self.session = Some(pos);
                            continue;
                        }
                        Kind::Data => {
                            self.next_number += 1;
                            let frame = Frame {
                                position: pos,
                                number: h.number,
                                data,
                                next_position: self.pos,
                            };
                            return Ok(Some(frame));
                        }
                        Kind::End => h,
                    }
                }
            };
            // The final frame: nothing may follow it.
            let mut probe = [0u8; 1];
            if self.reader.read_up_to(&mut probe, self.pos)? != 0 {
                return Err(self
                    .reader
                    .corrupt(self.pos, "bytes follow the file's final frame"));
            }
            debug_assert_eq!(h.kind, Kind::End);
            self.tail = Some(Tail::Finished { end: self.pos });
            return Ok(None);
        }
    }

    fn end(&mut self, tail: Tail) -> Result<Option<Frame>, Error> {
        if self.require_finished {
            let offset = match tail {
                Tail::Torn { offset, .. }
                | Tail::Unfinished { end: offset }
                | Tail::Finished { end: offset } => offset,
            };
            return Err(Error::Truncated {
                path: self.reader.path.clone(),
                offset,
            });
        }
        self.tail = Some(tail);
        Ok(None)
    }

    /// Checks that the record at `pos` is the one expected next.
    fn check_order(&self, pos: u64, h: &RecordHeader) -> Result<(), Error> {
        let wrong = |why: String| Err(self.reader.corrupt(pos, why));
        let link = self.session.unwrap_or(NO_SESSION);
        if self.session.is_none() && h.kind != Kind::Session {
            return wrong("the first record does not start a session".into());
        }
        if h.link != link {
            return wrong(format!(
                "record {} belongs to another session (records were dropped or reordered)",
                h.number
            ));
        }
        if h.number != self.next_number {
            return wrong(format!(
                "expected frame {} here, found frame {} (frames were dropped, repeated or reordered)",
                self.next_number, h.number
            ));
        }
        Ok(())
    }
}

impl Iterator for Frames<'_> {
    type Item = Result<Frame, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.tail.is_some() {
            return None;
        }
        match self.next_inner() {
            Ok(frame) => frame.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// `k=v, k=v` for error messages.
pub(crate) fn show_context(ctx: &EncryptionContext) -> String {
    if ctx.is_empty() {
        return "(empty)".into();
    }
    ctx.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}
