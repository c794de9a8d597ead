//! Writing messages: the streaming [`Encryptor`] and [`encrypt`].
//!
//! Wharf writes version 2 messages of suite 0x0478, framed, with one
//! encrypted data key per master key. Memory use is one frame whatever the
//! message size: whole frames are sealed straight from the caller's buffer,
//! only a partial frame is held back.

use std::io::{self, Write};

use super::frame::{seal_frame, MAX_SEQUENCE};
use super::header::{Header, MAX_FRAME_LENGTH};
use super::suite::{derive_keys, AlgorithmSuite, MessageKeys, MESSAGE_ID_LEN};
use crate::{DataKey, EncryptionContext, Error, KeyProvider, WrappedKey};

/// The SDKs' default frame length, and Wharf's.
pub const DEFAULT_FRAME_LENGTH: u32 = 4096;
/// Context keys starting with this are reserved by the AWS Encryption SDK.
const RESERVED_CONTEXT_PREFIX: &str = "aws-crypto-";

/// How new messages are written.
#[derive(Clone, Debug)]
pub struct EncryptOptions {
    frame_length: u32,
}

impl Default for EncryptOptions {
    fn default() -> Self {
        Self {
            frame_length: DEFAULT_FRAME_LENGTH,
        }
    }
}

impl EncryptOptions {
    /// Plaintext bytes per frame: 1 to 16 MiB (default 4096). Larger frames
    /// cost less per byte; a reader holds one frame in memory.
    pub fn frame_length(mut self, frame_length: u32) -> Self {
        self.frame_length = frame_length;
        self
    }

    fn validate(&self) -> Result<usize, Error> {
        if self.frame_length == 0 || self.frame_length > MAX_FRAME_LENGTH {
            return Err(Error::InvalidOption {
                reason: format!(
                    "frame length {} is outside 1..={MAX_FRAME_LENGTH}",
                    self.frame_length
                ),
            });
        }
        Ok(self.frame_length as usize)
    }
}

fn check_context(context: &EncryptionContext) -> Result<(), Error> {
    match context.keys().find(|k| k.starts_with(RESERVED_CONTEXT_PREFIX)) {
        Some(k) => Err(Error::InvalidContext {
            reason: format!("key `{k}` uses the prefix `{RESERVED_CONTEXT_PREFIX}` reserved by the AWS Encryption SDK"),
        }),
        None => Ok(()),
    }
}

/// The state shared by the streaming and the one-shot writer.
struct Sealer {
    keys: MessageKeys,
    message_id: [u8; MESSAGE_ID_LEN],
    frame_length: usize,
    next_sequence: u32,
}

impl Sealer {
    /// Makes the header (sealed) and the frame sealer of a new message.
    fn start(
        data_key: &DataKey,
        wrapped_keys: Vec<WrappedKey>,
        context: EncryptionContext,
        options: &EncryptOptions,
    ) -> Result<(Header, Self), Error> {
        let frame_length = options.validate()?;
        check_context(&context)?;
        let suite = AlgorithmSuite::Aes256GcmHkdfSha512Commit;
        let mut message_id = [0u8; MESSAGE_ID_LEN];
        aws_lc_rs::rand::fill(&mut message_id).expect("the system random generator failed");
        let keys = derive_keys(data_key, suite, &message_id);
        let mut header = Header::new(
            suite,
            message_id,
            context,
            wrapped_keys,
            options.frame_length,
            keys.commitment,
        )?;
        header.seal(&keys);
        let sealer = Self {
            keys,
            message_id,
            frame_length,
            next_sequence: 1,
        };
        Ok((header, sealer))
    }

    fn seal(
        &mut self,
        plaintext: &[u8],
        final_frame: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let sequence = self.next_sequence;
        if sequence > MAX_SEQUENCE {
            return Err(Error::InvalidOption {
                reason: format!(
                    "the message would need more than {MAX_SEQUENCE} frames; use a larger frame length"
                ),
            });
        }
        seal_frame(
            &self.keys.aead,
            &self.message_id,
            sequence,
            final_frame,
            plaintext,
            out,
        );
        self.next_sequence += 1;
        Ok(())
    }
}

/// A message being written to `W`: write plaintext into it, then call
/// [`Encryptor::finish`], which writes the final frame. Dropping it without
/// `finish` leaves a truncated message that every reader refuses.
pub struct Encryptor<W: Write> {
    writer: W,
    sealer: Sealer,
    pending: Vec<u8>,
    out: Vec<u8>,
    poisoned: bool,
}

