//! Sources: where records come from. One kind so far, the Unix socket of
//! the wire format (docs/socket-format.md).

pub mod dead_letter;
pub mod parse;
pub mod socket;

use crate::error::Result;
pub use socket::SocketConfig;

/// A `[sources.NAME]` table.
#[derive(Debug, Clone)]
pub enum SourceConfig {
    /// NDJSON over a Unix stream socket.
    Socket(SocketConfig),
}

impl SourceConfig {
    /// Refuses impossible values; `key` is e.g. `sources.broker`.
    pub fn validate(&self, key: &str) -> Result<()> {
        match self {
            SourceConfig::Socket(c) => c.validate(key),
        }
    }
}
