//! Envelope encryption for Wharf.
//!
//! Every byte Wharf ships or keeps on disk is encrypted under a *data key*
//! that is itself wrapped by a *master key*. This crate holds:
//!
//! - [`KeyProvider`]: the one trait behind which master keys live. It
//!   generates a data key (plaintext and wrapped) and unwraps one, always
//!   under an [`EncryptionContext`]. A [`WrappedKey`] is exactly the AWS
//!   Encryption SDK's "encrypted data key" triple, so the same value goes
//!   into an SDK message header and into an at-rest file header.
//! - [`LocalKeyProvider`]: a 256-bit master key file (mode 0600) that wraps
//!   data keys as the AWS Encryption SDK's raw AES keyring does.
//! - [`atrest`]: the at-rest file format for append-only files
//!   ([`atrest::SealedWriter`], [`atrest::SealedReader`], [`atrest::rotate_file`]).
//! - [`DataKeyCache`]: reuses data keys within [`CacheLimits`] (age, bytes,
//!   messages) and counts the calls that reach the provider.
//! - [`DataKey`]: a 256-bit key in the clear, wiped from memory on drop.
//! - [`Error`]: every failure of this crate, with messages a user can act on.

#![warn(missing_docs)]

pub mod atrest;
mod cache;
mod context;
mod error;
mod hmac_sha512;
mod key;
pub mod kms;
mod local;
pub mod message;

pub use cache::{CacheLimits, CacheStats, DataKeyCache};
pub use context::serialize_context;
pub use error::Error;
pub use key::{DataKey, EncryptionContext, KeyProvider, WrappedKey, DATA_KEY_LEN};
pub use local::{LocalKeyProvider, KEY_NAMESPACE as LOCAL_KEY_NAMESPACE};
