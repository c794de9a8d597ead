//! The pipeline every object sink runs: read from the buffer, keep the
//! records the sink takes, batch them by partition, encode, hand the
//! bytes to the store, and move the sink's cursor only past what is
//! complete.
//!
//! The cursor after each step is the first sequence number of the oldest
//! open batch (or the reader's position when none is open): everything
//! before it is in a completed object or was filtered out.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::config::{BatchConfig, Compression};
use super::encode::ObjectEncoder;
use super::seal::{Sealer, Sealing};
use super::store::{ObjectMeta, ObjectStore};
use super::template::KeyTemplate;
use crate::buffer::{Buffer, BufferReader};
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::record::Record;
use crate::sinks::retry::{Backoff, Decision};
use crate::sinks::Filter;

/// Most batches (partitions) open at once; the oldest is closed to make room.
pub const MAX_OPEN_BATCHES: usize = 256;
const READ_RECORDS: usize = 4096;
const READ_BYTES: usize = 4 << 20;

struct Open<U> {
    key: String,
    first_seq: u64,
    first_accepted: u64,
    opened: Instant,
    encoder: ObjectEncoder,
    upload: U,
}

/// Everything a pipeline needs besides its store.
pub struct PipelineSettings {
    /// The sink's name.
    pub name: String,
    /// Which records it takes.
    pub filter: Filter,
    /// Object keys.
    pub template: KeyTemplate,
    /// Compression.
    pub compression: Compression,
    /// Its level.
    pub compression_level: i32,
    /// Encryption (`None`: no envelope encryption).
    pub sealer: Option<Sealer>,
    /// When batches close.
    pub batch: BatchConfig,
    /// Cancelled when the sink must give up (shutdown deadline).
    pub stop: CancellationToken,
}

/// A running object sink.
pub struct Pipeline<S: ObjectStore> {
    s: PipelineSettings,
    store: S,
    buffer: Buffer,
    metrics: Arc<Metrics>,
    open: HashMap<String, Open<S::Upload>>,
}

impl<S: ObjectStore> Pipeline<S> {
    /// A pipeline for `store`.
    pub fn new(s: PipelineSettings, store: S, buffer: Buffer, metrics: Arc<Metrics>) -> Self {
        Pipeline {
            s,
            store,
            buffer,
            metrics,
            open: HashMap::new(),
        }
    }

    /// Runs until `shutdown`, then delivers everything durable and returns.
    /// (The caller bounds that with a deadline; the store gives up when its
    /// own stop token is cancelled.)
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<()> {
        let mut reader = self.buffer.reader(&self.s.name);
        loop {
            let deadline = self
                .open
                .values()
                .map(|o| o.opened + self.s.batch.max_age.0)
                .min();
            tokio::select! {
                _ = shutdown.cancelled() => break,
                more = reader.wait() => {
                    if !more { break; }
                    self.pull(&mut reader).await?;
                }
                _ = sleep_until(deadline) => self.flush_expired().await?,
            }
            self.commit(&reader)?;
        }
        while reader.has_more() {
            self.pull(&mut reader).await?;
        }
        let keys: Vec<String> = self.open.keys().cloned().collect();
        for k in keys {
            self.flush(&k).await?;
        }
        self.commit(&reader)?;
        Ok(())
    }

    async fn pull(&mut self, reader: &mut BufferReader) -> Result<()> {
        let records = reader.read(READ_RECORDS, READ_BYTES).await?;
        for r in records {
            if self.s.filter.takes(&r) {
                self.add(&r).await?;
            }
        }
        Ok(())
    }

