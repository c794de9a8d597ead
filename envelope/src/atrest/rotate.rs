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

    let mut from_error = None;
    let mut found: Option<(Header, bool)> = None;
    // Newest slot first; for each, the new key first: if it opens the slot,
    // the rotation was already done (and `from` may be a KMS discovery
    // provider that opens anything). Providers refuse a key wrapped by
    // another master key without a network call (local: the key name; KMS:
    // the key ARN), so the usual case still costs one remote unwrap.
    'search: for slot in &candidates {
        for (keys, already) in [(to, true), (from, false)] {
            match verify_slot(path, &preamble, slot, keys).await {
                Ok(header) => {
                    found = Some((header, already));
                    break 'search;
                }
                // Report why the old key failed, not why the new one did.
                Err(e) if !already => {
                    from_error.get_or_insert(e);
                }
                Err(_) => {}
            }
        }
    }
    let Some((header, already)) = found else {
        return Err(from_error.unwrap_or_else(|| Error::Corrupt {
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

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;

    use super::*;
    use crate::atrest::{SealedReader, SealedWriter, Tail};
    use crate::{EncryptionContext, LocalKeyProvider};

    fn ctx() -> EncryptionContext {
        [("purpose".to_string(), "rotation".to_string())].into()
    }

    async fn frames(path: &Path, keys: &dyn KeyProvider) -> Result<Vec<Vec<u8>>, Error> {
        let r = SealedReader::open(path, keys).await?;
        r.frames().map(|f| f.map(|f| f.data)).collect()
    }

    fn slots(bytes: &[u8]) -> (usize, usize) {
        let slot_len = u32::from_be_bytes(bytes[12..16].try_into().unwrap()) as usize;
        (slot_len, 32 + 2 * slot_len)
    }

    #[tokio::test]
    async fn local_to_local_rewraps_the_header_and_leaves_every_frame_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seg");
        let (a, b) = (LocalKeyProvider::random(), LocalKeyProvider::random());
        let mut w = SealedWriter::create(&path, &a, &ctx()).await.unwrap();
        w.append(b"one").unwrap();
        w.append(b"two").unwrap();
        let before = fs::read(&path).unwrap();

        assert_eq!(rotate_file(&path, &a, &b).await.unwrap(), Rotation::Rotated);
        let after = fs::read(&path).unwrap();
        let (_, data_start) = slots(&before);
        assert_eq!(before[..32], after[..32], "the preamble stays");
        assert_eq!(
            before[data_start..],
            after[data_start..],
            "the frames stay, byte for byte"
        );
        assert_ne!(before[32..data_start], after[32..data_start]);

        // The writer that was open keeps appending under the same data key.
        w.append(b"three").unwrap();
        w.finish().unwrap();
        assert_eq!(
            frames(&path, &b).await.unwrap(),
            [b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]
        );
        assert!(
            matches!(frames(&path, &a).await, Err(Error::Unwrap { .. })),
            "the old key no longer opens it"
        );
        let r = SealedReader::open_expecting(&path, &b, &ctx())
            .await
            .unwrap();
        assert!(r
            .wrapped_key()
            .provider_info
            .starts_with(b.key_name().as_bytes()));

        // Running it again is harmless, and a third key can follow.
        assert_eq!(
            rotate_file(&path, &a, &b).await.unwrap(),
            Rotation::AlreadyRotated
        );
        let c = LocalKeyProvider::random();
        assert_eq!(rotate_file(&path, &b, &c).await.unwrap(), Rotation::Rotated);
        let r = SealedReader::open(&path, &c).await.unwrap();
        let mut it = r.frames().require_finished();
        assert_eq!(it.by_ref().count(), 3);
        assert!(matches!(it.tail(), Some(Tail::Finished { .. })));
    }

    #[tokio::test]
    async fn an_interrupted_rotation_is_finished_by_running_it_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seg");
        let (a, b) = (LocalKeyProvider::random(), LocalKeyProvider::random());
        let mut w = SealedWriter::create(&path, &a, &ctx()).await.unwrap();
        w.append(b"data").unwrap();
        drop(w);
        let orig = fs::read(&path).unwrap();
        rotate_file(&path, &a, &b).await.unwrap();
        let rotated = fs::read(&path).unwrap();
        let (slot_len, _) = slots(&orig);
        let new_slot = 32 + slot_len..32 + 2 * slot_len;

        // Crash after the new slot was synced, before the old was cleared.
        let mut both = orig.clone();
        both[new_slot.clone()].copy_from_slice(&rotated[new_slot.clone()]);
        fs::write(&path, &both).unwrap();
        assert_eq!(frames(&path, &b).await.unwrap(), [b"data".to_vec()]);
        assert_eq!(
            rotate_file(&path, &a, &b).await.unwrap(),
            Rotation::AlreadyRotated
        );
        assert_eq!(
            fs::read(&path).unwrap(),
            rotated,
            "the old slot was cleared"
        );

        // Crash in the middle of writing the new slot: readers refuse the
        // torn header and say how to repair it; rotating again repairs it.
        let mut torn = orig.clone();
        torn[new_slot.start..new_slot.start + 100]
            .copy_from_slice(&rotated[new_slot.start..new_slot.start + 100]);
        fs::write(&path, &torn).unwrap();
        let err = frames(&path, &a).await.unwrap_err();
        assert!(err.to_string().contains("wharf keys rotate"), "{err}");
        assert_eq!(rotate_file(&path, &a, &b).await.unwrap(), Rotation::Rotated);
        assert_eq!(frames(&path, &b).await.unwrap(), [b"data".to_vec()]);
    }

    #[tokio::test]
    async fn rotating_with_a_key_that_opens_nothing_fails_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seg");
        let (a, b, c) = (
            LocalKeyProvider::random(),
            LocalKeyProvider::random(),
            LocalKeyProvider::random(),
        );
        SealedWriter::create(&path, &a, &ctx())
            .await
            .unwrap()
            .finish()
            .unwrap();
        let before = fs::read(&path).unwrap();
        let err = rotate_file(&path, &b, &c).await.unwrap_err();
        assert!(matches!(err, Error::Unwrap { .. }), "{err}");
        assert_eq!(fs::read(&path).unwrap(), before);
    }
}
