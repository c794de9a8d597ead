//! Data keys, wrapped keys and the [`KeyProvider`] trait.

use std::collections::BTreeMap;
use std::fmt;

use zeroize::Zeroizing;

use crate::Error;

/// Length in bytes of every data key: AES-256.
pub const DATA_KEY_LEN: usize = 32;

/// Key/value pairs bound to a data key and to every message or file sealed
/// under it (e.g. `cluster`, `purpose`, `object`). Sorted, as the AWS
/// Encryption SDK serializes it.
pub type EncryptionContext = BTreeMap<String, String>;

/// A 256-bit data key in the clear. Wiped from memory when dropped; never
/// printed.
#[derive(Clone)]
pub struct DataKey(Zeroizing<[u8; DATA_KEY_LEN]>);

impl DataKey {
    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: [u8; DATA_KEY_LEN]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Builds a key from a slice, refusing any length but [`DATA_KEY_LEN`].
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let arr: [u8; DATA_KEY_LEN] = bytes.try_into().ok()?;
        Some(Self::from_bytes(arr))
    }

    /// A fresh key from the system's secure random generator.
    pub fn random() -> Self {
        let mut bytes = [0u8; DATA_KEY_LEN];
        aws_lc_rs::rand::fill(&mut bytes).expect("the system random generator failed");
        Self::from_bytes(bytes)
    }

    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8; DATA_KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(..)")
    }
}

/// A data key wrapped by a master key: the AWS Encryption SDK's
/// "encrypted data key". For KMS, `provider_id` is `aws-kms`,
/// `provider_info` the key ARN and `ciphertext` KMS's ciphertext blob; for a
/// raw AES master key, `provider_id` is the key namespace and
/// `provider_info` the key name followed by the SDK's tag length, IV length
/// and IV.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKey {
    /// Who wrapped it.
    pub provider_id: String,
    /// Which key of that provider, in the provider's own encoding.
    pub provider_info: Vec<u8>,
    /// The wrapped key bytes.
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WrappedKey")
            .field("provider_id", &self.provider_id)
            .field(
                "provider_info",
                &String::from_utf8_lossy(&self.provider_info),
            )
            .field("ciphertext_len", &self.ciphertext.len())
            .finish()
    }
}

/// A master key: it makes data keys and unwraps them, under an encryption
/// context that must match on both sides.
#[async_trait::async_trait]
pub trait KeyProvider: Send + Sync + fmt::Debug {
    /// A short human description for logs and errors, e.g. `local key
    /// /var/lib/wharf/master.key` or the KMS key ARN.
    fn describe(&self) -> String;

    /// Creates a new data key and returns it in the clear and wrapped.
    async fn generate(&self, context: &EncryptionContext) -> Result<(DataKey, WrappedKey), Error>;

    /// Recovers the data key from a wrapped key made by this master key
    /// under the same context.
    async fn unwrap(
        &self,
        wrapped: &WrappedKey,
        context: &EncryptionContext,
    ) -> Result<DataKey, Error>;

    /// Wraps an existing data key (used by rotation to re-wrap file headers
    /// under another master key without touching the data).
    async fn wrap(&self, key: &DataKey, context: &EncryptionContext) -> Result<WrappedKey, Error>;
}