    async fn add(&mut self, r: &Record) -> Result<()> {
        let ext = self.s.compression.extension();
        let partition = self.s.template.partition(r, ext);
        if !self.open.contains_key(&partition) {
            if self.open.len() >= MAX_OPEN_BATCHES {
                let oldest = self
                    .open
                    .iter()
                    .min_by_key(|(_, o)| o.first_seq)
                    .map(|(k, _)| k.clone())
                    .expect("not empty");
                self.flush(&oldest).await?;
            }
            let key = KeyTemplate::key(&partition, &uuid::Uuid::now_v7());
            let sealing = match &self.s.sealer {
                Some(s) => {
                    Some(data_key(s, &key, &self.s.name, &self.metrics, &self.s.stop).await?)
                }
                None => None,
            };
            let (dest, upload) = self.store.begin(&key).await?;
            let encoder = ObjectEncoder::new(
                dest,
                self.s.compression,
                self.s.compression_level,
                sealing.as_ref(),
            )
            .map_err(|e| Error::io(&key, e))?;
            if self.open.is_empty() {
                self.metrics
                    .set_oldest_pending(&self.s.name, r.accepted_millis());
            }
            self.open.insert(
                partition.clone(),
                Open {
                    key,
                    first_seq: r.seq,
                    first_accepted: r.accepted_millis().unwrap_or(0),
                    opened: Instant::now(),
                    encoder,
                    upload,
                },
            );
        }
        let open = self.open.get_mut(&partition).expect("inserted above");
        open.encoder.write(r).map_err(|e| Error::io(&open.key, e))?;
        self.store
            .progress(&mut open.upload, open.encoder.events)
            .await?;
        if open.encoder.raw_bytes >= self.s.batch.max_bytes.0 {
            self.flush(&partition).await?;
        }
        Ok(())
    }

    async fn flush_expired(&mut self) -> Result<()> {
        let now = Instant::now();
        let due: Vec<String> = self
            .open
            .iter()
            .filter(|(_, o)| o.opened + self.s.batch.max_age.0 <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for k in due {
            self.flush(&k).await?;
        }
        Ok(())
    }

    async fn flush(&mut self, partition: &str) -> Result<()> {
        let Some(open) = self.open.remove(partition) else {
            return Ok(());
        };
        let meta = ObjectMeta {
            events: open.encoder.events,
            first_seq: open.first_seq,
            raw_bytes: open.encoder.raw_bytes,
        };
        open.encoder.finish().map_err(|e| Error::io(&open.key, e))?;
        let bytes = self.store.complete(open.upload, &meta).await?;
        self.metrics.delivered(&self.s.name).inc_by(meta.events);
        self.metrics.objects(&self.s.name).inc();
        self.metrics.object_bytes(&self.s.name).inc_by(bytes);
        tracing::debug!(sink = %self.s.name, key = %open.key, events = meta.events, bytes, "object written");
        Ok(())
    }

    fn commit(&mut self, reader: &BufferReader) -> Result<()> {
        let oldest = self.open.values().min_by_key(|o| o.first_seq);
        let cursor = oldest.map_or(reader.position(), |o| o.first_seq);
        self.metrics
            .set_oldest_pending(&self.s.name, oldest.map(|o| o.first_accepted));
        self.buffer.commit(&self.s.name, cursor)
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

/// Key material for one object, retried with backoff while the master
/// key (KMS) cannot be reached: events stay buffered meanwhile.
async fn data_key(
    sealer: &Sealer,
    key: &str,
    name: &str,
    metrics: &Metrics,
    stop: &CancellationToken,
) -> Result<Sealing> {
    let mut backoff = Backoff::default();
    loop {
        match sealer.start(key).await {
            Ok(s) => {
                if backoff.attempts() > 0 {
                    metrics.set_problem(&format!("sink {} key", name), None);
                }
                return Ok(s);
            }
            Err(e) => {
                let delay = backoff.next_delay(Decision::Retry);
                let text = format!("cannot get a data key for `{key}` ({e}); retrying");
                tracing::warn!(sink = %name, retry_in = ?delay, "{text}");
                metrics.set_problem(&format!("sink {} key", name), Some(text));
                tokio::select! {
                    _ = stop.cancelled() => return Err(Error::ShuttingDown),
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}
