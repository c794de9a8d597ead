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

/// Appends a sealed frame to `out`, encrypting straight from `plaintext`
/// into `out` (no intermediate copy).
pub(crate) fn seal_frame(
    key: &LessSafeKey,
    message_id: &[u8; MESSAGE_ID_LEN],
    sequence: u32,
    final_frame: bool,
    plaintext: &[u8],
    out: &mut Vec<u8>,
) {
    let iv = frame_iv(sequence);
    let (aad, aad_len) = frame_aad(message_id, final_frame, sequence, plaintext.len());
    out.reserve(plaintext.len() + 40);
    if final_frame {
        out.extend_from_slice(&FINAL_FRAME_MARKER.to_be_bytes());
    }
    out.extend_from_slice(&sequence.to_be_bytes());
    out.extend_from_slice(&iv);
    if final_frame {
        let len = u32::try_from(plaintext.len()).expect("a frame is at most a u32 frame length");
        out.extend_from_slice(&len.to_be_bytes());
    }
    let start = out.len();
    out.resize(start + plaintext.len() + TAG_LEN, 0);
    key.seal_in_place_scatter(
        Nonce::assume_unique_for_key(iv),
        Aad::from(&aad[..aad_len]),
        &mut [],
        plaintext,
        &mut out[start..],
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
