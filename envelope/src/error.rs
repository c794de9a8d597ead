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
