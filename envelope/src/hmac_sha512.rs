//! HMAC-SHA512 (RFC 2104) on SHA-512's compression function, for the
//! per-message key derivation of the SDK format.
//!
//! Every message derives its keys with HKDF-SHA512: ten SHA-512 block
//! compressions, which is most of what a message costs before its first
//! byte is encrypted. Through aws-lc-rs's `hmac` each compression comes
//! with about as much again of setup per call (keys, contexts, finishing);
//! here the pad states are computed once per key and every hash ends with
//! exactly the blocks it needs. Checked against aws-lc-rs's HMAC below.

use sha2::block_api::compress512;
use zeroize::Zeroize;

const BLOCK: usize = 128;

/// SHA-512's initial hash value (FIPS 180-4, 5.3.5).
const IV: [u64; 8] = [
    0x6a09e667f3bcc908,
    0xbb67ae8584caa73b,
    0x3c6ef372fe94f82b,
    0xa54ff53a5f1d36f1,
    0x510e527fade682d1,
    0x9b05688c2b3e6c1f,
    0x1f83d9abfb41bd6b,
    0x5be0cd19137e2179,
];

/// An HMAC-SHA512 key: the hash states after the inner and outer pads.
pub(crate) struct HmacSha512 {
    inner: [u64; 8],
    outer: [u64; 8],
}

impl HmacSha512 {
    pub(crate) fn new(key: &[u8]) -> HmacSha512 {
        let mut block = [0u8; BLOCK];
        if key.len() > BLOCK {
            let mut digest = finish(IV, 0, key);
            block[..64].copy_from_slice(&digest);
            digest.zeroize();
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        let pad = |byte: u8, block: &[u8; BLOCK]| {
            let mut padded = block.map(|b| b ^ byte);
            let mut state = IV;
            compress512(&mut state, &[padded]);
            padded.zeroize();
            state
        };
        let key = HmacSha512 {
            inner: pad(0x36, &block),
            outer: pad(0x5c, &block),
        };
        block.zeroize();
        key
    }

    /// HMAC of the concatenation of `parts` (at most one block in all, as
    /// the key derivation needs).
    pub(crate) fn sign(&self, parts: &[&[u8]]) -> [u8; 64] {
        let mut message = [0u8; BLOCK];
        let mut len = 0;
        for part in parts {
            message[len..len + part.len()].copy_from_slice(part);
            len += part.len();
        }
        let mut inner = finish(self.inner, BLOCK, &message[..len]);
        let tag = finish(self.outer, BLOCK, &inner);
        inner.zeroize();
        message[..len].zeroize();
        tag
    }
}

impl Drop for HmacSha512 {
    fn drop(&mut self) {
        self.inner.zeroize();
        self.outer.zeroize();
    }
}

/// Hashes `message` on from `state`, after `done` bytes already
/// compressed into it, and pads and finishes.
fn finish(mut state: [u64; 8], done: usize, message: &[u8]) -> [u8; 64] {
    let mut blocks = message.chunks_exact(BLOCK);
    for b in &mut blocks {
        compress512(&mut state, &[b.try_into().expect("a whole block")]);
    }
    let rest = blocks.remainder();
    let mut tail = [0u8; 2 * BLOCK];
    tail[..rest.len()].copy_from_slice(rest);
    tail[rest.len()] = 0x80;
    let end = if rest.len() + 1 + 16 <= BLOCK {
        BLOCK
    } else {
        2 * BLOCK
    };
    let bits = ((done + message.len()) as u128) * 8;
    tail[end - 16..end].copy_from_slice(&bits.to_be_bytes());
    for b in tail[..end].chunks_exact(BLOCK) {
        compress512(&mut state, &[b.try_into().expect("a whole block")]);
    }
    // Only what was written can hold key material; zeroize (volatile,
    // byte by byte) is a noticeable part of the derivation otherwise.
    tail[..end].zeroize();
    let mut out = [0u8; 64];
    for (o, w) in out.chunks_exact_mut(8).zip(state) {
        o.copy_from_slice(&w.to_be_bytes());
    }
    state.zeroize();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::hmac;

    #[test]
    fn matches_aws_lc_for_every_key_and_message_length() {
        for key_len in [0, 1, 32, 64, 111, 112, 127, 128, 129, 200, 300] {
            let key: Vec<u8> = (0..key_len).map(|i| (i * 7 + 3) as u8).collect();
            let mine = HmacSha512::new(&key);
            let theirs = hmac::Key::new(hmac::HMAC_SHA512, &key);
            for msg_len in 0..=BLOCK {
                let msg: Vec<u8> = (0..msg_len).map(|i| (i * 13 + key_len) as u8).collect();
                let (a, b) = msg.split_at(msg_len / 3);
                assert_eq!(
                    mine.sign(&[a, b])[..],
                    *hmac::sign(&theirs, &msg).as_ref(),
                    "key {key_len} bytes, message {msg_len} bytes"
                );
            }
        }
    }

    #[test]
    fn rfc4231_test_case_2() {
        let tag = HmacSha512::new(b"Jefe").sign(&[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            tag[..8],
            [0x16, 0x4b, 0x7a, 0x7b, 0xfc, 0xf8, 0x19, 0xe2],
            "RFC 4231 4.3, HMAC-SHA-512"
        );
    }
}
