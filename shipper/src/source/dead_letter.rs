//! Where refused lines go: `data_dir/dead-letter/SOURCE-STARTMILLIS.dl`,
//! one frame per refused line in the buffer's at-rest file format, each a
//! JSON object `{"source","line","error","received_at","text"}` (`text` is
//! the line, cut to 64 KiB, with invalid UTF-8 replaced).

use std::path::{Path, PathBuf};

use tokio::sync::Mutex;

use crate::buffer::frames::{AtRest, FrameWriter};
use crate::error::{Error, Result};

/// Longest excerpt of a refused line that is kept.
pub const MAX_EXCERPT: usize = 64 << 10;

/// A source's dead-letter file, opened on first use.
pub struct DeadLetter {
    path: PathBuf,
    at: AtRest,
    writer: Mutex<Option<FrameWriter>>,
}

impl DeadLetter {
    /// Dead letters of `source` under `dir`.
    pub fn new(dir: &Path, source: &str, at: AtRest) -> DeadLetter {
        let millis = chrono::Utc::now().timestamp_millis();
        DeadLetter {
            path: dir.join(format!("{source}-{millis}.dl")),
            at,
            writer: Mutex::new(None),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends refused lines and fsyncs.
    pub async fn write(&self, entries: &[serde_json::Value]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut guard = self.writer.lock().await;
        if guard.is_none() {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            }
            *guard = Some(self.at.create(&self.path).await?);
        }
        let w = guard.as_mut().expect("opened above");
        for e in entries {
            w.append(&serde_json::to_vec(e).expect("JSON values serialize"))?;
        }
        w.sync()
    }

    /// Seals the file (at shutdown).
    pub async fn close(&self) {
        if let Some(w) = self.writer.lock().await.take() {
            let _ = w.finish();
        }
    }
}

/// One dead-letter entry.
pub fn entry(source: &str, line_no: u64, error: &str, text: &[u8]) -> serde_json::Value {
    let cut = &text[..text.len().min(MAX_EXCERPT)];
    serde_json::json!({
        "source": source,
        "line": line_no,
        "error": error,
        "received_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "text": String::from_utf8_lossy(cut),
    })
}
