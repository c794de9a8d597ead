//! The AWS Encryption SDK message format, version 2.
//!
//! Wharf writes framed messages of suite 0x0478 (AES-256-GCM, HKDF-SHA512,
//! key commitment) and reads 0x0478 and 0x0578 (the same plus an ECDSA
//! P-384 signature, the SDKs' default), so AWS's SDKs and CLI decrypt what
//! Wharf ships and Wharf decrypts what they write. See
//! `docs/message-format.md` for the layout and Wharf's limits.
//!
//! - [`Encryptor`] (a `Write`) and [`Decryptor`] (a `Read`) stream a message
//!   in memory bounded by one frame.
//! - [`encrypt`] / [`decrypt`] do a whole message in memory.
//! - [`Header`] is a parsed header; [`read_header`] reads one.

mod decrypt;
mod encrypt;
mod frame;
mod header;
mod signature;
mod source;
mod suite;

pub use decrypt::{
    check_expected_context, decrypt, decrypt_with_data_key, decrypt_with_data_key_into,
    read_header, Decrypted, Decryptor,
};
pub use encrypt::{
    encrypt, encrypt_cached, encrypt_with_data_key, encrypt_with_data_key_into,
    encrypt_with_options, EncryptOptions, Encryptor, DEFAULT_FRAME_LENGTH,
};
pub use header::{
    parse_context, Header, FORMAT_VERSION, MAX_ENCRYPTED_DATA_KEYS, MAX_FRAME_LENGTH,
    PUBLIC_KEY_CONTEXT_KEY,
};
pub use suite::{AlgorithmSuite, COMMITMENT_LEN, MESSAGE_ID_LEN};

#[cfg(test)]
mod tests;
