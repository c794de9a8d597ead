//! The ECDSA P-384 signature of suite 0x0578.
//!
//! The signer's public key is the base64 compressed point in the context
//! entry `aws-crypto-public-key`; the footer (u16 length, DER signature)
//! signs SHA-384 of every byte from the header's first to the body's last.
//! The digest is kept incrementally, so verifying needs no buffering.

use aws_lc_rs::digest::{Context, SHA384};
use aws_lc_rs::signature::{UnparsedPublicKey, ECDSA_P384_SHA384_ASN1};
use base64::Engine;

use super::header::{Header, PUBLIC_KEY_CONTEXT_KEY};
use crate::Error;

/// A running digest of the message and the key that must have signed it.
pub(crate) struct SignatureCheck {
    digest: Context,
    public_key: Vec<u8>,
}

impl SignatureCheck {
    /// For a signed suite, starts the digest with the header; `None` for an
    /// unsigned one.
    pub(crate) fn for_header(header: &Header) -> Result<Option<Self>, Error> {
        if !header.suite.is_signed() {
            return Ok(None);
        }
        let encoded =
            header
                .context
                .get(PUBLIC_KEY_CONTEXT_KEY)
                .ok_or_else(|| Error::Signature {
                    reason: format!("the context has no `{PUBLIC_KEY_CONTEXT_KEY}` entry"),
                })?;
        let public_key = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| Error::Signature {
                reason: format!("the `{PUBLIC_KEY_CONTEXT_KEY}` context entry is not base64"),
            })?;
        let mut digest = Context::new(&SHA384);
        digest.update(&header.raw);
        digest.update(&header.auth_tag);
        Ok(Some(Self { digest, public_key }))
    }

    pub(crate) fn update(&mut self, bytes: &[u8]) {
        self.digest.update(bytes);
    }

    /// Checks the footer's signature against everything hashed so far.
    pub(crate) fn verify(self, signature: &[u8]) -> Result<(), Error> {
        let digest = self.digest.finish();
        UnparsedPublicKey::new(&ECDSA_P384_SHA384_ASN1, &self.public_key)
            .verify_digest(&digest, signature)
            .map_err(|_| Error::Signature {
                reason: "it was not made by the key in the message's `aws-crypto-public-key` over these bytes: the message was altered".into(),
            })
    }
}
