//! Reading messages: the streaming [`Decryptor`] and [`decrypt`].
//!
//! Plaintext is released one frame at a time and only after that frame's
//! tag has verified. For the signed suite 0x0578 the final frame's bytes are
//! released only after the signature over the whole message has verified;
//! the frames before it are authenticated by their tags (as with the SDKs'
//! streaming decryption), so a reader that needs the signature check before
//! using any byte should read to the end before acting.

use std::io::{self, Read};

use aws_lc_rs::constant_time::verify_slices_are_equal;

use super::frame::{open_frame, Output, FINAL_FRAME_MARKER};
use super::header::{malformed, take, take_array, Header};
use super::signature::SignatureCheck;
use super::source::{ReadSource, SliceSource, Source};
use super::suite::{derive_keys, MessageKeys, IV_LEN, MESSAGE_ID_LEN, TAG_LEN};
use crate::{DataKey, EncryptionContext, Error, KeyProvider};

/// Checks that the message's context holds every pair of `expected` (the
/// SDK CLI's and KMS keyring's rule: the message may hold more).
pub fn check_expected_context(
    message: &EncryptionContext,
    expected: &EncryptionContext,
) -> Result<(), Error> {
    for (k, v) in expected {
        match message.get(k) {
            Some(found) if found == v => {}
            found => {
                return Err(Error::WrongContext {
                    key: k.clone(),
                    expected: v.clone(),
                    found: found.map_or_else(|| "no such key".to_string(), |f| format!("`{f}`")),
                })
            }
        }
    }
    Ok(())
}

/// Derives the message keys from a data key and checks the commitment and
/// the header auth tag.
fn keys_for(header: &Header, data_key: &DataKey) -> Result<MessageKeys, Error> {
    let keys = derive_keys(data_key, header.suite, &header.message_id);
    verify_slices_are_equal(&keys.commitment, &header.commitment)
        .map_err(|_| Error::CommitmentMismatch)?;
    header.verify(&keys)?;
    Ok(keys)
}

/// Unwraps the first encrypted data key `provider` can, in header order.
async fn unwrap_keys(header: &Header, provider: &dyn KeyProvider) -> Result<MessageKeys, Error> {
    let mut errors = Vec::new();
    for wk in &header.wrapped_keys {
        match provider.unwrap(wk, &header.context).await {
            Ok(data_key) => return keys_for(header, &data_key),
            Err(e) => errors.push(e),
        }
    }
    if errors.len() == 1 {
        return Err(errors.pop().expect("one error"));
    }
    Err(Error::NoDataKey {
        count: header.wrapped_keys.len(),
        attempts: errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; "),
    })
}

/// A frame's fields before its ciphertext.
struct FrameHead {
    sequence: u32,
    final_frame: bool,
    iv: [u8; IV_LEN],
    len: usize,
}

/// The body decoder: frames in order, then the footer of signed suites.
struct Body<S> {
    src: S,
    keys: MessageKeys,
    message_id: [u8; MESSAGE_ID_LEN],
    frame_length: usize,
    next_sequence: u32,
    signature: Option<SignatureCheck>,
    done: bool,
}

impl<S: Source> Body<S> {
    fn new(src: S, header: &Header, keys: MessageKeys) -> Result<Self, Error> {
        Ok(Self {
            src,
            keys,
            message_id: header.message_id,
            frame_length: header.frame_length as usize,
            next_sequence: 1,
            signature: SignatureCheck::for_header(header)?,
            done: false,
        })
    }

