//! The version 2 message header: serialization, and parsing with a cap on
//! every length before anything is allocated for it.
//!
//! ```text
//! version (1) = 0x02 | suite id (2) | message id (32)
//! context length (2) | serialized encryption context
//! EDK count (2) | per EDK: provider id len (2), id, provider info len (2), info, key len (2), key
//! content type (1) = 0x02 framed | frame length (4) | commitment (32)
//! header auth tag (16): AES-GCM over no plaintext, IV of zeros, AAD = all of the above
//! ```

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

use aws_lc_rs::aead::{Aad, Nonce};

use super::frame::Output;
use super::source::{SliceSource, Source};
use super::suite::{AlgorithmSuite, MessageKeys, COMMITMENT_LEN, IV_LEN, MESSAGE_ID_LEN, TAG_LEN};
use crate::context::write_context;
use crate::{EncryptionContext, Error, WrappedKey};

/// The only message format version Wharf reads and writes.
pub const FORMAT_VERSION: u8 = 0x02;
/// Content type of framed messages (the only one Wharf reads).
const CONTENT_TYPE_FRAMED: u8 = 0x02;
/// Content type of non-framed messages.
const CONTENT_TYPE_NON_FRAMED: u8 = 0x01;
/// At most this many encrypted data keys are read from a header.
pub const MAX_ENCRYPTED_DATA_KEYS: u16 = 64;
/// Frames longer than this are refused, so that a decryptor never holds
/// more than this much of a message in memory.
pub const MAX_FRAME_LENGTH: u32 = 16 * 1024 * 1024;
/// Reserved context key of signed suites: the base64 compressed public key.
pub const PUBLIC_KEY_CONTEXT_KEY: &str = "aws-crypto-public-key";

/// A parsed message header.
#[derive(Clone, Debug)]
pub struct Header {
    /// The algorithm suite.
    pub suite: AlgorithmSuite,
    /// The random message id (HKDF salt of the message keys).
    pub message_id: [u8; MESSAGE_ID_LEN],
    /// The encryption context the message is bound to.
    pub context: EncryptionContext,
    /// The data key, wrapped by each master key the message was made for.
    pub wrapped_keys: Vec<WrappedKey>,
    /// Plaintext bytes per frame.
    pub frame_length: u32,
    /// The key commitment.
    pub commitment: [u8; COMMITMENT_LEN],
    /// The serialized header (without its auth tag).
    pub(crate) raw: Vec<u8>,
    /// The header auth tag.
    pub(crate) auth_tag: [u8; TAG_LEN],
}

/// Writes a new message's header, without its auth tag, to `out`, from
/// borrowed parts: a message written in one go never copies its context or
/// wrapped keys, nor its header from a buffer of its own.
pub(crate) fn write_header(
    out: &mut Output<'_>,
    suite: AlgorithmSuite,
    message_id: &[u8; MESSAGE_ID_LEN],
    context: &EncryptionContext,
    wrapped_keys: &[WrappedKey],
    frame_length: u32,
    commitment: &[u8; COMMITMENT_LEN],
) -> Result<(), Error> {
    let mut ctx_len = 0usize;
    write_context(context, |b| ctx_len += b.len()).ok_or_else(|| Error::InvalidContext {
        reason: "a key, a value or the number of pairs is above 65,535 bytes".into(),
    })?;
    let ctx_len = u16::try_from(ctx_len).map_err(|_| Error::InvalidContext {
        reason: format!("it serializes to {ctx_len} bytes, above the format's 65,535"),
    })?;
    if wrapped_keys.is_empty() || wrapped_keys.len() > usize::from(MAX_ENCRYPTED_DATA_KEYS) {
        return Err(Error::InvalidOption {
            reason: format!(
                "a message needs 1 to {MAX_ENCRYPTED_DATA_KEYS} wrapped data keys, got {}",
                wrapped_keys.len()
            ),
        });
    }
    out.put(&[FORMAT_VERSION]);
    out.put(&suite.id().to_be_bytes());
    out.put(message_id);
    out.put(&ctx_len.to_be_bytes());
    write_context(context, |b| out.put(b)).expect("the context was checked above");
    out.put(&(wrapped_keys.len() as u16).to_be_bytes());
    for k in wrapped_keys {
        for field in [k.provider_id.as_bytes(), &k.provider_info, &k.ciphertext] {
            let len = u16::try_from(field.len()).map_err(|_| Error::InvalidOption {
                reason: format!(
                    "a wrapped data key of provider `{}` has a field of {} bytes, above 65,535",
                    k.provider_id,
                    field.len()
                ),
            })?;
            out.put(&len.to_be_bytes());
            out.put(field);
        }
    }
    out.put(&[CONTENT_TYPE_FRAMED]);
    out.put(&frame_length.to_be_bytes());
    out.put(commitment);
    Ok(())
}

