//! Writing an at-rest file: create, append frames, sync, finish; reopen
//! for append after a restart or a crash.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use aws_lc_rs::aead::LessSafeKey;

use super::crypto::{self, FILE_ID_LEN, SESSION_SALT_LEN, TAG_LEN};
use super::header::{self, encode_slot, Preamble, SlotBody};
use super::reader::{SealedReader, Tail, MAX_FRAME_LEN_LIMIT};
use super::record::{Kind, RecordHeader, NO_SESSION};
use crate::{DataKey, EncryptionContext, Error, KeyProvider};

/// Default largest frame: 4 MiB of plaintext.
pub const DEFAULT_MAX_FRAME_LEN: u32 = 4 << 20;

/// Frames one file may hold. Frame numbers are nonces and stay below
/// 2^32; the last number is kept for the final frame.
pub const MAX_FRAMES: u64 = u32::MAX as u64;

/// Options for a new file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriterOptions {
    /// Largest plaintext one frame may hold, recorded in the header so
    /// that readers refuse larger frames before allocating for them.
    /// At most [`MAX_FRAME_LEN_LIMIT`].
    pub max_frame_len: u32,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
        }
    }
}

/// What [`SealedWriter::open_append`] found and repaired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Recovery {
    /// Complete, authenticated frames kept.
    pub frames: u64,
    /// Where the kept frames end (appending continues from here).
    pub end: u64,
    /// The torn tail that was cut off: (offset, length), if any.
    pub torn: Option<(u64, u64)>,
}

/// Appends frames to an at-rest file.
#[derive(Debug)]
pub struct SealedWriter {
    path: PathBuf,
    file: File,
    file_id: [u8; FILE_ID_LEN],
    data_key: DataKey,
    key: LessSafeKey,
    session_pos: u64,
    next_number: u64,
    position: u64,
    max_frame_len: u32,
    buf: Vec<u8>,
    broken: bool,
}

impl SealedWriter {
    /// Creates `path` (it must not exist) under a new data key from `keys`
    /// (a [`crate::DataKeyCache`] works too), with default options.
    pub async fn create(
        path: impl AsRef<Path>,
        keys: &dyn KeyProvider,
        context: &EncryptionContext,
    ) -> Result<Self, Error> {
        Self::create_with(path, keys, context, WriterOptions::default()).await
    }

    /// [`SealedWriter::create`] with options.
    ///
    /// The header is written to a temporary file, synced, then linked to
    /// `path` (which fails if `path` exists), so `path` never holds a
    /// partial header.
    pub async fn create_with(
        path: impl AsRef<Path>,
        keys: &dyn KeyProvider,
        context: &EncryptionContext,
        options: WriterOptions,
    ) -> Result<Self, Error> {
        let path = path.as_ref();
        if options.max_frame_len == 0 || options.max_frame_len > MAX_FRAME_LEN_LIMIT {
            return Err(Error::FrameTooLarge {
                len: options.max_frame_len.into(),
                max: MAX_FRAME_LEN_LIMIT.into(),
            });
        }
        let (data_key, wrapped) = keys.generate(context).await?;
        let body = SlotBody {
            max_frame_len: options.max_frame_len,
            context: context.clone(),
            wrapped,
        };
        let mut file_id = [0u8; FILE_ID_LEN];
        aws_lc_rs::rand::fill(&mut file_id).expect("the system random generator failed");
        let preamble = Preamble {
            slot_len: header::slot_len_for(header::body_len(&body)?),
            file_id,
        };
        let mac_key = crypto::header_mac_key(&data_key, &file_id);
        let mut head = preamble.encode().to_vec();
        head.extend(encode_slot(path, &preamble, 1, &body, &mac_key)?);
        head.resize(preamble.data_start() as usize, 0);

        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let tmp = temp_path(path);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io)?;
        let linked = file
            .write_all_at(&head, 0)
            .and_then(|()| file.sync_all())
            .and_then(|()| fs::hard_link(&tmp, path));
        let _ = fs::remove_file(&tmp);
        linked.map_err(io)?;
        sync_dir(path)?;

