//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can stop the shipper or one of its parts. Messages read
/// as sentences, name the key, file or bucket at fault and say what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration could not be read or parsed (unknown key, wrong type).
    #[error("configuration: {0}")]
    Config(String),
    /// A configuration value is impossible.
    #[error("configuration key `{key}`: {reason}")]
    Invalid {
        /// Dotted path of the key, e.g. `sinks.s3.bucket`.
        key: String,
        /// Why the value cannot work and what would.
        reason: String,
    },
    /// An I/O error on a named path.
    #[error("{path}: {source}")]
    Io {
        /// The file or socket involved.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// Another process is listening on the socket path.
    #[error("another process is already listening on {0}; stop it or set `sources.<name>.path` to another path")]
    SocketInUse(PathBuf),
    /// A buffer file is damaged beyond torn-tail recovery.
    #[error("buffer file {path} is damaged: {reason}")]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Encryption or decryption failed.
    #[error(transparent)]
    Envelope(#[from] wharf_envelope::Error),
    /// A sink's destination refused a request in a way retrying cannot fix.
    #[error("sink `{sink}`: {message}")]
    Sink {
        /// The sink's name in the configuration.
        sink: String,
        /// What went wrong and what to do about it.
        message: String,
    },
    /// The buffer is shutting down and takes no more records.
    #[error("the buffer is shutting down")]
    ShuttingDown,
}

impl Error {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// An impossible configuration value.
    pub fn invalid(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Invalid {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// Shorthand for this crate's results.
pub type Result<T, E = Error> = std::result::Result<T, E>;