/// The header auth tag of a serialized header (`raw`, without the tag):
/// AES-GCM under the message key over no plaintext, with `raw` as AAD.
pub(crate) fn header_tag(keys: &MessageKeys, raw: &[u8]) -> [u8; TAG_LEN] {
    let tag = keys
        .aead
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key([0; IV_LEN]),
            Aad::from(raw),
            &mut [],
        )
        .expect("AES-GCM sealing cannot fail on empty input");
    let mut out = [0; TAG_LEN];
    out.copy_from_slice(tag.as_ref());
    out
}

impl Header {
    /// Checks the header auth tag under the message key.
    pub(crate) fn verify(&self, keys: &MessageKeys) -> Result<(), Error> {
        keys.aead
            .open_separate_gather(
                Nonce::assume_unique_for_key([0; IV_LEN]),
                Aad::from(&self.raw),
                &[],
                &self.auth_tag,
                &mut [],
            )
            .map_err(|_| Error::HeaderAuthentication)
    }

    /// The serialized header followed by its auth tag, as written on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.raw.len() + TAG_LEN);
        out.extend_from_slice(&self.raw);
        out.extend_from_slice(&self.auth_tag);
        out
    }

    /// Parses a header (with its auth tag) from the start of `bytes`;
    /// returns it and the number of bytes it took. The tag is not checked:
    /// that needs the data key.
    pub fn parse(bytes: &[u8]) -> Result<(Self, usize), Error> {
        let mut src = SliceSource { data: bytes };
        let header = Self::read_from(&mut src)?;
        Ok((header, bytes.len() - src.data.len()))
    }

    /// Reads a header (with its auth tag) from a source.
    pub(crate) fn read_from<S: Source>(src: &mut S) -> Result<Self, Error> {
        let mut r = Recorder {
            src,
            // Enough for a header with one KMS-wrapped key and a short
            // context, so recording rarely reallocates.
            raw: Vec::with_capacity(512),
        };
        let version = r.u8("format version")?;
        if version != FORMAT_VERSION {
            return Err(Error::UnsupportedVersion { version });
        }
        let suite = AlgorithmSuite::from_id(r.u16("algorithm suite id")?)?;
        let message_id: [u8; MESSAGE_ID_LEN] = r.array("message id")?;
        let ctx_len = r.u16("encryption context length")?;
        let ctx_start = r.raw.len();
        r.bytes(usize::from(ctx_len), "encryption context")?;
        let context = parse_context(&r.raw[ctx_start..])?;

        let edk_count = r.u16("encrypted data key count")?;
        if edk_count == 0 {
            return Err(malformed("the header has no encrypted data key"));
        }
        if edk_count > MAX_ENCRYPTED_DATA_KEYS {
            return Err(Error::LimitExceeded {
                what: "encrypted data key count",
                value: edk_count.into(),
                limit: MAX_ENCRYPTED_DATA_KEYS.into(),
            });
        }
        let mut wrapped_keys = Vec::with_capacity(usize::from(edk_count));
        for _ in 0..edk_count {
            let n = r.u16("encrypted data key")?;
            let id = r.bytes(n.into(), "encrypted data key's provider id")?;
            let provider_id = String::from_utf8(id.to_vec())
                .map_err(|_| malformed("an encrypted data key's provider id is not UTF-8"))?;
            let n = r.u16("encrypted data key")?;
            let provider_info = r
                .bytes(n.into(), "encrypted data key's provider info")?
                .to_vec();
            let n = r.u16("encrypted data key")?;
            let ciphertext = r.bytes(n.into(), "encrypted data key")?.to_vec();
            wrapped_keys.push(WrappedKey {
                provider_id,
                provider_info,
                ciphertext,
            });
        }
        match r.u8("content type")? {
            CONTENT_TYPE_FRAMED => {}
            CONTENT_TYPE_NON_FRAMED => {
                return Err(Error::Unsupported {
                    feature: "non-framed message bodies; encrypt with a frame length above 0 (the SDKs' default is 4096)".into(),
                })
            }
            other => return Err(malformed(format!("unknown content type {other:#04x}"))),
        }
        let frame_length = r.u32("frame length")?;
        if frame_length == 0 {
            return Err(malformed("frame length 0 in a framed message"));
        }
        if frame_length > MAX_FRAME_LENGTH {
            return Err(Error::LimitExceeded {
                what: "frame length",
                value: frame_length.into(),
                limit: MAX_FRAME_LENGTH.into(),
            });
        }
        let commitment: [u8; COMMITMENT_LEN] = r.array("key commitment")?;
        let raw = r.raw;
        let auth_tag: [u8; TAG_LEN] = take_array(r.src, "header authentication tag")?;
        if suite.is_signed() != context.contains_key(PUBLIC_KEY_CONTEXT_KEY) {
            return Err(malformed(if suite.is_signed() {
                "a signed suite without the `aws-crypto-public-key` context entry"
            } else {
                "an unsigned suite with an `aws-crypto-public-key` context entry"
            }));
        }
        Ok(Self {
            suite,
            message_id,
            context,
            wrapped_keys,
            frame_length,
            commitment,
            raw,
            auth_tag,
        })
    }
}

