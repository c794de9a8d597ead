//! Rotation: re-wrap a file's data key under another master key without
//! touching its frames.
//!
//! The new header goes into the slot not in use, with the next generation,
//! and is synced before the old slot is zeroed. A crash at any point leaves
//! at least one slot that authenticates; running the rotation again
//! finishes the job (a slot already wrapped by the new key is recognised,
//! and a slot torn by the crash is overwritten).

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::crypto::header_mac_key;
use super::header::{encode_slot, read_raw, verify_slot, Header, RawSlot, SlotBody};
use crate::{Error, KeyProvider};

/// What [`rotate_file`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rotation {
    /// The header was re-wrapped under the new key.
    Rotated,
    /// The header was already wrapped under the new key (e.g. a second run
    /// after an interrupted one); only a left-over old slot was cleared.
    AlreadyRotated,
}

/// Re-wraps the data key in `path`'s header: unwraps it with `from`,
/// wraps it with `to` under the same encryption context, and rewrites the
/// header crash-safely. The data key, the file id and every frame stay as
/// they are, so frame positions held elsewhere (indexes) stay valid, and
/// a writer appending to the file at the same time is not disturbed.
pub async fn rotate_file(
    path: impl AsRef<Path>,
    from: &dyn KeyProvider,
    to: &dyn KeyProvider,
) -> Result<Rotation, Error> {
    let path = path.as_ref();
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io)?;
    let (preamble, slots) = read_raw(path, &file)?;
    let mut candidates: Vec<&RawSlot> = slots.iter().filter(|s| !s.is_empty()).collect();
    candidates.sort_by_key(|s| std::cmp::Reverse(s.generation()));

    let mut first_error = None;
    let mut found: Option<(Header, bool)> = None;
    'search: for (keys, already) in [(from, false), (to, true)] {
        for slot in &candidates {
            match verify_slot(path, &preamble, slot, keys).await {
                Ok(header) => {
                    found = Some((header, already));
                    break 'search;
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
    }
    let Some((header, already)) = found else {
        return Err(first_error.unwrap_or_else(|| Error::Corrupt {
            path: path.to_path_buf(),
            offset: preamble.slot_offset(0),
            reason: "both header slots are empty".into(),
        }));
    };
    let other = &slots[1 - header.slot];
    if already {
        if !other.is_empty() {
            clear_slot(path, &file, other)?;
        }
        return Ok(Rotation::AlreadyRotated);
    }

    let wrapped = to.wrap(&header.data_key, &header.body.context).await?;
    let body = SlotBody {
        wrapped,
        ..header.body.clone()
    };
    let mac_key = header_mac_key(&header.data_key, &preamble.file_id);
    let new_slot = encode_slot(
        path,
        &preamble,
        header.generation.wrapping_add(1).max(1),
        &body,
        &mac_key,
    )?;
    file.write_all_at(&new_slot, other.offset)
        .and_then(|()| file.sync_data())
        .map_err(io)?;
    clear_slot(path, &file, &slots[header.slot])?;
    Ok(Rotation::Rotated)
}

fn clear_slot(path: &Path, file: &std::fs::File, slot: &RawSlot) -> Result<(), Error> {
    file.write_all_at(&vec![0u8; slot.bytes.len()], slot.offset)
        .and_then(|()| file.sync_data())
        .map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })
}
