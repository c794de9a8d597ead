//! The pipeline of the sinks that send requests (CloudWatch Logs,
//! CloudWatch metrics, Firehose): read from the buffer, keep the records
//! the sink takes, let the sink's [`Batcher`] group them into requests,
//! send up to `max_in_flight` of them at once through its [`Sender`], and
//! move the sink's cursor only past what is settled.
//!
//! A record is settled when its destination acknowledged it or it was
//! dead-lettered (written and fsynced, or put to S3). The cursor is the
//! smallest first sequence number of the batches still open or in flight
//! (or the reader's position when there are none), so a crash re-sends at
//! most the batches that were not settled, under the same ids.
//!
//! The age of the oldest unsettled event (`sink_oldest_unacked_age_seconds`)
//! comes from [`Marks`]: when each read's first taken record was accepted.
//! Acceptance times grow with sequence numbers, so the mark at or below the
//! cursor is never younger than the event at the cursor: the gauge errs by
//! at most one read's span, and only towards older.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::dead_letter::{DeadEvent, SinkDeadLetter};
use super::Filter;
use crate::buffer::{Buffer, BufferReader};
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::record::Record;

const READ_RECORDS: usize = 4096;
const READ_BYTES: usize = 4 << 20;

/// What a batch owes the buffer: the first sequence number in it and when
/// its oldest event was accepted.
pub trait Owing {
    /// Smallest sequence number of the records in it.
    fn min_seq(&self) -> u64;
}

/// Groups records into requests within the destination's limits.
pub trait Batcher: Send {
    /// A request's worth of events.
    type Batch: Owing + Send + 'static;
    /// Adds a record; closed batches go to `ready`, records refused before
    /// sending (too old, too large, ...) to `dead`.
    fn add(&mut self, r: Arc<Record>, ready: &mut Vec<Self::Batch>, dead: &mut Vec<DeadEvent>);
    /// Closes the batches open since `now - max_age`.
    fn take_expired(&mut self, now: Instant, ready: &mut Vec<Self::Batch>);
    /// Closes every open batch.
    fn take_all(&mut self, ready: &mut Vec<Self::Batch>);
    /// When the oldest open batch must be closed.
    fn next_deadline(&self) -> Option<Instant>;
    /// Smallest sequence number in the open batches.
    fn min_open_seq(&self) -> Option<u64>;
}

/// What became of a sent batch.
#[derive(Debug, Default)]
pub struct Sent {
    /// Records the destination acknowledged.
    pub delivered: u64,
    /// Records it refused for good (with the reason).
    pub dead: Vec<DeadEvent>,
}

/// Sends one batch, retrying what can succeed until it is settled.
#[async_trait::async_trait]
pub trait Sender: Send + Sync + 'static {
    /// The batch type.
    type Batch: Send + 'static;
    /// Sends `batch` until every record in it is delivered or refused for
    /// good; errors only on shutdown or a fatal configuration problem.
    async fn send(&self, batch: Self::Batch) -> Result<Sent>;
}

/// A running request sink.
pub struct Driver<B: Batcher, S: Sender<Batch = B::Batch>> {
    /// The sink's name.
    pub name: String,
    /// Which records it takes.
    pub filter: Filter,
    /// Groups records.
    pub batcher: B,
    /// Sends batches.
    pub sender: Arc<S>,
    /// Where refused records go.
    pub dead_letter: Arc<SinkDeadLetter>,
    /// Most batches sent at once.
    pub max_in_flight: usize,
    /// The buffer.
    pub buffer: Buffer,
    /// Metrics.
    pub metrics: Arc<Metrics>,
}

type Done = (u64, Result<Sent>);