    fn hashed<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], Error> {
        let b: [u8; N] = take_array(&mut self.src, what)?;
        if let Some(s) = &mut self.signature {
            s.update(&b);
        }
        Ok(b)
    }

    /// Reads the next frame's fields up to its ciphertext and checks its
    /// place in the sequence.
    fn read_head(&mut self) -> Result<FrameHead, Error> {
        let first = u32::from_be_bytes(self.hashed("frame sequence number")?);
        let final_frame = first == FINAL_FRAME_MARKER;
        let sequence = if final_frame {
            u32::from_be_bytes(self.hashed("final frame's sequence number")?)
        } else {
            first
        };
        if sequence != self.next_sequence {
            return Err(malformed(format!(
                "frame {sequence} where frame {} was expected: frames were dropped, reordered or duplicated",
                self.next_sequence
            )));
        }
        // A regular frame numbered 0xFFFFFFFF cannot exist: that value
        // marks a final frame, so the sequence cannot overflow.
        let iv: [u8; IV_LEN] = self.hashed("frame IV")?;
        let len = if final_frame {
            let len = u32::from_be_bytes(self.hashed("final frame's content length")?) as usize;
            if len > self.frame_length {
                return Err(malformed(format!(
                    "the final frame holds {len} bytes, more than the frame length {}",
                    self.frame_length
                )));
            }
            len
        } else {
            self.frame_length
        };
        Ok(FrameHead {
            sequence,
            final_frame,
            iv,
            len,
        })
    }

    /// Reads the frame's ciphertext and tag and decrypts them into `out`
    /// (`head.len` bytes); for the final frame of a signed message, also
    /// verifies the signature. On any failure `out` is zeroed, so no
    /// unverified plaintext is left in it.
    fn open_into(&mut self, head: &FrameHead, out: &mut [u8]) -> Result<(), Error> {
        let body = take(&mut self.src, head.len + TAG_LEN, "frame content")?;
        if let Some(s) = &mut self.signature {
            s.update(body);
        }
        let (ciphertext, tag) = body.split_at(head.len);
        open_frame(
            &self.keys.aead,
            &self.message_id,
            head.sequence,
            head.final_frame,
            head.iv,
            ciphertext,
            tag,
            out,
        )?;
        self.next_sequence = head.sequence.wrapping_add(1);
        if head.final_frame {
            if let Err(e) = self.verify_footer() {
                out.fill(0);
                return Err(e);
            }
            self.done = true;
        }
        Ok(())
    }

    /// Decrypts the next frame, writing its plaintext to `out` once it
    /// has verified (and, for the final frame of a signed message, once the
    /// signature has). Returns whether it was the final frame.
    fn next_frame(&mut self, out: &mut Output<'_>) -> Result<bool, Error> {
        let head = self.read_head()?;
        self.open_into(&head, out.room(head.len))?;
        Ok(head.final_frame)
    }

    fn verify_footer(&mut self) -> Result<(), Error> {
        if let Some(check) = self.signature.take() {
            let n = u16::from_be_bytes(take_array(&mut self.src, "signature length")?);
            let signature = take(&mut self.src, n.into(), "signature")?;
            check.verify(signature)?;
        }
        Ok(())
    }
}

/// A decrypted message.
#[derive(Debug)]
pub struct Decrypted {
    /// The plaintext.
    pub plaintext: Vec<u8>,
    /// The message header (suite, encryption context, wrapped keys...).
    pub header: Header,
}

/// Decrypts a whole message held in memory, unwrapping its data key with
/// `provider` and checking that its context holds every pair of
/// `expected_context`. Bytes after the end of the message are an error.
pub async fn decrypt(
    provider: &dyn KeyProvider,
    message: &[u8],
    expected_context: &EncryptionContext,
) -> Result<Decrypted, Error> {
    let (header, used) = Header::parse(message)?;
    check_expected_context(&header.context, expected_context)?;
    let keys = unwrap_keys(&header, provider).await?;
    let mut plaintext = Vec::new();
    let header = decrypt_body(header, keys, &message[used..], &mut plaintext)?;
    Ok(Decrypted { plaintext, header })
}

/// [`decrypt`] with a data key the caller already holds.
pub fn decrypt_with_data_key(
    data_key: &DataKey,
    message: &[u8],
    expected_context: &EncryptionContext,
) -> Result<Decrypted, Error> {
    let mut plaintext = Vec::new();
    let header = decrypt_with_data_key_into(data_key, message, expected_context, &mut plaintext)?;
    Ok(Decrypted { plaintext, header })
}

/// [`decrypt_with_data_key`] into `out`, which ends up holding exactly the
/// plaintext; returns the header. A buffer kept from one message to the
/// next is written over, not zeroed again first. After an error `out` is
/// empty: no plaintext of a message that did not verify is left in it.
pub fn decrypt_with_data_key_into(
    data_key: &DataKey,
    message: &[u8],
    expected_context: &EncryptionContext,
    out: &mut Vec<u8>,
) -> Result<Header, Error> {
    let (header, used) = Header::parse(message)?;
    check_expected_context(&header.context, expected_context)?;
    let keys = keys_for(&header, data_key)?;
    decrypt_body(header, keys, &message[used..], out)
}

fn decrypt_body(
    header: Header,
    keys: MessageKeys,
    body: &[u8],
    buf: &mut Vec<u8>,
) -> Result<Header, Error> {
    let mut b = Body::new(SliceSource { data: body }, &header, keys)?;
    // Frames never hold more than their ciphertext, so this never
    // over-reserves by more than the header's worth.
    buf.reserve(body.len().saturating_sub(buf.len()));
    let mut out = Output::over(buf);
    let res = (|| {
        while !b.next_frame(&mut out)? {}
        match b.src.data.len() {
            0 => Ok(()),
            count => Err(Error::TrailingData { count }),
        }
    })();
    out.finish();
    if let Err(e) = res {
        buf.fill(0);
        buf.clear();
        return Err(e);
    }
    Ok(header)
}