        let mut writer = Self::new(
            path,
            file,
            file_id,
            data_key,
            preamble.data_start(),
            0,
            NO_SESSION,
            options.max_frame_len,
        );
        writer.start_session()?;
        Ok(writer)
    }

    /// Reopens a file to append to it after a restart or a crash: reads
    /// and authenticates every frame, cuts off a torn tail, and starts a
    /// new append session (a fresh random salt, hence a fresh key), so no
    /// (key, nonce) pair is ever used twice. Refuses a finished file.
    pub async fn open_append(
        path: impl AsRef<Path>,
        keys: &dyn KeyProvider,
    ) -> Result<(Self, Recovery), Error> {
        let path = path.as_ref();
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(io)?;
        let header = header::read_header(path, &file, keys).await?;
        let reader = SealedReader::from_parts(path, file.try_clone().map_err(io)?, header);
        let mut frames = reader.frames();
        for frame in frames.by_ref() {
            frame?;
        }
        let (frames_kept, session) = (frames.frames_read(), frames.last_session());
        let (end, torn) = match frames.tail().expect("the iterator ended") {
            Tail::Finished { .. } => {
                return Err(Error::FileFinished {
                    path: path.to_path_buf(),
                })
            }
            Tail::Unfinished { end } => (end, None),
            Tail::Torn { offset, len } => {
                file.set_len(offset)
                    .and_then(|()| file.sync_all())
                    .map_err(io)?;
                (offset, Some((offset, len)))
            }
        };
        let h = reader.header();
        let max = h.body.max_frame_len;
        let (file_id, data_key) = (h.preamble.file_id, h.data_key.clone());
        let mut writer = Self::new(
            path,
            file,
            file_id,
            data_key,
            end,
            frames_kept,
            session.unwrap_or(NO_SESSION),
            max,
        );
        writer.start_session()?;
        Ok((
            writer,
            Recovery {
                frames: frames_kept,
                end,
                torn,
            },
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn new(
        path: &Path,
        file: File,
        file_id: [u8; FILE_ID_LEN],
        data_key: DataKey,
        position: u64,
        next_number: u64,
        session_pos: u64,
        max_frame_len: u32,
    ) -> Self {
        // A placeholder key, replaced by start_session before any use.
        let key = crypto::session_key(&data_key, &file_id, &[0; SESSION_SALT_LEN]);
        Self {
            path: path.to_path_buf(),
            file,
            file_id,
            data_key,
            key,
            session_pos,
            next_number,
            position,
            max_frame_len,
            buf: Vec::new(),
            broken: false,
        }
    }

    /// Writes a session record: a fresh random salt, linked to the previous
    /// session, sealed under the key it derives.
    fn start_session(&mut self) -> Result<(), Error> {
        let mut salt = [0u8; SESSION_SALT_LEN];
        aws_lc_rs::rand::fill(&mut salt).expect("the system random generator failed");
        self.key = crypto::session_key(&self.data_key, &self.file_id, &salt);
        let header = RecordHeader {
            sealed_len: TAG_LEN as u32,
            kind: Kind::Session,
            number: self.next_number,
            link: self.session_pos,
            salt: Some(salt),
        };
        let pos = self.position;
        self.write_record(&header, &[], crypto::session_nonce())?;
        self.session_pos = pos;
        Ok(())
    }

    /// Seals `plaintext` as one frame and writes it; returns the frame's
    /// position (for [`SealedReader::read_at`]). Not durable until
    /// [`SealedWriter::sync`].
    pub fn append(&mut self, plaintext: &[u8]) -> Result<u64, Error> {
        if plaintext.len() as u64 > u64::from(self.max_frame_len) {
            return Err(Error::FrameTooLarge {
                len: plaintext.len() as u64,
                max: self.max_frame_len.into(),
            });
        }
        if self.next_number >= MAX_FRAMES {
            return Err(Error::TooManyFrames {
                path: self.path.clone(),
            });
        }
        let header = RecordHeader {
            sealed_len: (plaintext.len() + TAG_LEN) as u32,
            kind: Kind::Data,
            number: self.next_number,
            link: self.session_pos,
            salt: None,
        };
        let pos = self.position;
        self.write_record(&header, plaintext, crypto::numbered_nonce(self.next_number))?;
        self.next_number += 1;
        Ok(pos)
    }

    /// Makes every appended frame durable (fsync).
    pub fn sync(&mut self) -> Result<(), Error> {
        self.file.sync_data().map_err(|source| Error::Io {
            path: self.path.clone(),
            source,
        })
    }

    /// Writes the final frame and syncs: readers then know the file is
    /// complete, and dropping or cutting any frame becomes detectable.
    /// Returns the file's length.
    pub fn finish(mut self) -> Result<u64, Error> {
        let header = RecordHeader {
            sealed_len: TAG_LEN as u32,
            kind: Kind::End,
            number: self.next_number,
            link: self.session_pos,
            salt: None,
        };
        self.write_record(&header, &[], crypto::numbered_nonce(self.next_number))?;
        self.sync()?;
        Ok(self.position)
    }

    /// Where the next frame will be written (the file's length).
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Frames in the file so far (the next frame's number).
    pub fn frames(&self) -> u64 {
        self.next_number
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write_record(
        &mut self,
        header: &RecordHeader,
        plaintext: &[u8],
        nonce: aws_lc_rs::aead::Nonce,
    ) -> Result<(), Error> {
        if self.broken {
            return Err(Error::Io {
                path: self.path.clone(),
                source: std::io::Error::other(
                    "an earlier write failed and could not be undone; reopen the file",
                ),
            });
        }
        let pos = self.position;
        let aad = crypto::record_aad(&self.file_id, pos, &header.signed_bytes());
        // Seal straight from `plaintext` into the record buffer: no copy
        // of the plaintext first. The buffer only grows (zero-filled once).
        let head = header.encode();
        let len = head.len() + plaintext.len() + TAG_LEN;
        if self.buf.len() < len {
            self.buf.resize(len, 0);
        }
        let record = &mut self.buf[..len];
        let (head_out, rest) = record.split_at_mut(head.len());
        head_out.copy_from_slice(&head);
        let (body, tag) = rest.split_at_mut(plaintext.len());
        self.key
            .seal_out_of_place_scatter(
                nonce,
                aws_lc_rs::aead::Aad::from(&aad[..]),
                plaintext,
                body,
                &[],
                tag,
            )
            .expect("AES-GCM sealing within the frame limit cannot fail");
        if let Err(source) = self.file.write_all_at(&self.buf[..len], pos) {
            // Undo a partial write so the next record starts at a boundary.
            if self.file.set_len(pos).is_err() {
                self.broken = true;
            }
            return Err(Error::Io {
                path: self.path.clone(),
                source,
            });
        }
        self.position += len as u64;
        Ok(())
    }
}

fn temp_path(path: &Path) -> PathBuf {
    let mut rnd = [0u8; 8];
    aws_lc_rs::rand::fill(&mut rnd).expect("the system random generator failed");
    let suffix: String = rnd.iter().map(|b| format!("{b:02x}")).collect();
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{suffix}.creating"));
    path.with_file_name(name)
}

fn sync_dir(path: &Path) -> Result<(), Error> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })
}
