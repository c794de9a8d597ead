//! [`FileStore`]: objects as files, appearing atomically.

use std::fs;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use crate::buffer::ledger::sync_dir;
use crate::error::{Error, Result};
use crate::sinks::object::encode::ObjectWrite;
use crate::sinks::object::store::{ObjectMeta, ObjectStore};

/// Where unfinished files are written, under the sink's directory.
pub(crate) const TMP_DIR: &str = ".wharf-tmp";

/// A directory of objects.
pub struct FileStore {
    root: PathBuf,
    tmp: PathBuf,
}

/// A file being written.
pub struct FileUpload {
    tmp: PathBuf,
    dest: PathBuf,
}

impl FileStore {
    /// Opens `root`, removing unfinished files a crash left (their events
    /// are delivered again from the buffer).
    pub fn open(root: &Path) -> Result<FileStore> {
        let tmp = root.join(TMP_DIR);
        fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        for entry in fs::read_dir(&tmp).map_err(|e| Error::io(&tmp, e))? {
            let p = entry.map_err(|e| Error::io(&tmp, e))?.path();
            let _ = fs::remove_file(&p);
        }
        Ok(FileStore {
            root: root.to_owned(),
            tmp,
        })
    }
}

#[async_trait::async_trait]
impl ObjectStore for FileStore {
    type Upload = FileUpload;

    async fn begin(&mut self, key: &str) -> Result<(Box<dyn ObjectWrite>, FileUpload)> {
        let tmp = self.tmp.join(format!("{}.part", uuid::Uuid::now_v7()));
        let file = fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        Ok((
            Box::new(BufWriter::with_capacity(256 << 10, file)),
            FileUpload {
                tmp,
                dest: self.root.join(key),
            },
        ))
    }

    async fn progress(&mut self, _upload: &mut FileUpload, _events: u64) -> Result<()> {
        Ok(())
    }

    async fn complete(&mut self, upload: FileUpload, _meta: &ObjectMeta) -> Result<u64> {
        // The writer was finished (flushed and fsynced) by the pipeline.
        let dir = upload.dest.parent().unwrap_or(&self.root).to_owned();
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let len = fs::metadata(&upload.tmp)
            .map_err(|e| Error::io(&upload.tmp, e))?
            .len();
        fs::rename(&upload.tmp, &upload.dest).map_err(|e| Error::io(&upload.dest, e))?;
        sync_dir(&dir)?;
        Ok(len)
    }
}