pub(crate) fn malformed(reason: impl Into<String>) -> Error {
    Error::Malformed {
        reason: reason.into(),
    }
}

pub(crate) fn stream_error(e: std::io::Error) -> Error {
    Error::Stream(e)
}

pub(crate) fn take<'s, S: Source>(
    src: &'s mut S,
    n: usize,
    what: &'static str,
) -> Result<&'s [u8], Error> {
    src.take(n)
        .map_err(stream_error)?
        .ok_or(Error::MessageTruncated { what })
}

pub(crate) fn take_array<const N: usize, S: Source>(
    src: &mut S,
    what: &'static str,
) -> Result<[u8; N], Error> {
    Ok(take(src, N, what)?
        .try_into()
        .expect("take returns N bytes"))
}

/// Reads fields and records every byte for the header auth tag.
struct Recorder<'s, S> {
    src: &'s mut S,
    raw: Vec<u8>,
}

impl<S: Source> Recorder<'_, S> {
    fn bytes(&mut self, n: usize, what: &'static str) -> Result<&[u8], Error> {
        let start = self.raw.len();
        let b = take(self.src, n, what)?;
        self.raw.extend_from_slice(b);
        Ok(&self.raw[start..])
    }
    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], Error> {
        Ok(self.bytes(N, what)?.try_into().expect("N bytes"))
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, Error> {
        Ok(self.array::<1>(what)?[0])
    }
    fn u16(&mut self, what: &'static str) -> Result<u16, Error> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, Error> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }
}

/// Parses a serialized encryption context (the inverse of
/// [`crate::serialize_context`]); refuses duplicate keys, non-UTF-8 text and bytes
/// left over.
pub fn parse_context(bytes: &[u8]) -> Result<EncryptionContext, Error> {
    let mut ctx = BTreeMap::new();
    if bytes.is_empty() {
        return Ok(ctx);
    }
    let mut src = SliceSource { data: bytes };
    let count = u16::from_be_bytes(take_array(&mut src, "encryption context")?);
    if count == 0 {
        return Err(malformed(
            "a non-empty encryption context field with 0 pairs",
        ));
    }
    for _ in 0..count {
        let mut text = || -> Result<String, Error> {
            let n = u16::from_be_bytes(take_array(&mut src, "encryption context")?);
            let b = take(&mut src, n.into(), "encryption context")?;
            String::from_utf8(b.to_vec())
                .map_err(|_| malformed("an encryption context entry is not UTF-8"))
        };
        let k = text()?;
        let v = text()?;
        match ctx.entry(k) {
            Entry::Vacant(e) => {
                e.insert(v);
            }
            Entry::Occupied(e) => {
                return Err(malformed(format!(
                    "the encryption context has key `{}` twice",
                    e.key()
                )))
            }
        }
    }
    if !src.data.is_empty() {
        return Err(malformed(format!(
            "{} byte(s) left over after the encryption context's {count} pair(s)",
            src.data.len()
        )));
    }
    Ok(ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_context() -> EncryptionContext {
        [("purpose".to_string(), "test".to_string())].into()
    }

    fn sample_key() -> WrappedKey {
        WrappedKey {
            provider_id: "aws-kms".into(),
            provider_info: b"arn:aws:kms:us-east-1:000000000000:key/k".to_vec(),
            ciphertext: vec![9; 40],
        }
    }

    /// A written header followed by a (dummy) auth tag, parsed.
    fn sample() -> Header {
        let mut raw = Vec::new();
        let mut out = Output::over(&mut raw);
        write_header(
            &mut out,
            AlgorithmSuite::Aes256GcmHkdfSha512Commit,
            &[3; 32],
            &sample_context(),
            &[sample_key()],
            4096,
            &[4; 32],
        )
        .unwrap();
        out.put(&[5; TAG_LEN]);
        out.finish();
        let (header, used) = Header::parse(&raw).unwrap();
        assert_eq!(used, raw.len());
        assert_eq!(header.to_bytes(), raw);
        header
    }

    #[test]
    fn written_header_parses_to_what_was_written() {
        let h = sample();
        assert_eq!(h.suite, AlgorithmSuite::Aes256GcmHkdfSha512Commit);
        assert_eq!(h.context, sample_context());
        assert_eq!(h.wrapped_keys, vec![sample_key()]);
        assert_eq!(h.frame_length, 4096);
        assert_eq!(h.message_id, [3; 32]);
        assert_eq!(h.commitment, [4; 32]);
        assert_eq!(h.auth_tag, [5; TAG_LEN]);
    }

    #[test]
    fn oversize_wrapped_key_field_is_refused() {
        let mut raw = Vec::new();
        let mut key = sample_key();
        key.ciphertext = vec![0; 70_000];
        let e = write_header(
            &mut Output::over(&mut raw),
            AlgorithmSuite::Aes256GcmHkdfSha512Commit,
            &[3; 32],
            &sample_context(),
            &[key],
            4096,
            &[4; 32],
        )
        .unwrap_err();
        assert!(e.to_string().contains("70000 bytes"), "{e}");
    }

    #[test]
    fn huge_frame_length_is_refused() {
        let h = sample();
        let mut b = h.to_bytes();
        let at = h.raw.len() - 32 - 4;
        b[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        let e = Header::parse(&b).unwrap_err();
        assert!(e.to_string().contains("frame length"), "{e}");
    }

    #[test]
    fn context_with_duplicate_keys_is_malformed() {
        let b = [0, 2, 0, 1, b'a', 0, 1, b'x', 0, 1, b'a', 0, 1, b'y'];
        assert!(parse_context(&b).unwrap_err().to_string().contains("twice"));
        let good = [0, 1, 0, 1, b'a', 0, 1, b'x'];
        assert_eq!(parse_context(&good).unwrap()["a"], "x");
        assert!(parse_context(&[0, 1, 0, 1, b'a', 0, 1, b'x', 7]).is_err());
    }
}
