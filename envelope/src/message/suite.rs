//! Algorithm suites and the per-message key derivation.
//!
//! Both suites Wharf reads are committing: the data key is expanded with
//! HKDF-SHA512, salted with the 32-byte message id, into an AES-256-GCM key
//! (info = suite id ‖ `DERIVEKEY`) and a 32-byte commitment key (info =
//! `COMMITKEY`) that the header carries, so a message decrypts to one
//! plaintext under one data key only.

use aws_lc_rs::aead::{LessSafeKey, UnboundKey, AES_256_GCM};
use zeroize::Zeroize;

use crate::hmac_sha512::HmacSha512;

use crate::{DataKey, Error};

/// Length of the message id of version 2 messages.
pub const MESSAGE_ID_LEN: usize = 32;
/// Length of the key commitment carried in the header.
pub const COMMITMENT_LEN: usize = 32;
/// AES-GCM IV length.
pub(crate) const IV_LEN: usize = 12;
/// AES-GCM tag length.
pub(crate) const TAG_LEN: usize = 16;

/// The algorithm suites of the AWS Encryption SDK that Wharf reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AlgorithmSuite {
    /// 0x0478: AES-256-GCM, HKDF-SHA512, key commitment. What Wharf writes.
    Aes256GcmHkdfSha512Commit,
    /// 0x0578: the same plus an ECDSA P-384 signature over the message (the
    /// SDKs' default). Read only.
    Aes256GcmHkdfSha512CommitEcdsaP384,
}

impl AlgorithmSuite {
    /// The suite's 2-byte id as written in the header.
    pub fn id(self) -> u16 {
        match self {
            Self::Aes256GcmHkdfSha512Commit => 0x0478,
            Self::Aes256GcmHkdfSha512CommitEcdsaP384 => 0x0578,
        }
    }

    /// The suite with that id, or [`Error::UnsupportedSuite`].
    pub fn from_id(id: u16) -> Result<Self, Error> {
        match id {
            0x0478 => Ok(Self::Aes256GcmHkdfSha512Commit),
            0x0578 => Ok(Self::Aes256GcmHkdfSha512CommitEcdsaP384),
            suite => Err(Error::UnsupportedSuite { suite }),
        }
    }

    /// Whether messages of this suite end with an ECDSA signature.
    pub fn is_signed(self) -> bool {
        matches!(self, Self::Aes256GcmHkdfSha512CommitEcdsaP384)
    }
}

/// The AES-256-GCM key and the commitment of one message.
pub(crate) struct MessageKeys {
    pub(crate) aead: LessSafeKey,
    pub(crate) commitment: [u8; COMMITMENT_LEN],
}

/// Derives a message's encryption key and key commitment from its data key,
/// exactly as the SDK does for committing suites: HKDF-SHA512 (RFC 5869)
/// with salt = message id, IKM = data key, L = 32.
///
/// Written on HMAC-SHA512 directly: for L = 32 the expansion is a single
/// block, `T(1) = HMAC(PRK, info ‖ 0x01)`, and one PRK key serves both
/// outputs; with [`HmacSha512`] that is the ten SHA-512 compressions the
/// derivation needs and little more (see `benches/message_costs.rs`).
pub(crate) fn derive_keys(
    data_key: &DataKey,
    suite: AlgorithmSuite,
    message_id: &[u8; MESSAGE_ID_LEN],
) -> MessageKeys {
    let mut prk = HmacSha512::new(message_id).sign(&[data_key.as_bytes()]);
    let expand_key = HmacSha512::new(&prk);
    prk.zeroize();
    let mut key = expand_key.sign(&[&suite.id().to_be_bytes(), b"DERIVEKEY", &[1]]);
    let mut commitment = [0u8; COMMITMENT_LEN];
    commitment.copy_from_slice(&expand_key.sign(&[b"COMMITKEY", &[1]])[..COMMITMENT_LEN]);
    let aead = LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, &key[..32]).expect("a 32-byte key is a valid AES-256 key"),
    );
    key.zeroize();
    MessageKeys { aead, commitment }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suite_ids_round_trip_and_others_are_refused() {
        for s in [
            AlgorithmSuite::Aes256GcmHkdfSha512Commit,
            AlgorithmSuite::Aes256GcmHkdfSha512CommitEcdsaP384,
        ] {
            assert_eq!(AlgorithmSuite::from_id(s.id()).unwrap(), s);
        }
        let err = AlgorithmSuite::from_id(0x0178).unwrap_err();
        assert!(err.to_string().contains("0x0178"), "{err}");
    }

    /// The hand-rolled HKDF matches aws-lc-rs's.
    #[test]
    fn derivation_matches_rfc5869_hkdf() {
        use aws_lc_rs::hkdf::{KeyType, Salt, HKDF_SHA512};
        struct Len;
        impl KeyType for Len {
            fn len(&self) -> usize {
                32
            }
        }
        let k = DataKey::from_bytes([5; 32]);
        let id = [6; 32];
        let prk = Salt::new(HKDF_SHA512, &id).extract(k.as_bytes());
        let mut want = [0u8; 32];
        prk.expand(&[b"COMMITKEY"], Len)
            .unwrap()
            .fill(&mut want)
            .unwrap();
        let got = derive_keys(&k, AlgorithmSuite::Aes256GcmHkdfSha512Commit, &id);
        assert_eq!(got.commitment, want);
    }

    #[test]
    fn commitment_depends_on_key_and_message_id() {
        let k = DataKey::from_bytes([7; 32]);
        let s = AlgorithmSuite::Aes256GcmHkdfSha512Commit;
        let a = derive_keys(&k, s, &[1; 32]).commitment;
        assert_eq!(a, derive_keys(&k, s, &[1; 32]).commitment);
        assert_ne!(a, derive_keys(&k, s, &[2; 32]).commitment);
        assert_ne!(
            a,
            derive_keys(&DataKey::from_bytes([8; 32]), s, &[1; 32]).commitment
        );
    }
}
