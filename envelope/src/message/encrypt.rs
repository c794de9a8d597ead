//! Writing messages: the streaming [`Encryptor`] and [`encrypt`].
//!
//! Wharf writes version 2 messages of suite 0x0478 (or, when asked,
//! 0x0578 with a fresh ECDSA P-384 key per message), framed, with one
//! encrypted data key per master key. Memory use is one frame whatever the
//! message size: whole frames are sealed straight from the caller's buffer,
//! only a partial frame is held back.

use std::io::{self, Write};

use super::frame::{seal_frame, Output, MAX_SEQUENCE};
use super::header::{header_tag, write_header, MAX_FRAME_LENGTH, PUBLIC_KEY_CONTEXT_KEY};
use super::signature::Signer;
use super::suite::{derive_keys, AlgorithmSuite, MessageKeys, MESSAGE_ID_LEN};
use crate::{DataKey, DataKeyCache, EncryptionContext, Error, KeyProvider, WrappedKey};

/// The SDKs' default frame length, and Wharf's.
pub const DEFAULT_FRAME_LENGTH: u32 = 4096;
/// Context keys starting with this are reserved by the AWS Encryption SDK.
const RESERVED_CONTEXT_PREFIX: &str = "aws-crypto-";

/// How new messages are written.
#[derive(Clone, Debug)]
pub struct EncryptOptions {
    frame_length: u32,
    suite: AlgorithmSuite,
}

