//! The crate's one error type.

/// Everything that can go wrong while wrapping, unwrapping, encrypting or
/// decrypting. Messages read as sentences and name the thing at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A data key could not be unwrapped: wrong master key, wrong
    /// encryption context, or a damaged wrapped key.
    #[error("cannot unwrap the data key with {provider}: {reason}")]
    Unwrap {
        /// The provider that tried (e.g. `local /path/key` or a KMS key ARN).
        provider: String,
        /// Why it failed.
        reason: String,
    },
    /// The wrapped key was made by another kind of provider than the one asked.
    #[error("the data key was wrapped by provider `{found}`, not by `{expected}`")]
    WrongProvider {
        /// Provider id this provider answers to.
        expected: String,
        /// Provider id recorded in the wrapped key.
        found: String,
    },
    /// An I/O error on a named path.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: std::path::PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The message ended before a complete field: cut short in transit or on disk.
    #[error("the message is truncated: it ends inside the {what}")]
    MessageTruncated {
        /// The field being read when the input ran out.
        what: &'static str,
    },
    /// A field of the message has an impossible value.
    #[error("the message is malformed: {reason}")]
    Malformed {
        /// What is wrong, naming the field.
        reason: String,
    },
    /// The message uses a format version Wharf does not read.
    #[error("unsupported message format version {version:#04x}: Wharf reads AWS Encryption SDK version 2 messages (0x02), as written by the SDKs since 2.0 with a committing suite")]
    UnsupportedVersion {
        /// The version byte found.
        version: u8,
    },
    /// The message uses an algorithm suite Wharf does not read.
    #[error("unsupported algorithm suite {suite:#06x}: Wharf reads 0x0478 (AES-256-GCM, HKDF-SHA512, key commitment) and 0x0578 (the same with an ECDSA P-384 signature)")]
    UnsupportedSuite {
        /// The suite id found.
        suite: u16,
    },
    /// The message uses a feature of the format Wharf does not implement.
    #[error("unsupported message: {feature}")]
    Unsupported {
        /// What is not supported and what to do instead.
        feature: String,
    },
    /// A length or count in the input is above the limit Wharf accepts, so
    /// it was refused before any memory was allocated for it.
    #[error("the message's {what} is {value}, above Wharf's limit of {limit}")]
    LimitExceeded {
        /// The length or count at fault.
        what: &'static str,
        /// Its value in the input.
        value: u64,
        /// The largest value accepted.
        limit: u64,
    },
    /// The key commitment in the header does not match the data key: the
    /// message was made with another key or its header was altered.
    #[error("the message's key commitment does not match the data key: the header was altered or the data key is not the one the message was made with")]
    CommitmentMismatch,
    /// The header authentication tag does not verify.
    #[error("the message header failed authentication: it was altered (e.g. its encryption context) or the data key is wrong")]
    HeaderAuthentication,
    /// A frame's authentication tag does not verify.
    #[error("frame {sequence} of the message failed authentication: the message was altered, reordered or spliced")]
    FrameAuthentication {
        /// The frame's sequence number (the first frame is 1).
        sequence: u32,
    },
    /// The message's ECDSA signature does not verify.
    #[error("the message signature does not verify: {reason}")]
    Signature {
        /// Why.
        reason: String,
    },
    /// None of the message's encrypted data keys could be unwrapped.
    #[error("none of the message's {count} encrypted data key(s) could be unwrapped: {attempts}")]
    NoDataKey {
        /// How many encrypted data keys the message has.
        count: usize,
        /// One sentence per key tried, joined with `; `.
        attempts: String,
    },
    /// The message's encryption context does not hold a pair the caller
    /// required.
    #[error("wrong encryption context: expected `{key}` = `{expected}`, the message has {found}")]
    WrongContext {
        /// The required key.
        key: String,
        /// The required value.
        expected: String,
        /// What the message holds for that key (quoted), or `no such key`.
        found: String,
    },
    /// An encryption context given for encryption cannot be used.
    #[error("invalid encryption context: {reason}")]
    InvalidContext {
        /// Why.
        reason: String,
    },
    /// An option given to the encryptor or decryptor is out of range.
    #[error("invalid option: {reason}")]
    InvalidOption {
        /// Which option and its allowed range.
        reason: String,
    },
    /// AWS KMS refused or failed a request.
    #[error("AWS KMS {operation} with key {key} failed: {reason}")]
    Kms {
        /// The KMS operation (GenerateDataKey, Encrypt, Decrypt).
        operation: &'static str,
        /// The key ARN (or `discovery`).
        key: String,
        /// What KMS said, classified: access denied, key not found, wrong
        /// encryption context, unreachable endpoint, ...
        reason: String,
    },
    /// Reading or writing the message stream failed.
    #[error("I/O error on the message stream: {0}")]
    Stream(#[source] std::io::Error),
    /// The input continues after the end of the message.
    #[error("{count} unexpected byte(s) after the end of the message")]
    TrailingData {
        /// How many bytes follow the message.
        count: usize,
    },
    /// A local master key file is readable or writable by group or others.
    #[error(
        "the local key file {path} is readable or writable by group or others (mode {mode:03o}); \
         only its owner may access it: run `chmod 600 {path}`"
    )]
    KeyFilePermissions {
        /// The key file.
        path: std::path::PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A local master key file exists but does not hold a key.
    #[error("the local key file {path} is not a Wharf key: {reason}")]
    KeyFile {
        /// The key file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// An at-rest file is damaged or was tampered with.
    #[error("{path}: damaged or tampered at byte offset {offset}: {reason}")]
    Corrupt {
        /// The file.
        path: std::path::PathBuf,
        /// Where the bad bytes start.
        offset: u64,
        /// What check failed.
        reason: String,
    },
    /// A finished at-rest file was expected, but it ends before its final frame.
    #[error(
        "{path}: the file ends at byte offset {offset} without its final frame; \
         it was truncated (or never finished)"
    )]
    Truncated {
        /// The file.
        path: std::path::PathBuf,
        /// Where the readable data ends.
        offset: u64,
    },
    /// An at-rest file was sealed under another encryption context than the
    /// one the caller expects (e.g. a segment of another topic).
    #[error("{path}: the file was sealed with encryption context {found}, expected {expected}")]
    ContextMismatch {
        /// The file.
        path: std::path::PathBuf,
        /// The context the caller asked for.
        expected: String,
        /// The context recorded in the file header.
        found: String,
    },
    /// An encryption context too large for the format's length fields.
    #[error(
        "the encryption context is too large: at most 65,535 pairs of at most 65,535 bytes each"
    )]
    ContextTooLarge,
    /// A frame larger than the writer's or the file's limit.
    #[error("a frame of {len} bytes exceeds the limit of {max} bytes per frame")]
    FrameTooLarge {
        /// Size asked for.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// The file already holds the most frames one key may seal.
    #[error("{path}: the file holds 2^32 - 1 frames, the most one key may seal; start a new file")]
    TooManyFrames {
        /// The file.
        path: std::path::PathBuf,
    },
    /// Append was asked of a file that was finished.
    #[error(
        "{path}: the file was finished (it ends with its final frame) and cannot be appended to"
    )]
    FileFinished {
        /// The file.
        path: std::path::PathBuf,
    },
    /// Rotation produced a header that does not fit the room reserved for it.
    #[error(
        "{path}: the re-wrapped header needs {needed} bytes but the file reserves {available}; \
         the new master key's wrapped keys are too large for this file"
    )]
    HeaderSlotTooSmall {
        /// The file.
        path: std::path::PathBuf,
        /// Bytes the new header slot needs.
        needed: usize,
        /// Bytes the file reserves per slot.
        available: usize,
    },
}
