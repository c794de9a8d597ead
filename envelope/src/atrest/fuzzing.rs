//! Entry points for the cargo-fuzz targets in `/fuzz` (feature `fuzzing`):
//! the header and record parsers on raw bytes, without files or keys.

use super::header::{parse_context, Preamble, RawSlot};
use super::record;

/// Parses a file's header structure (preamble, both slots, their bodies
/// and contexts) as a reader does before any key is involved.
pub fn parse_header(bytes: &[u8]) -> Result<(), String> {
    let preamble = Preamble::parse(bytes).map_err(|(_, why)| why)?;
    for index in 0..2 {
        let offset = preamble.slot_offset(index);
        let end = offset + u64::from(preamble.slot_len);
        let slot = bytes
            .get(offset as usize..end as usize)
            .ok_or("the header is cut short")?;
        let raw = RawSlot {
            index,
            offset,
            bytes: slot.to_vec(),
        };
        if !raw.is_empty() {
            raw.parse().map_err(|(_, why)| why)?;
        }
    }
    Ok(())
}

/// Parses one record header from the start of `bytes`.
pub fn parse_record_header(bytes: &[u8]) -> Result<u64, String> {
    match record::parse(bytes) {
        Ok(h) => Ok(h.record_len()),
        Err(record::ParseError::Short(n)) => Err(format!("needs {n} bytes")),
        Err(record::ParseError::Bad(_, why)) => Err(why),
    }
}

/// Parses an encryption context in the SDK's serialization.
pub fn parse_context_bytes(bytes: &[u8]) -> Result<usize, String> {
    parse_context(bytes)
        .map(|c| c.len())
        .map_err(|(_, why)| why)
}