impl Default for EncryptOptions {
    fn default() -> Self {
        Self {
            frame_length: DEFAULT_FRAME_LENGTH,
            suite: AlgorithmSuite::Aes256GcmHkdfSha512Commit,
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

    /// The algorithm suite (default 0x0478). With 0x0578 every message gets
    /// a fresh ECDSA P-384 signing key, whose public key goes into the
    /// encryption context before the data key is generated; such messages
    /// need a [`KeyProvider`] (not a caller-held or cached data key).
    pub fn suite(mut self, suite: AlgorithmSuite) -> Self {
        self.suite = suite;
        self
    }

    fn refuse_signed(&self, what: &str) -> Result<(), Error> {
        if self.suite.is_signed() {
            return Err(Error::InvalidOption {
                reason: format!(
                    "{what} cannot write signed (0x0578) messages: their data key must be generated under a context holding the message's signing key; use a key provider (Encryptor::new, encrypt_with_options)"
                ),
            });
        }
        Ok(())
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

/// Checks the caller's context and, for a signed suite, makes the
/// message's signing key and adds its public key to the context.
fn prepare(
    context: &EncryptionContext,
    options: &EncryptOptions,
) -> Result<(EncryptionContext, Option<Signer>), Error> {
    options.validate()?;
    check_context(context)?;
    if !options.suite.is_signed() {
        return Ok((context.clone(), None));
    }
    let (signer, public_key) = Signer::generate();
    let mut full = context.clone();
    full.insert(PUBLIC_KEY_CONTEXT_KEY.to_string(), public_key);
    Ok((full, Some(signer)))
}

/// Message ids drawn from the system generator this many at a time: an id
/// is public (it is written in the header) and only has to be unique and
/// unpredictable, and one draw of 512 bytes costs about what one of 32
/// does, which was a tenth of a small message's fixed cost.
const IDS_PER_DRAW: usize = 16;

thread_local! {
    static MESSAGE_IDS: std::cell::RefCell<(usize, [u8; MESSAGE_ID_LEN * IDS_PER_DRAW])> =
        const { std::cell::RefCell::new((IDS_PER_DRAW, [0; MESSAGE_ID_LEN * IDS_PER_DRAW])) };
}

/// A fresh random message id; each is handed out once.
fn new_message_id() -> [u8; MESSAGE_ID_LEN] {
    MESSAGE_IDS.with_borrow_mut(|(next, pool)| {
        if *next == IDS_PER_DRAW {
            aws_lc_rs::rand::fill(pool).expect("the system random generator failed");
            *next = 0;
        }
        let at = *next * MESSAGE_ID_LEN;
        *next += 1;
        let mut id = [0u8; MESSAGE_ID_LEN];
        id.copy_from_slice(&pool[at..at + MESSAGE_ID_LEN]);
        pool[at..at + MESSAGE_ID_LEN].fill(0);
        id
    })
}

/// The state shared by the streaming and the one-shot writer.
struct Sealer {
    keys: MessageKeys,
    message_id: [u8; MESSAGE_ID_LEN],
    frame_length: usize,
    next_sequence: u32,
    signer: Option<Signer>,
}

impl Sealer {
    /// Writes the sealed header of a new message to `out` and returns the
    /// sealer of its frames. `context` is the full context ([`prepare`]d);
    /// `signer` is present exactly for a signed suite.
    fn start(
        data_key: &DataKey,
        wrapped_keys: &[WrappedKey],
        context: &EncryptionContext,
        mut signer: Option<Signer>,
        options: &EncryptOptions,
        out: &mut Output<'_>,
    ) -> Result<Self, Error> {
        let frame_length = options.validate()?;
        let suite = options.suite;
        debug_assert_eq!(suite.is_signed(), signer.is_some());
        let message_id = new_message_id();
        let keys = derive_keys(data_key, suite, &message_id);
        let start = out.len();
        write_header(
            out,
            suite,
            &message_id,
            context,
            wrapped_keys,
            options.frame_length,
            &keys.commitment,
        )?;
        let tag = header_tag(&keys, &out.written()[start..]);
        out.put(&tag);
        if let Some(s) = &mut signer {
            s.update(&out.written()[start..]);
        }
        Ok(Self {
            keys,
            message_id,
            frame_length,
            next_sequence: 1,
            signer,
        })
    }

    fn seal(
        &mut self,
        plaintext: &[u8],
        final_frame: bool,
        out: &mut Output<'_>,
    ) -> Result<(), Error> {
        let sequence = self.next_sequence;
        if sequence > MAX_SEQUENCE {
            return Err(Error::InvalidOption {
                reason: format!(
                    "the message would need more than {MAX_SEQUENCE} frames; use a larger frame length"
                ),
            });
        }
        let start = out.len();
        seal_frame(
            &self.keys.aead,
            &self.message_id,
            sequence,
            final_frame,
            plaintext,
            out,
        );
        self.next_sequence += 1;
        if let Some(s) = &mut self.signer {
            s.update(&out.written()[start..]);
        }
        if final_frame {
            if let Some(s) = self.signer.take() {
                out.put(&s.footer());
            }
        }
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
        let (context, signer) = prepare(&context, options)?;
        let (key, wrapped) = provider.generate(&context).await?;
        Self::start(writer, &key, &[wrapped], &context, signer, options)
    }

    /// Starts a message under a data key the caller already holds (e.g.
    /// from a data-key cache), wrapped by one or more master keys, and
    /// writes its header.
    pub fn with_data_key(
        writer: W,
        data_key: &DataKey,
        wrapped_keys: &[WrappedKey],
        context: &EncryptionContext,
        options: &EncryptOptions,
    ) -> Result<Self, Error> {
        options.refuse_signed("Encryptor::with_data_key")?;
        check_context(context)?;
        Self::start(writer, data_key, wrapped_keys, context, None, options)
    }

    fn start(
        mut writer: W,
        data_key: &DataKey,
        wrapped_keys: &[WrappedKey],
        context: &EncryptionContext,
        signer: Option<Signer>,
        options: &EncryptOptions,
    ) -> Result<Self, Error> {
        let mut buf = Vec::new();
        let mut out = Output::over(&mut buf);
        let sealer = Sealer::start(data_key, wrapped_keys, context, signer, options, &mut out)?;
        writer.write_all(out.written()).map_err(Error::Stream)?;
        Ok(Self {
            writer,
            pending: Vec::with_capacity(sealer.frame_length),
            out: buf,
            sealer,
            poisoned: false,
        })
    }

    fn emit(&mut self, plaintext: &[u8], final_frame: bool) -> Result<(), Error> {
        let mut out = Output::over(&mut self.out);
        let res = self
            .sealer
            .seal(plaintext, final_frame, &mut out)
            .and_then(|()| self.writer.write_all(out.written()).map_err(Error::Stream));
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
    let (context, signer) = prepare(context, options)?;
    let (key, wrapped) = provider.generate(&context).await?;
    let mut out = Vec::new();
    encrypt_inner(
        &key,
        &[wrapped],
        &context,
        signer,
        plaintext,
        options,
        &mut out,
    )?;
    Ok(out)
}

/// [`encrypt_with_options`] under a data key from `cache`, counting the
/// message's bytes against the cached key's byte limit: the way to ship
/// many objects or records without a KMS call for each. Every message still
/// has its own message id and therefore its own derived key.
pub async fn encrypt_cached(
    cache: &DataKeyCache,
    context: &EncryptionContext,
    plaintext: &[u8],
    options: &EncryptOptions,
) -> Result<Vec<u8>, Error> {
    options.refuse_signed("encrypt_cached")?;
    check_context(context)?;
    let (key, wrapped) = cache.data_key_for(context, plaintext.len() as u64).await?;
    let mut out = Vec::new();
    encrypt_inner(
        &key,
        &[wrapped],
        context,
        None,
        plaintext,
        options,
        &mut out,
    )?;
    Ok(out)
}

/// Encrypts `plaintext` under a data key the caller holds, sealing each
/// frame straight into the returned buffer.
pub fn encrypt_with_data_key(
    data_key: &DataKey,
    wrapped_keys: &[WrappedKey],
    context: &EncryptionContext,
    plaintext: &[u8],
    options: &EncryptOptions,
) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    encrypt_with_data_key_into(
        data_key,
        wrapped_keys,
        context,
        plaintext,
        options,
        &mut out,
    )?;
    Ok(out)
}

/// [`encrypt_with_data_key`] into `out`, which ends up holding exactly the
/// message. A buffer kept from one message to the next is written over,
/// not zeroed again first: for many messages in a row, the cheaper way.
/// After an error, what `out` holds is unspecified.
pub fn encrypt_with_data_key_into(
    data_key: &DataKey,
    wrapped_keys: &[WrappedKey],
    context: &EncryptionContext,
    plaintext: &[u8],
    options: &EncryptOptions,
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    options.refuse_signed("encrypt_with_data_key_into")?;
    check_context(context)?;
    encrypt_inner(
        data_key,
        wrapped_keys,
        context,
        None,
        plaintext,
        options,
        out,
    )
}

/// Room for a header beyond its context and wrapped keys, and for a
/// signature footer.
const HEADER_AND_FOOTER_ROOM: usize = 256;

fn encrypt_inner(
    data_key: &DataKey,
    wrapped_keys: &[WrappedKey],
    context: &EncryptionContext,
    signer: Option<Signer>,
    plaintext: &[u8],
    options: &EncryptOptions,
    buf: &mut Vec<u8>,
) -> Result<(), Error> {
    let fl = options.validate()?;
    let frames = plaintext.len() / fl + 1;
    let keys_len: usize = wrapped_keys
        .iter()
        .map(|k| k.provider_id.len() + k.provider_info.len() + k.ciphertext.len() + 6)
        .sum();
    let context_len: usize = context.iter().map(|(k, v)| k.len() + v.len() + 4).sum();
    let total = HEADER_AND_FOOTER_ROOM + context_len + keys_len + plaintext.len() + frames * 40;
    buf.reserve(total.saturating_sub(buf.len()));
    let mut out = Output::over(buf);
    let mut sealer = Sealer::start(data_key, wrapped_keys, context, signer, options, &mut out)?;
    // A plaintext that fills its last frame is followed by an empty final
    // frame: the Python SDK refuses a final frame of a whole frame length.
    let mut rest = plaintext;
    while rest.len() >= fl {
        let (frame, tail) = rest.split_at(fl);
        sealer.seal(frame, false, &mut out)?;
        rest = tail;
    }
    sealer.seal(rest, true, &mut out)?;
    out.finish();
    Ok(())
}
