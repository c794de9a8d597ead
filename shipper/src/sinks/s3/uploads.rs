//! Persisted state of multipart uploads in flight, so that none is left
//! dangling after a crash: one small JSON file per object in
//! `data_dir/sinks/NAME/uploads/`, written before CreateMultipartUpload
//! (the key) and after it (the upload id). At start every file found is an
//! upload whose events were never committed: it is aborted (by id, or by
//! listing the key's uploads when the id never got written), then the
//! events are delivered again from the buffer.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::S3Service;
use crate::buffer::ledger::write_atomically;
use crate::error::{Error, Result};

/// One upload's state file.
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq, Eq)]
pub(super) struct UploadState {
    pub(super) key: String,
    pub(super) upload_id: Option<String>,
}

/// The directory of state files.
pub(super) struct Uploads {
    dir: PathBuf,
}

impl Uploads {
    pub(super) fn open(dir: &Path) -> Result<Uploads> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        Ok(Uploads {
            dir: dir.to_owned(),
        })
    }

    pub(super) fn path(&self, object: &uuid::Uuid) -> PathBuf {
        self.dir.join(format!("{object}.json"))
    }

    pub(super) fn save(&self, path: &Path, state: &UploadState) -> Result<()> {
        write_atomically(path, &serde_json::to_vec(state).expect("serializes"))
    }

    pub(super) fn remove(&self, path: &Path) -> Result<()> {
        std::fs::remove_file(path).map_err(|e| Error::io(path, e))
    }

    /// Aborts every upload a previous run left. Returns how many.
    pub(super) async fn recover(&self, s3: &S3Service) -> Result<usize> {
        let mut n = 0;
        let entries = std::fs::read_dir(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        for entry in entries {
            let path = entry.map_err(|e| Error::io(&self.dir, e))?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            let state: Option<UploadState> = std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            if let Some(state) = state {
                let ids = match &state.upload_id {
                    Some(id) => vec![id.clone()],
                    None => {
                        let listed = s3
                            .retry("ListMultipartUploads", 0, || {
                                s3.client
                                    .list_multipart_uploads()
                                    .bucket(&s3.bucket)
                                    .prefix(&state.key)
                                    .send()
                            })
                            .await?;
                        listed
                            .uploads()
                            .iter()
                            .filter(|u| u.key() == Some(state.key.as_str()))
                            .filter_map(|u| u.upload_id().map(str::to_owned))
                            .collect()
                    }
                };
                for id in ids {
                    let res = s3
                        .client
                        .abort_multipart_upload()
                        .bucket(&s3.bucket)
                        .key(&state.key)
                        .upload_id(&id)
                        .send()
                        .await;
                    match res {
                        Ok(_) => {}
                        Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_upload()) => {}
                        Err(e) => {
                            let facts = crate::sinks::retry::ErrorFacts::from_sdk(&e);
                            return Err(Error::Sink {
                                sink: s3.sink.clone(),
                                message: format!(
                                    "cannot abort the unfinished upload of `{}` ({}); it will be tried again at the next start",
                                    state.key,
                                    facts.describe()
                                ),
                            });
                        }
                    }
                    tracing::info!(sink = %s3.sink, key = %state.key, "aborted an upload a previous run left unfinished");
                    n += 1;
                }
            }
            self.remove(&path)?;
        }
        Ok(n)
    }
}