impl<W: Write> Encryptor<W> {
    /// Starts a message under a fresh data key from `provider` and writes
    /// its header.
    pub async fn new(
        writer: W,
        provider: &dyn KeyProvider,
        context: EncryptionContext,
        options: &EncryptOptions,
    ) -> Result<Self, Error> {
        check_context(&context)?;
        let (key, wrapped) = provider.generate(&context).await?;
        Self::with_data_key(writer, &key, vec![wrapped], context, options)
    }

    /// Starts a message under a data key the caller already holds (e.g.
    /// from a data-key cache), wrapped by one or more master keys, and
    /// writes its header.
    pub fn with_data_key(
        mut writer: W,
        data_key: &DataKey,
        wrapped_keys: Vec<WrappedKey>,
        context: EncryptionContext,
        options: &EncryptOptions,
    ) -> Result<Self, Error> {
        let (header, sealer) = Sealer::start(data_key, wrapped_keys, context, options)?;
        writer
            .write_all(&header.to_bytes())
            .map_err(Error::Stream)?;
        Ok(Self {
            writer,
            pending: Vec::with_capacity(sealer.frame_length),
            out: Vec::new(),
            sealer,
            poisoned: false,
        })
    }

    fn emit(&mut self, plaintext: &[u8], final_frame: bool) -> Result<(), Error> {
        self.out.clear();
        let res = self
            .sealer
            .seal(plaintext, final_frame, &mut self.out)
            .and_then(|()| self.writer.write_all(&self.out).map_err(Error::Stream));
        if res.is_err() {
            self.poisoned = true;
        }
        res
    }

    /// Writes the final frame, flushes, and returns the writer.
    pub fn finish(mut self) -> Result<W, Error> {
        if self.poisoned {
            return Err(Error::Stream(io::Error::other(
                "an earlier write failed, so the message is incomplete",
            )));
        }
        let pending = std::mem::take(&mut self.pending);
        self.emit(&pending, true)?;
        self.writer.flush().map_err(Error::Stream)?;
        Ok(self.writer)
    }
}

impl<W: Write> Write for Encryptor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.poisoned {
            return Err(io::Error::other(
                "an earlier write failed, so the message is incomplete",
            ));
        }
        let fl = self.sealer.frame_length;
        let mut rest = buf;
        if !self.pending.is_empty() {
            let n = rest.len().min(fl - self.pending.len());
            self.pending.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            if self.pending.len() == fl {
                let pending = std::mem::take(&mut self.pending);
                self.emit(&pending, false).map_err(io::Error::other)?;
                self.pending = pending;
                self.pending.clear();
            }
        }
        while rest.len() >= fl {
            let (frame, tail) = rest.split_at(fl);
            self.emit(frame, false).map_err(io::Error::other)?;
            rest = tail;
        }
        self.pending.extend_from_slice(rest);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }
}

/// Encrypts `plaintext` into one message under a fresh data key from
/// `provider`, with the default frame length.
pub async fn encrypt(
    provider: &dyn KeyProvider,
    context: &EncryptionContext,
    plaintext: &[u8],
) -> Result<Vec<u8>, Error> {
    encrypt_with_options(provider, context, plaintext, &EncryptOptions::default()).await
}

/// [`encrypt`] with options (e.g. a 64 KiB frame length for large objects).
pub async fn encrypt_with_options(
    provider: &dyn KeyProvider,
    context: &EncryptionContext,
    plaintext: &[u8],
    options: &EncryptOptions,
) -> Result<Vec<u8>, Error> {
    check_context(context)?;
    let (key, wrapped) = provider.generate(context).await?;
    encrypt_with_data_key(&key, vec![wrapped], context.clone(), plaintext, options)
}

/// Encrypts `plaintext` under a data key the caller holds, sealing each
/// frame straight into the returned buffer.
pub fn encrypt_with_data_key(
    data_key: &DataKey,
    wrapped_keys: Vec<WrappedKey>,
    context: EncryptionContext,
    plaintext: &[u8],
    options: &EncryptOptions,
) -> Result<Vec<u8>, Error> {
    let (header, mut sealer) = Sealer::start(data_key, wrapped_keys, context, options)?;
    let fl = sealer.frame_length;
    let frames = plaintext.len() / fl + 1;
    let mut out = header.to_bytes();
    out.reserve(plaintext.len() + frames * 40);
    let mut rest = plaintext;
    while rest.len() >= fl {
        let (frame, tail) = rest.split_at(fl);
        sealer.seal(frame, false, &mut out)?;
        rest = tail;
    }
    sealer.seal(rest, true, &mut out)?;
    Ok(out)
}
