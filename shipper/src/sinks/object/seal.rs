//! The one seam for object encryption (`encryption = "envelope"`): each
//! object is an AWS Encryption SDK message (v2, suite 0x0478, framed)
//! under a data key from the shipper's master key, with an encryption
//! context naming the purpose, the sink and the object key, so AWS's own
//! SDKs and CLI (and `wharf decrypt`) decrypt it.

use std::io::{self, Write};
use std::sync::Arc;

use wharf_envelope::message::{EncryptOptions, Encryptor};
use wharf_envelope::{DataKey, EncryptionContext, KeyProvider, WrappedKey};

use super::encode::ObjectWrite;
use crate::error::Result;

/// Plaintext bytes per message frame: large frames cost less per byte.
pub const FRAME_LENGTH: u32 = 64 << 10;

/// Makes the data keys of one sink's objects.
pub struct Sealer {
    provider: Arc<dyn KeyProvider>,
    sink: String,
}

/// The key material of one object.
pub struct Sealing {
    key: DataKey,
    wrapped: Vec<WrappedKey>,
    /// The encryption context in the message header.
    pub context: EncryptionContext,
}

impl Sealer {
    /// A sealer for sink `sink`.
    pub fn new(provider: Arc<dyn KeyProvider>, sink: &str) -> Sealer {
        Sealer {
            provider,
            sink: sink.to_owned(),
        }
    }

    /// Key material for the object `object_key`.
    pub async fn start(&self, object_key: &str) -> Result<Sealing> {
        let mut context = EncryptionContext::new();
        context.insert("purpose".into(), "wharf-shipper-object".into());
        context.insert("sink".into(), self.sink.clone());
        context.insert("object".into(), object_key.into());
        let (key, wrapped) = self.provider.generate(&context).await?;
        Ok(Sealing {
            key,
            wrapped: vec![wrapped],
            context,
        })
    }
}

struct Sealed(Encryptor<Box<dyn ObjectWrite>>);

impl Write for Sealed {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl ObjectWrite for Sealed {
    fn finish(self: Box<Self>) -> io::Result<()> {
        self.0.finish().map_err(io::Error::other)?.finish()
    }
}

impl Sealing {
    /// Wraps `dest` so that what is written becomes an encrypted message.
    pub fn wrap(&self, dest: Box<dyn ObjectWrite>) -> io::Result<Box<dyn ObjectWrite>> {
        let opts = EncryptOptions::default().frame_length(FRAME_LENGTH);
        let enc = Encryptor::with_data_key(dest, &self.key, &self.wrapped, &self.context, &opts)
            .map_err(io::Error::other)?;
        Ok(Box::new(Sealed(enc)))
    }
}
