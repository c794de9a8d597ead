//! The one error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong in the broker's telemetry, phrased so that
/// the operator knows what to change.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The spool directory could not be created or read.
    #[error("cannot use the telemetry spool directory {}: {source}; check that it exists and is writable by the broker, or set another spool directory", path.display())]
    SpoolDir {
        /// The directory.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// Another process holds the spool directory.
    #[error("the telemetry spool directory {} is in use by another process; give each broker its own spool directory", path.display())]
    SpoolLocked {
        /// The directory.
        path: PathBuf,
    },
    /// A spool segment could not be written or read.
    #[error("telemetry spool file {} failed: {source}", path.display())]
    SpoolFile {
        /// The segment file.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// A spool segment could not be sealed, opened or authenticated.
    #[error("telemetry spool file {}: {source}", path.display())]
    SpoolSealed {
        /// The segment file.
        path: PathBuf,
        /// What the at-rest format reported.
        source: wharf_envelope::Error,
    },
    /// A spool segment holds frames out of order.
    #[error("telemetry spool file {} is damaged at frame {frame}: {reason}", path.display())]
    SpoolCorrupt {
        /// The segment file.
        path: PathBuf,
        /// The zero-based frame number where reading stopped.
        frame: u64,
        /// What was wrong.
        reason: String,
    },
    /// A configuration value is impossible.
    #[error("telemetry setting `{key}` is invalid: {reason}")]
    Config {
        /// The setting's name.
        key: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// The telemetry thread could not be started.
    #[error("cannot start the telemetry thread: {0}")]
    Thread(std::io::Error),
    /// The Prometheus endpoint could not bind its address.
    #[error("cannot listen for Prometheus scrapes on {addr}: {source}; pick another port with the metrics listen address")]
    Bind {
        /// The address asked for.
        addr: String,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The data volume could not be measured.
    #[error("cannot measure the disk holding {}: {source}", path.display())]
    Disk {
        /// The data directory.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The OTLP export could not be set up or flushed.
    #[error("OTLP export: {0}")]
    Otlp(String),
    /// An EnvFilter directive string did not parse.
    #[error("log level directives `{directives}` are invalid: {reason}; use e.g. `info,wharf_broker::storage=debug`")]
    LogDirectives {
        /// The directives given.
        directives: String,
        /// The parser's explanation.
        reason: String,
    },
}
