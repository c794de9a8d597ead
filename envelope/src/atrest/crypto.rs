//! Key derivation, nonces, AAD and the record-header checksum of the
//! at-rest format. Everything here is a pure function of its inputs.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use aws_lc_rs::{hkdf, hmac};
use zeroize::Zeroizing;

use crate::DataKey;

/// Length of the random file id (the HKDF salt).
pub(crate) const FILE_ID_LEN: usize = 16;
/// Length of an append session's random salt.
pub(crate) const SESSION_SALT_LEN: usize = 32;
/// AES-GCM tag length.
pub(crate) const TAG_LEN: usize = 16;
/// Header MAC length (HMAC-SHA256).
pub(crate) const MAC_LEN: usize = 32;

const FRAME_KEY_INFO: &[u8] = b"wharf at-rest v1 frame key";
const HEADER_MAC_INFO: &[u8] = b"wharf at-rest v1 header mac";

fn prk(data_key: &DataKey, file_id: &[u8; FILE_ID_LEN]) -> hkdf::Prk {
    hkdf::Salt::new(hkdf::HKDF_SHA512, file_id).extract(data_key.as_bytes())
}

/// The AES-256-GCM key of one append session:
/// HKDF-SHA512(ikm = data key, salt = file id, info = label ‖ session salt).
pub(crate) fn session_key_bytes(
    data_key: &DataKey,
    file_id: &[u8; FILE_ID_LEN],
    salt: &[u8; SESSION_SALT_LEN],
) -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    prk(data_key, file_id)
        .expand(&[FRAME_KEY_INFO, salt], &AES_256_GCM)
        .and_then(|okm| okm.fill(out.as_mut()))
        .expect("HKDF-SHA512 can expand 32 bytes");
    out
}

/// [`session_key_bytes`] as a sealing/opening key.
pub(crate) fn session_key(
    data_key: &DataKey,
    file_id: &[u8; FILE_ID_LEN],
    salt: &[u8; SESSION_SALT_LEN],
) -> LessSafeKey {
    let bytes = session_key_bytes(data_key, file_id, salt);
    LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, bytes.as_ref()).expect("32 bytes make an AES-256 key"),
    )
}

/// The header MAC key: HKDF-SHA512(data key, salt = file id, info = label).
pub(crate) fn header_mac_key(data_key: &DataKey, file_id: &[u8; FILE_ID_LEN]) -> hmac::Key {
    let mut bytes = Zeroizing::new([0u8; 32]);
    prk(data_key, file_id)
        .expand(&[HEADER_MAC_INFO], hmac::HMAC_SHA256)
        .and_then(|okm| okm.fill(bytes.as_mut()))
        .expect("HKDF-SHA512 can expand 32 bytes");
    hmac::Key::new(hmac::HMAC_SHA256, bytes.as_ref())
}

/// Nonce of a data or end record: 4 zero bytes ‖ record number (u64 BE).
/// Record numbers stay below 2^32 and grow within a session, so they never
/// repeat under one session key.
pub(crate) fn numbered_nonce(number: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&number.to_be_bytes());
    Nonce::assume_unique_for_key(n)
}

/// Nonce of a session record: twelve 0xFF bytes, which no numbered record
/// uses (their first four bytes are zero). One session record per key.
pub(crate) fn session_nonce() -> Nonce {
    Nonce::assume_unique_for_key([0xFF; 12])
}

/// The raw bytes of a nonce, for tests that check nonces never repeat.
#[cfg(test)]
pub(crate) fn nonce_bytes(n: &Nonce) -> [u8; 12] {
    *n.as_ref()
}

/// AAD of every record: file id ‖ record position (u64 BE) ‖ the record
/// header bytes (without its checksum).
pub(crate) fn record_aad(file_id: &[u8; FILE_ID_LEN], position: u64, header: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(FILE_ID_LEN + 8 + header.len());
    aad.extend_from_slice(file_id);
    aad.extend_from_slice(&position.to_be_bytes());
    aad.extend_from_slice(header);
    aad
}

/// Opens `buf` (ciphertext ‖ tag) in place; returns the plaintext length.
pub(crate) fn open(key: &LessSafeKey, nonce: Nonce, aad: &[u8], buf: &mut [u8]) -> Option<usize> {
    key.open_in_place(nonce, Aad::from(aad), buf)
        .ok()
        .map(|p| p.len())
}

/// CRC-32C (Castagnoli) of a record header: tells a torn tail (header
/// intact, body cut short) from a damaged length field.
pub(crate) fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn session_keys_differ_by_salt_and_file_id() {
        let k = DataKey::from_bytes([1; 32]);
        let a = session_key_bytes(&k, &[0; 16], &[0; 32]);
        let b = session_key_bytes(&k, &[0; 16], &[1; 32]);
        let c = session_key_bytes(&k, &[1; 16], &[0; 32]);
        assert_ne!(*a, *b);
        assert_ne!(*a, *c);
        assert_ne!(*b, *c);
    }
}
