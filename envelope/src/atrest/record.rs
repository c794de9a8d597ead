//! Record headers: what precedes each sealed body in the data region.
//!
//! ```text
//! offset len  field
//! 0      4    sealed length (u32 BE): plaintext length + 16 (GCM tag)
//! 4      1    kind: `S` session, `D` data, `E` end (session differs from
//!             the others in at least 3 bits, so one flipped bit cannot
//!             change a record's header length)
//! 5      8    number (u64 BE): data/end: frame number; session: frames before it
//! 13     8    link (u64 BE): data/end: position of its session record;
//!             session: position of the previous session record, or u64::MAX
//! 21     32   session salt (session records only)
//! 21|53  4    CRC-32C of the bytes above
//! ```

use super::crypto::{crc32c, SESSION_SALT_LEN, TAG_LEN};

/// Record kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Starts an append session: a new salt, hence a new key.
    Session,
    /// One frame of the caller's data.
    Data,
    /// The final frame: the file was finished and ends here.
    End,
}

impl Kind {
    fn byte(self) -> u8 {
        match self {
            Kind::Session => b'S',
            Kind::Data => b'D',
            Kind::End => b'E',
        }
    }
}

/// Length of the fields common to every record header (without CRC).
pub(crate) const BASE_LEN: usize = 21;
/// Header length of a data or end record.
pub(crate) const DATA_HEADER_LEN: usize = BASE_LEN + 4;
/// Header length of a session record.
pub(crate) const SESSION_HEADER_LEN: usize = BASE_LEN + SESSION_SALT_LEN + 4;
/// `link` of the first session record.
pub(crate) const NO_SESSION: u64 = u64::MAX;

/// A record header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RecordHeader {
    pub(crate) sealed_len: u32,
    pub(crate) kind: Kind,
    pub(crate) number: u64,
    pub(crate) link: u64,
    pub(crate) salt: Option<[u8; SESSION_SALT_LEN]>,
}

impl RecordHeader {
    /// The header bytes without the CRC (they go into the AAD).
    pub(crate) fn signed_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(SESSION_HEADER_LEN);
        out.extend_from_slice(&self.sealed_len.to_be_bytes());
        out.push(self.kind.byte());
        out.extend_from_slice(&self.number.to_be_bytes());
        out.extend_from_slice(&self.link.to_be_bytes());
        if let Some(salt) = &self.salt {
            out.extend_from_slice(salt);
        }
        out
    }

    /// The full header bytes.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = self.signed_bytes();
        let crc = crc32c(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    /// Header length on disk.
    pub(crate) fn len(&self) -> usize {
        if self.salt.is_some() {
            SESSION_HEADER_LEN
        } else {
            DATA_HEADER_LEN
        }
    }

    /// Header plus body length on disk.
    pub(crate) fn record_len(&self) -> u64 {
        self.len() as u64 + u64::from(self.sealed_len)
    }
}

/// Why a record header could not be parsed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ParseError {
    /// More bytes are needed; this many in total.
    Short(usize),
    /// The header is damaged: (offset within the header, reason).
    Bad(usize, String),
}

/// Parses a record header from the start of `bytes`, which may hold more.
pub(crate) fn parse(bytes: &[u8]) -> Result<RecordHeader, ParseError> {
    if bytes.len() < BASE_LEN {
        return Err(ParseError::Short(DATA_HEADER_LEN));
    }
    let kind = match bytes[4] {
        b'S' => Kind::Session,
        b'D' => Kind::Data,
        b'E' => Kind::End,
        other => return Err(ParseError::Bad(4, format!("unknown record kind {other}"))),
    };
    let len = if kind == Kind::Session {
        SESSION_HEADER_LEN
    } else {
        DATA_HEADER_LEN
    };
    if bytes.len() < len {
        return Err(ParseError::Short(len));
    }
    let stored = u32::from_be_bytes(bytes[len - 4..len].try_into().expect("4 bytes"));
    if crc32c(&bytes[..len - 4]) != stored {
        return Err(ParseError::Bad(
            0,
            "the record header's checksum does not match".into(),
        ));
    }
    let be64 = |at: usize| u64::from_be_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    let header = RecordHeader {
        sealed_len: u32::from_be_bytes(bytes[..4].try_into().expect("4 bytes")),
        kind,
        number: be64(5),
        link: be64(13),
        salt: (kind == Kind::Session).then(|| {
            bytes[BASE_LEN..BASE_LEN + SESSION_SALT_LEN]
                .try_into()
                .expect("32 bytes")
        }),
    };
    if (header.sealed_len as usize) < TAG_LEN {
        return Err(ParseError::Bad(
            0,
            format!(
                "sealed length {} is shorter than a GCM tag",
                header.sealed_len
            ),
        ));
    }
    if kind != Kind::Data && header.sealed_len as usize != TAG_LEN {
        return Err(ParseError::Bad(
            0,
            "a session or end record carries data".into(),
        ));
    }
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_detects_every_bit_flip() {
        for h in [
            RecordHeader {
                sealed_len: 116,
                kind: Kind::Data,
                number: 7,
                link: 4128,
                salt: None,
            },
            RecordHeader {
                sealed_len: 16,
                kind: Kind::Session,
                number: 7,
                link: NO_SESSION,
                salt: Some([5; 32]),
            },
        ] {
            let bytes = h.encode();
            assert_eq!(bytes.len(), h.len());
            assert_eq!(parse(&bytes).unwrap(), h);
            for bit in 0..bytes.len() * 8 {
                let mut b = bytes.clone();
                b[bit / 8] ^= 1 << (bit % 8);
                assert!(parse(&b).is_err(), "flip of bit {bit} went unnoticed");
            }
            for cut in 0..bytes.len() {
                assert!(matches!(
                    parse(&bytes[..cut]),
                    Err(ParseError::Short(_)) | Err(ParseError::Bad(..))
                ));
            }
        }
    }
}
