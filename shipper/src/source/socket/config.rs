//! `[sources.NAME]` with `type = "socket"`.

use std::path::PathBuf;

use serde::Deserialize;

use crate::config::ByteSize;
use crate::error::{Error, Result};

/// A Unix stream socket speaking the NDJSON wire format.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SocketConfig {
    /// Always `"socket"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Path of the socket. A stale socket there is replaced; a live one
    /// (another process accepting) is refused.
    pub path: PathBuf,
    /// File mode of the socket, in octal (default `"0660"`: owner and group).
    #[serde(default = "default_mode")]
    pub mode: String,
    /// Longest accepted line, enforced while reading (default 1 MiB).
    #[serde(default = "default_max_line")]
    pub max_line_bytes: ByteSize,
    /// Most clients connected at once; more wait to be accepted.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
}

fn default_mode() -> String {
    "0660".into()
}
fn default_max_line() -> ByteSize {
    ByteSize(1 << 20)
}
fn default_max_connections() -> usize {
    1024
}

impl SocketConfig {
    /// The mode as bits.
    pub fn mode_bits(&self) -> u32 {
        u32::from_str_radix(self.mode.trim_start_matches("0o"), 8).unwrap_or(0o660)
    }

    pub(crate) fn validate(&self, key: &str) -> Result<()> {
        match u32::from_str_radix(self.mode.trim_start_matches("0o"), 8) {
            Ok(m) if m <= 0o777 && m & 0o600 == 0o600 => {}
            _ => {
                return Err(Error::invalid(
                    format!("{key}.mode"),
                    format!(
                        "`{}` is not an octal mode the owner can read and write, e.g. \"0660\"",
                        self.mode
                    ),
                ))
            }
        }
        if self.path.as_os_str().is_empty() {
            return Err(Error::invalid(format!("{key}.path"), "is empty"));
        }
        // sun_path holds 108 bytes including the terminating NUL.
        if self.path.as_os_str().len() > 107 {
            return Err(Error::invalid(
                format!("{key}.path"),
                "is longer than the 107 bytes a Unix socket path may have; use a shorter path",
            ));
        }
        if self.max_line_bytes.0 < 1024 || self.max_line_bytes.0 > 64 << 20 {
            return Err(Error::invalid(
                format!("{key}.max_line_bytes"),
                "must be between 1 KiB and 64 MiB",
            ));
        }
        if self.max_connections == 0 {
            return Err(Error::invalid(
                format!("{key}.max_connections"),
                "must be at least 1",
            ));
        }
        Ok(())
    }
}