impl<B: Batcher, S: Sender<Batch = B::Batch>> Driver<B, S> {
    /// Runs until `shutdown`, then sends everything durable and returns.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<()> {
        let mut reader = self.buffer.reader(&self.name);
        let mut flying: JoinSet<Done> = JoinSet::new();
        let mut owed: BTreeMap<u64, usize> = BTreeMap::new();
        let mut marks = Marks::default();
        let mut ready = Vec::new();
        loop {
            let deadline = self.batcher.next_deadline();
            let room = flying.len() < self.max_in_flight;
            tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(done) = flying.join_next() => self.settle(done, &mut owed).await?,
                more = reader.wait(), if room => {
                    if !more { break; }
                    self.pull(&mut reader, &mut ready, &mut marks).await?;
                }
                _ = sleep_until(deadline), if room => {
                    self.batcher.take_expired(Instant::now(), &mut ready)
                }
            }
            self.launch(&mut ready, &mut flying, &mut owed, &mut marks)
                .await?;
            self.commit(&reader, &owed, &mut marks)?;
        }
        while reader.has_more() {
            self.pull(&mut reader, &mut ready, &mut marks).await?;
            self.launch(&mut ready, &mut flying, &mut owed, &mut marks)
                .await?;
        }
        self.batcher.take_all(&mut ready);
        self.launch(&mut ready, &mut flying, &mut owed, &mut marks)
            .await?;
        while let Some(done) = flying.join_next().await {
            self.settle(done, &mut owed).await?;
        }
        self.commit(&reader, &owed, &mut marks)
    }

    async fn pull(
        &mut self,
        reader: &mut BufferReader,
        ready: &mut Vec<B::Batch>,
        marks: &mut Marks,
    ) -> Result<()> {
        let mut dead = Vec::new();
        let mut first = true;
        for r in reader.read(READ_RECORDS, READ_BYTES).await? {
            if self.filter.takes(&r) {
                if std::mem::take(&mut first) {
                    marks.taken(&r);
                }
                self.batcher.add(r, ready, &mut dead);
            }
        }
        self.dead_letter.write(&self.name, dead).await
    }

    /// Starts the ready batches, waiting for a slot when all are taken.
    async fn launch(
        &mut self,
        ready: &mut Vec<B::Batch>,
        flying: &mut JoinSet<Done>,
        owed: &mut BTreeMap<u64, usize>,
        marks: &mut Marks,
    ) -> Result<()> {
        for batch in ready.drain(..) {
            if flying.len() >= self.max_in_flight {
                self.show_oldest(owed, marks);
            }
            while flying.len() >= self.max_in_flight {
                let done = flying.join_next().await.expect("not empty");
                self.settle(done, owed).await?;
            }
            let seq = batch.min_seq();
            *owed.entry(seq).or_default() += 1;
            let sender = self.sender.clone();
            flying.spawn(async move { (seq, sender.send(batch).await) });
        }
        Ok(())
    }

    async fn settle(
        &mut self,
        done: std::result::Result<Done, tokio::task::JoinError>,
        owed: &mut BTreeMap<u64, usize>,
    ) -> Result<()> {
        let (seq, res) = done.map_err(|e| Error::Sink {
            sink: self.name.clone(),
            message: format!("a request task failed: {e}"),
        })?;
        let sent = res?;
        self.dead_letter.write(&self.name, sent.dead).await?;
        self.metrics.delivered(&self.name).inc_by(sent.delivered);
        if let Some(n) = owed.get_mut(&seq) {
            *n -= 1;
            if *n == 0 {
                owed.remove(&seq);
            }
        }
        Ok(())
    }

    fn commit(
        &self,
        reader: &BufferReader,
        owed: &BTreeMap<u64, usize>,
        marks: &mut Marks,
    ) -> Result<()> {
        let unsettled = self.show_oldest(owed, marks);
        self.buffer
            .commit(&self.name, unsettled.unwrap_or(reader.position()))
    }

    /// Sets the oldest-unsettled gauge; returns the smallest unsettled
    /// sequence number (`None`: everything taken is settled).
    fn show_oldest(&self, owed: &BTreeMap<u64, usize>, marks: &mut Marks) -> Option<u64> {
        let flying = owed.keys().next().copied();
        let unsettled = [flying, self.batcher.min_open_seq()]
            .into_iter()
            .flatten()
            .min();
        self.metrics
            .set_oldest_pending(&self.name, marks.oldest_from(unsettled));
        unsettled
    }
}

/// When the first record a read took was accepted, by sequence number:
/// enough to bound the age of the oldest unsettled event.
#[derive(Default)]
struct Marks(BTreeMap<u64, u64>);

impl Marks {
    fn taken(&mut self, r: &Record) {
        if let Some(accepted) = r.accepted_millis() {
            self.0.insert(r.seq, accepted);
        }
    }

    /// Drops the marks wholly below `unsettled` (the smallest unsettled
    /// sequence number, `None` when everything is settled) and returns when
    /// the oldest unsettled event was accepted, at the latest.
    fn oldest_from(&mut self, unsettled: Option<u64>) -> Option<u64> {
        let Some(seq) = unsettled else {
            self.0.clear();
            return None;
        };
        if let Some((&floor, _)) = self.0.range(..=seq).next_back() {
            self.0 = self.0.split_off(&floor);
        }
        self.0.values().next().copied()
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
#[path = "driver_tests.rs"]
mod tests;
