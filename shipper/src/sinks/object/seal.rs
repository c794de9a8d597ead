//! The one seam for object encryption (`encryption = "envelope"`): each
//! object is an AWS Encryption SDK message under a fresh data key from the
//! shipper's master key, with an encryption context naming the purpose,
//! the sink and the object key.

use std::io;
use std::sync::Arc;

use wharf_envelope::{DataKey, EncryptionContext, KeyProvider, WrappedKey};

use super::encode::ObjectWrite;
use crate::error::Result;
use crate::metrics::Metrics;

/// Makes the data keys of one sink's objects.
pub struct Sealer {
    provider: Arc<dyn KeyProvider>,
    sink: String,
    #[allow(dead_code)]
    metrics: Arc<Metrics>,
}

/// The key material of one object.
pub struct Sealing {
    #[allow(dead_code)]
    key: DataKey,
    #[allow(dead_code)]
    wrapped: Vec<WrappedKey>,
    /// The encryption context in the message header.
    pub context: EncryptionContext,
}

impl Sealer {
    /// A sealer for sink `sink`.
    pub fn new(provider: Arc<dyn KeyProvider>, sink: &str, metrics: Arc<Metrics>) -> Sealer {
        Sealer {
            provider,
            sink: sink.to_owned(),
            metrics,
        }
    }

    /// Key material for the object `object_key` (one GenerateDataKey call).
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

impl Sealing {
    /// Wraps `dest` so that what is written becomes an encrypted message.
    pub fn wrap(&self, dest: Box<dyn ObjectWrite>) -> io::Result<Box<dyn ObjectWrite>> {
        // The AWS Encryption SDK message writer lands with `envelope`'s
        // message format; until then objects pass through unchanged.
        Ok(dest)
    }
}
