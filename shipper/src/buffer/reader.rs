//! A sink's view of the buffer: records from its cursor on, from memory
//! when it keeps up, from sealed segments when it is behind.

use std::sync::Arc;

use tokio::sync::watch;

use super::frames::FrameReader;
use super::{decode_frame, Shared};
use crate::error::{Error, Result};
use crate::record::Record;

struct DiskCursor {
    first: u64,
    end: u64,
    /// Sequence number of the next record `pending` yields.
    next: u64,
    reader: FrameReader,
    /// Records of the current frame not yet returned.
    pending: std::collections::VecDeque<Record>,
}

/// Reads durable records in order for one sink.
pub struct BufferReader {
    shared: Arc<Shared>,
    sink: String,
    next: u64,
    durable: watch::Receiver<u64>,
    disk: Option<DiskCursor>,
    sources: Vec<Arc<str>>,
}

impl BufferReader {
    pub(super) fn new(
        shared: Arc<Shared>,
        sink: &str,
        next: u64,
        durable: watch::Receiver<u64>,
    ) -> Self {
        BufferReader {
            shared,
            sink: sink.to_owned(),
            next,
            durable,
            disk: None,
            sources: Vec::new(),
        }
    }

    /// The sequence number of the next record this reader returns.
    pub fn position(&self) -> u64 {
        self.next
    }

    /// Whether records are waiting to be read.
    pub fn has_more(&self) -> bool {
        self.next < *self.durable.borrow()
    }

    /// Waits until at least one record is ready. Cancel-safe. Returns
    /// false when the buffer has closed and nothing more will come.
    pub async fn wait(&mut self) -> bool {
        loop {
            if self.next < *self.durable.borrow_and_update() {
                return true;
            }
            if self.durable.changed().await.is_err() {
                return self.next < *self.durable.borrow();
            }
        }
    }

    /// Reads up to `max_records` / about `max_bytes` ready records without
    /// waiting.
    pub async fn read(&mut self, max_records: usize, max_bytes: usize) -> Result<Vec<Arc<Record>>> {
        let durable = *self.durable.borrow();
        let mut out = Vec::new();
        if self.next >= durable {
            return Ok(out);
        }
        {
            let tail = self.shared.tail.read().unwrap();
            if self.next >= tail.first && self.next < tail.first + tail.records.len() as u64 {
                let start = (self.next - tail.first) as usize;
                let mut bytes = 0;
                for r in tail.records[start..].iter().take(max_records) {
                    bytes += r.line.len();
                    out.push(r.clone());
                    if bytes >= max_bytes {
                        break;
                    }
                }
                self.next += out.len() as u64;
                self.disk = None;
                return Ok(out);
            }
        }
        self.read_disk(max_records, max_bytes, &mut out).await?;
        Ok(out)
    }

    async fn read_disk(
        &mut self,
        max_records: usize,
        max_bytes: usize,
        out: &mut Vec<Arc<Record>>,
    ) -> Result<()> {
        let in_cursor = self
            .disk
            .as_ref()
            .is_some_and(|d| d.next == self.next && self.next < d.end);
        if !in_cursor {
            let Some((first, seg)) = self.shared.segment_for(self.next) else {
                if let Some(oldest) = self.shared.oldest() {
                    if self.next < oldest {
                        tracing::error!(sink = %self.sink, from = self.next, to = oldest,
                            "records this sink had not delivered were deleted; skipping ahead");
                        self.next = oldest;
                    }
                }
                return Ok(());
            };
            let reader = self.shared.at.open(&seg.path).await?;
            self.disk = Some(DiskCursor {
                first,
                end: seg.end,
                next: first,
                reader,
                pending: Default::default(),
            });
        }
        let path = self.shared.dir.join(format!(
            "{:020}.seg",
            self.disk.as_ref().expect("set above").first
        ));
        let d = self.disk.as_mut().expect("set above");
        let mut bytes = 0;
        while out.len() < max_records && bytes < max_bytes && d.next < d.end {
            let Some(r) = d.pending.pop_front() else {
                let Some(frame) = d.reader.next_frame()? else {
                    return Err(short(&path));
                };
                let mut recs = Vec::new();
                decode_frame(&frame, &path, &mut self.sources, &mut recs)?;
                d.pending.extend(recs);
                continue;
            };
            if r.seq != d.next {
                return Err(Error::Corrupt {
                    path,
                    reason: format!("expected record {} but found {}", d.next, r.seq),
                });
            }
            d.next += 1;
            if r.seq < self.next {
                // Skipping to the cursor inside a freshly opened segment.
                continue;
            }
            bytes += r.line.len();
            out.push(Arc::new(r));
        }
        self.next = self.next.max(d.next);
        Ok(())
    }
}

fn short(path: &std::path::Path) -> Error {
    Error::Corrupt {
        path: path.to_owned(),
        reason: "it holds fewer records than its neighbours say".into(),
    }
}
