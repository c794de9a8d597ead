//! The AWS Encryption SDK's serialization of an encryption context.
//!
//! Used as the message header's context field and as the AAD of the raw AES
//! keyring (the `local` provider): an empty context serializes to no bytes;
//! otherwise a big-endian `u16` pair count, then for each pair in ascending
//! byte order of the key, a `u16` key length, the key, a `u16` value length
//! and the value.

use crate::EncryptionContext;

/// Serializes `context` as the AWS Encryption SDK does. Returns `None` when
/// a key, a value or the pair count does not fit the format's `u16` lengths.
pub fn serialize_context(context: &EncryptionContext) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    write_context(context, |bytes| out.extend_from_slice(bytes))?;
    Some(out)
}

/// Feeds the serialized `context` to `put` piece by piece, so that it can be
/// written straight into a message header or only counted. Returns `None`
/// (having fed part of it) when a key, a value or the pair count does not
/// fit the format's `u16` lengths.
pub(crate) fn write_context(context: &EncryptionContext, mut put: impl FnMut(&[u8])) -> Option<()> {
    if context.is_empty() {
        return Some(());
    }
    put(&u16::try_from(context.len()).ok()?.to_be_bytes());
    // BTreeMap<String, _> iterates in ascending byte order of the keys.
    for (k, v) in context {
        for field in [k.as_bytes(), v.as_bytes()] {
            put(&u16::try_from(field.len()).ok()?.to_be_bytes());
            put(field);
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_context_is_no_bytes() {
        assert_eq!(serialize_context(&EncryptionContext::new()), Some(vec![]));
    }

    #[test]
    fn pairs_are_sorted_and_length_prefixed() {
        let ctx: EncryptionContext = [
            ("b".to_string(), "2".to_string()),
            ("a".to_string(), "xy".to_string()),
        ]
        .into();
        assert_eq!(
            serialize_context(&ctx).unwrap(),
            [0, 2, 0, 1, b'a', 0, 2, b'x', b'y', 0, 1, b'b', 0, 1, b'2']
        );
    }
}
