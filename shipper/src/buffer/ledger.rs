//! The ledger: one cursor per sink, persisted atomically.
//!
//! A cursor is the sequence number of the first record that sink has not
//! yet had acknowledged by its destination. It only moves forward. The
//! file is rewritten whole (temp file, fsync, rename, fsync of the
//! directory), so a crash leaves either the old or the new ledger.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Serialize, Deserialize, Default, Debug, Clone, PartialEq, Eq)]
struct LedgerFile {
    version: u32,
    cursors: BTreeMap<String, u64>,
}

/// Cursors of every configured sink.
#[derive(Debug)]
pub(crate) struct Ledger {
    path: PathBuf,
    file: LedgerFile,
}

impl Ledger {
    /// Loads `path` (or starts empty) and keeps exactly `sinks`: a sink new
    /// to the ledger starts at `oldest` (everything still buffered); cursors
    /// of sinks no longer configured are dropped so they hold nothing back.
    pub(crate) fn open(path: &Path, sinks: &[String], oldest: u64) -> Result<Self> {
        let mut file = match fs::read(path) {
            Ok(bytes) => serde_json::from_slice::<LedgerFile>(&bytes).map_err(|e| Error::Corrupt {
                path: path.to_owned(),
                reason: format!("the ledger is not valid ({e}); restore it or delete it to redeliver the whole buffer"),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => LedgerFile::default(),
            Err(e) => return Err(Error::io(path, e)),
        };
        file.version = 1;
        file.cursors.retain(|name, _| sinks.contains(name));
        for s in sinks {
            let c = file.cursors.entry(s.clone()).or_insert(oldest);
            *c = (*c).max(oldest);
        }
        let mut ledger = Ledger {
            path: path.to_owned(),
            file,
        };
        ledger.persist()?;
        Ok(ledger)
    }

    /// The cursor of `sink`.
    pub(crate) fn cursor(&self, sink: &str) -> Option<u64> {
        self.file.cursors.get(sink).copied()
    }

    /// The smallest cursor: nothing before it is needed by any sink.
    pub(crate) fn min_cursor(&self) -> Option<u64> {
        self.file.cursors.values().min().copied()
    }

    /// The largest cursor.
    pub(crate) fn max_cursor(&self) -> Option<u64> {
        self.file.cursors.values().max().copied()
    }

    /// Moves `sink`'s cursor forward to `to` and persists the ledger.
    /// Returns whether it moved.
    pub(crate) fn advance(&mut self, sink: &str, to: u64) -> Result<bool> {
        match self.file.cursors.get_mut(sink) {
            Some(c) if *c < to => *c = to,
            _ => return Ok(false),
        }
        self.persist()?;
        Ok(true)
    }

    fn persist(&mut self) -> Result<()> {
        write_atomically(
            &self.path,
            &serde_json::to_vec_pretty(&self.file).expect("ledger serializes"),
        )
    }
}

/// Writes `bytes` to `path` so that a crash leaves the old or the new
/// content, never a mix: temp file, fsync, rename, fsync of the directory.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
    f.sync_all().map_err(|e| Error::io(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Fsyncs a directory so that a rename or unlink in it is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_persist_and_only_move_forward() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ledger.json");
        let sinks = vec!["a".to_string(), "b".to_string()];
        let mut l = Ledger::open(&p, &sinks, 0).unwrap();
        assert!(l.advance("a", 10).unwrap());
        assert!(!l.advance("a", 5).unwrap());
        assert!(!l.advance("nope", 5).unwrap());
        assert_eq!(l.min_cursor(), Some(0));
        l.advance("b", 7).unwrap();
        drop(l);
        let l = Ledger::open(&p, &sinks, 0).unwrap();
        assert_eq!((l.cursor("a"), l.cursor("b")), (Some(10), Some(7)));
        assert_eq!(l.min_cursor(), Some(7));
    }

    #[test]
    fn removed_sinks_release_and_new_sinks_start_at_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ledger.json");
        let mut l = Ledger::open(&p, &["old".into(), "keep".into()], 0).unwrap();
        l.advance("keep", 50).unwrap();
        drop(l);
        let l = Ledger::open(&p, &["keep".into(), "new".into()], 20).unwrap();
        assert_eq!(l.cursor("old"), None);
        assert_eq!(l.cursor("new"), Some(20));
        assert_eq!(l.cursor("keep"), Some(50));
    }
}
