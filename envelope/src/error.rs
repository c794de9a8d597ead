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
}