/// A message being read from `R`, itself readable as the plaintext.
///
/// Errors surface from [`Read::read`] as `io::Error`s whose inner error is
/// this crate's [`Error`] (`e.get_ref().and_then(|e| e.downcast_ref::<Error>())`).
/// It stops reading at the end of the message; bytes after it stay in the
/// reader ([`Decryptor::into_inner`]).
pub struct Decryptor<R: Read> {
    header: Header,
    body: Body<ReadSource<R>>,
    plain: Vec<u8>,
    pos: usize,
    failed: bool,
}

impl<R: Read> Decryptor<R> {
    /// Reads the header, unwraps the data key with `provider` (trying each
    /// encrypted data key in turn), checks the key commitment, the header
    /// tag and that the context holds every pair of `expected_context`.
    pub async fn new(
        mut reader: R,
        provider: &dyn KeyProvider,
        expected_context: &EncryptionContext,
    ) -> Result<Self, Error> {
        let header = read_header(&mut reader)?;
        Self::with_header(reader, header, provider, expected_context).await
    }

    /// Continues a message whose header was read with [`read_header`]
    /// (e.g. to choose a key provider from its wrapped keys), unwrapping
    /// the data key with `provider`.
    pub async fn with_header(
        reader: R,
        header: Header,
        provider: &dyn KeyProvider,
        expected_context: &EncryptionContext,
    ) -> Result<Self, Error> {
        check_expected_context(&header.context, expected_context)?;
        let keys = unwrap_keys(&header, provider).await?;
        Self::start(reader, header, keys)
    }

    /// Continues a message whose header was read with [`read_header`],
    /// under a data key the caller already holds.
    pub fn with_data_key(
        reader: R,
        header: Header,
        data_key: &DataKey,
        expected_context: &EncryptionContext,
    ) -> Result<Self, Error> {
        check_expected_context(&header.context, expected_context)?;
        let keys = keys_for(&header, data_key)?;
        Self::start(reader, header, keys)
    }

    fn start(reader: R, header: Header, keys: MessageKeys) -> Result<Self, Error> {
        let body = Body::new(ReadSource::new(reader), &header, keys)?;
        Ok(Self {
            plain: Vec::with_capacity(header.frame_length as usize),
            header,
            body,
            pos: 0,
            failed: false,
        })
    }

    /// The message header (suite, encryption context, wrapped keys...).
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Whether the whole message has been read and verified.
    pub fn is_done(&self) -> bool {
        self.body.done && self.pos == self.plain.len()
    }

    /// The reader, positioned after the message once [`Decryptor::is_done`].
    pub fn into_inner(self) -> R {
        self.body.src.reader
    }
}

/// Reads just a message header (e.g. to see its context or wrapped keys
/// before choosing a key).
pub fn read_header<R: Read>(reader: &mut R) -> Result<Header, Error> {
    Header::read_from(&mut ReadSource::new(reader))
}

fn to_io(e: Error) -> io::Error {
    match e {
        Error::Stream(io) => io,
        e => io::Error::new(io::ErrorKind::InvalidData, e),
    }
}

impl<R: Read> Read for Decryptor<R> {
    /// Decrypts straight into `buf` when it can hold a whole frame (no
    /// copy), else through an internal frame buffer.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.failed {
            return Err(io::Error::other("the message failed to decrypt earlier"));
        }
        while self.pos == self.plain.len() {
            if self.body.done || buf.is_empty() {
                return Ok(0);
            }
            self.plain.clear();
            self.pos = 0;
            let result = self.body.read_head().and_then(|head| {
                if buf.len() >= head.len {
                    self.body
                        .open_into(&head, &mut buf[..head.len])
                        .map(|()| head.len)
                } else {
                    self.plain.resize(head.len, 0);
                    let opened = self.body.open_into(&head, &mut self.plain);
                    if opened.is_err() {
                        self.plain.clear();
                    }
                    opened.map(|()| 0)
                }
            });
            match result {
                // Decrypted into `buf` (an empty final frame loops to EOF).
                Ok(n) if n > 0 => return Ok(n),
                Ok(_) => {}
                Err(e) => {
                    self.failed = true;
                    return Err(to_io(e));
                }
            }
        }
        let n = buf.len().min(self.plain.len() - self.pos);
        buf[..n].copy_from_slice(&self.plain[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
