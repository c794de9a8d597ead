//! Body frames: nonce and AAD construction, sealing and opening.
//!
//! ```text
//! regular frame: sequence number (4) | IV (12) | ciphertext (frame length) | tag (16)
//! final frame:   0xFFFFFFFF (4) | sequence number (4) | IV (12) | content length (4) | ciphertext | tag (16)
//! IV  = 8 zero bytes ‖ sequence number (big-endian)
//! AAD = message id ‖ "AWSKMSEncryptionClient Frame" or "... Final Frame" ‖ sequence number (4) ‖ content length (8)
//! ```
//! Sequence numbers start at 1 and go up by one; the final frame holds
//! 0 to frame-length bytes (the SDKs write an empty final frame when the
//! plaintext fills its last frame exactly).

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce};

use super::suite::{IV_LEN, MESSAGE_ID_LEN, TAG_LEN};
use crate::Error;

/// Marks a final frame where a sequence number would be.
pub(crate) const FINAL_FRAME_MARKER: u32 = 0xFFFF_FFFF;
/// The largest sequence number a frame may have.
pub(crate) const MAX_SEQUENCE: u32 = 0xFFFF_FFFE;
const FRAME_AAD: &[u8] = b"AWSKMSEncryptionClient Frame";
const FINAL_FRAME_AAD: &[u8] = b"AWSKMSEncryptionClient Final Frame";

/// The IV the SDKs use for a frame: its sequence number, zero-padded.
pub(crate) fn frame_iv(sequence: u32) -> [u8; IV_LEN] {
    let mut iv = [0u8; IV_LEN];
    iv[IV_LEN - 4..].copy_from_slice(&sequence.to_be_bytes());
    iv
}

/// Longest frame AAD: message id, the final-frame label, sequence, length.
const MAX_AAD_LEN: usize = MESSAGE_ID_LEN + FINAL_FRAME_AAD.len() + 4 + 8;

/// The frame's AAD, built on the stack (this runs once per frame).
fn frame_aad(
    message_id: &[u8; MESSAGE_ID_LEN],
    final_frame: bool,
    sequence: u32,
    len: usize,
) -> ([u8; MAX_AAD_LEN], usize) {
    let label = if final_frame {
        FINAL_FRAME_AAD
    } else {
        FRAME_AAD
    };
    let mut aad = [0u8; MAX_AAD_LEN];
    let mut at = 0;
    for part in [
        &message_id[..],
        label,
        &sequence.to_be_bytes(),
        &(len as u64).to_be_bytes(),
    ] {
        aad[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    (aad, at)
}

/// Where a message is being written: `out[..at]` is written, and bytes of
/// `out` past `at` are left from an earlier use of the buffer and get
/// written over, so a buffer kept across messages or frames is not zeroed
/// again (safe code must initialize what aws-lc writes into, and zeroing
/// costs about a fifth of sealing).
pub(crate) struct Output<'a> {
    buf: &'a mut Vec<u8>,
    at: usize,
}

impl<'a> Output<'a> {
    /// Writes from the start of `buf`, over what it holds.
    pub(crate) fn over(buf: &'a mut Vec<u8>) -> Self {
        Self { buf, at: 0 }
    }

    /// Bytes written so far.
    pub(crate) fn len(&self) -> usize {
        self.at
    }

    pub(crate) fn written(&self) -> &[u8] {
        &self.buf[..self.at]
    }

    pub(crate) fn put(&mut self, bytes: &[u8]) {
        self.room(bytes.len()).copy_from_slice(bytes);
    }

    /// The next `n` bytes to write, initialized (by zeros only where the
    /// buffer grows).
    pub(crate) fn room(&mut self, n: usize) -> &mut [u8] {
        let end = self.at + n;
        if self.buf.len() < end {
            self.buf.resize(end, 0);
        }
        let start = std::mem::replace(&mut self.at, end);
        &mut self.buf[start..end]
    }

    /// Cuts the buffer to what was written, dropping bytes of earlier uses.
    pub(crate) fn finish(self) {
        self.buf.truncate(self.at);
    }
}

/// Writes a sealed frame to `out`, encrypting straight from `plaintext`
/// into it (no intermediate copy).
pub(crate) fn seal_frame(
    key: &LessSafeKey,
    message_id: &[u8; MESSAGE_ID_LEN],
    sequence: u32,
    final_frame: bool,
    plaintext: &[u8],
    out: &mut Output<'_>,
) {
    let iv = frame_iv(sequence);
    let (aad, aad_len) = frame_aad(message_id, final_frame, sequence, plaintext.len());
    if final_frame {
        out.put(&FINAL_FRAME_MARKER.to_be_bytes());
    }
    out.put(&sequence.to_be_bytes());
    out.put(&iv);
    if final_frame {
        let len = u32::try_from(plaintext.len()).expect("a frame is at most a u32 frame length");
        out.put(&len.to_be_bytes());
    }
    key.seal_in_place_scatter(
        Nonce::assume_unique_for_key(iv),
        Aad::from(&aad[..aad_len]),
        &mut [],
        plaintext,
        out.room(plaintext.len() + TAG_LEN),
    )
    .expect("AES-GCM sealing cannot fail on a frame-sized input");
}

/// Decrypts one frame's ciphertext into `out` (of the same length).
/// On failure `out` is zeroed, so no unauthenticated plaintext is left
/// behind.
#[allow(clippy::too_many_arguments)]
pub(crate) fn open_frame(
    key: &LessSafeKey,
    message_id: &[u8; MESSAGE_ID_LEN],
    sequence: u32,
    final_frame: bool,
    iv: [u8; IV_LEN],
    ciphertext: &[u8],
    tag: &[u8],
    out: &mut [u8],
) -> Result<(), Error> {
    let (aad, aad_len) = frame_aad(message_id, final_frame, sequence, ciphertext.len());
    key.open_separate_gather(
        Nonce::assume_unique_for_key(iv),
        Aad::from(&aad[..aad_len]),
        ciphertext,
        tag,
        out,
    )
    .map_err(|_| {
        out.fill(0);
        Error::FrameAuthentication { sequence }
    })
}
