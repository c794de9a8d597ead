//! The persisted log start offset of a partition that DeleteRecords moved
//! (`logs/<topic>-<partition>/log-start-offset`): one frame holding the
//! offset as 8 big-endian bytes, replaced atomically (written to a
//! temporary file, synced, renamed). Segments alone cannot tell it: the
//! start may lie inside a segment that is kept.

use std::path::Path;

use super::frames::{read_frames, AtRest, FrameWriter};
use super::sync_dir;
use crate::storage::StorageError;

const FILE: &str = "log-start-offset";
const TMP: &str = "log-start-offset.tmp";

/// The offset stored in `dir`, if DeleteRecords ever moved it.
pub(super) async fn read(dir: &Path, at_rest: &AtRest) -> Result<Option<i64>, StorageError> {
    let path = dir.join(FILE);
    if !path.exists() {
        return Ok(None);
    }
    let (frames, _) = read_frames(&path, at_rest).await?;
    let bytes: [u8; 8] = frames
        .first()
        .and_then(|f| f.data[..].try_into().ok())
        .ok_or_else(|| StorageError::Corrupt {
            path: path.display().to_string(),
            reason: "expected one 8-byte log start offset".into(),
        })?;
    Ok(Some(i64::from_be_bytes(bytes)))
}

/// Durably replaces the stored offset with `offset`.
pub(super) async fn write(dir: &Path, at_rest: &AtRest, offset: i64) -> Result<(), StorageError> {
    let tmp = dir.join(TMP);
    let path = dir.join(FILE);
    let mut writer = FrameWriter::create(&tmp, at_rest).await?;
    writer.append(&offset.to_be_bytes()).await?;
    writer.finish().await?;
    std::fs::rename(&tmp, &path).map_err(|e| StorageError::io(&path, e))?;
    sync_dir(dir)
}
