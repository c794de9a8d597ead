//! The at-rest file format: append-only files of sealed frames (broker
//! segments, the shipper's disk buffer, spools). The full byte layout and
//! its rules are in `docs/at-rest-format.md`; in short:
//!
//! - A header: magic `WHARFENC`, version, a random 16-byte file id, and two
//!   key slots, each holding the encryption context and the data key
//!   wrapped by a master key ([`crate::KeyProvider`]), authenticated by an
//!   HMAC keyed from the data key. Rotation rewrites the unused slot, so a
//!   header is always readable, and never moves the frames.
//! - Records after the header. Each append session (the file's creation,
//!   and every [`SealedWriter::open_append`]) starts with a session record
//!   carrying a fresh random salt; its frames are sealed with AES-256-GCM
//!   under `HKDF-SHA512(data key, salt = file id, info = label ‖ session
//!   salt)` with the frame number as nonce, so a nonce is never reused under
//!   a key. Each record's AAD binds the file id, its position, its number,
//!   its session and its kind (data, or the final frame).
//! - A reader ([`SealedReader`]) returns every complete frame of a file a
//!   crash tore and reports the torn tail ([`Tail::Torn`]); a flipped bit,
//!   a moved, dropped or repeated frame, or a finished file cut short
//!   ([`Frames::require_finished`]) is an [`crate::Error`] naming the file
//!   and offset.
//! - [`rotate_file`] re-wraps the data key under another master key.

mod crypto;
mod header;
mod reader;
mod record;
mod rotate;
mod writer;

#[cfg(test)]
mod tests;

#[cfg(feature = "fuzzing")]
pub mod fuzzing;

pub use header::{MAGIC, VERSION};
pub use reader::{Frame, FrameAt, FrameBuffer, Frames, SealedReader, Tail, MAX_FRAME_LEN_LIMIT};
pub use rotate::{rotate_file, Rotation};
pub use writer::{Recovery, SealedWriter, WriterOptions, DEFAULT_MAX_FRAME_LEN, MAX_FRAMES};

/// Whether `bytes` (a file's first bytes) start like an at-rest file.
pub fn is_sealed_file(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}
