//! Fetch (with long polling) and ListOffsets.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{
    FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse,
};
use kafka_protocol::records::RecordBatchDecoder;

use super::{code, storage_error, Broker};
use crate::protocol::batch::stored_header;
use crate::storage::{Engine, PartitionLog};

/// ListOffsets special timestamps.
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;

impl<E: Engine> Broker<E> {
    pub(crate) async fn fetch(&self, req: FetchRequest, _version: i16) -> FetchResponse {
        let max_wait = Duration::from_millis(req.max_wait_ms.max(0) as u64);
        let deadline = tokio::time::Instant::now() + max_wait;
        let mut appended = self.appended.subscribe();
        loop {
            appended.borrow_and_update();
            let (resp, bytes, out) = self.fetch_once(&req).await;
            let now = tokio::time::Instant::now();
            if bytes >= req.min_bytes.max(1) as usize || now >= deadline {
                record_fetch(out);
                return resp;
            }
            if tokio::time::timeout_at(deadline, appended.changed())
                .await
                .is_err()
            {
                let (resp, _, out) = self.fetch_once(&req).await;
                record_fetch(out);
                return resp;
            }
        }
    }

    /// One pass over the requested partitions: the response, its record
    /// bytes, and what to count as bytes out if this pass is the answer.
    async fn fetch_once(&self, req: &FetchRequest) -> (FetchResponse, usize, Vec<FetchedOut>) {
        let mut out = Vec::new();
        let mut resp = FetchResponse::default();
        let mut remaining = if req.max_bytes > 0 {
            req.max_bytes as usize
        } else {
            usize::MAX
        };
        let mut total = 0usize;
        for ft in &req.topics {
            let mut tr = FetchableTopicResponse::default();
            tr.topic = ft.topic.clone();
            tr.topic_id = ft.topic_id;
            let topic = self.find_topic(&ft.topic).await;
            for fp in &ft.partitions {
                let mut pd = PartitionData::default();
                pd.partition_index = fp.partition;
                pd.high_watermark = -1;
                pd.last_stable_offset = -1;
                pd.log_start_offset = -1;
                match topic.as_ref().and_then(|t| t.partition(fp.partition)) {
                    None => pd.error_code = code::UNKNOWN_TOPIC_OR_PARTITION,
                    Some(p) => {
                        let mut part = p.lock().await;
                        let (start, next) = (part.log.log_start_offset(), part.log.next_offset());
                        pd.high_watermark = next;
                        pd.last_stable_offset = next;
                        pd.log_start_offset = start;
                        if fp.fetch_offset < start || fp.fetch_offset > next {
                            pd.error_code = code::OFFSET_OUT_OF_RANGE;
                        } else if fp.fetch_offset < next && remaining > 0 {
                            let limit = remaining.min(fp.partition_max_bytes.max(0) as usize);
                            match part.log.read(fp.fetch_offset, limit).await {
                                Ok(batches) => {
                                    let messages =
                                        batches.iter().map(|b| records_in_batches(b)).sum();
                                    let records = concat(batches);
                                    if let Some(t) = &topic {
                                        out.push((
                                            t.metrics.clone(),
                                            records.len() as u64,
                                            messages,
                                        ));
                                    }
                                    remaining = remaining.saturating_sub(records.len());
                                    total += records.len();
                                    pd.records = Some(records);
                                }
                                Err(e) => pd.error_code = storage_error(&e),
                            }
                        }
                    }
                }
                if pd.records.is_none() {
                    pd.records = Some(Bytes::new());
                }
                tr.partitions.push(pd);
            }
            resp.responses.push(tr);
        }
        (resp, total, out)
    }

    pub(crate) async fn list_offsets(
        &self,
        req: ListOffsetsRequest,
        _version: i16,
    ) -> ListOffsetsResponse {
        let mut resp = ListOffsetsResponse::default();
        for lt in req.topics {
            let mut tr = ListOffsetsTopicResponse::default();
            tr.name = lt.name.clone();
            let topic = self.find_topic(&lt.name).await;
            for lp in lt.partitions {
                let mut pr = ListOffsetsPartitionResponse::default();
                pr.partition_index = lp.partition_index;
                pr.timestamp = -1;
                pr.offset = -1;
                pr.leader_epoch = -1;
                match topic.as_ref().and_then(|t| t.partition(lp.partition_index)) {
                    None => pr.error_code = code::UNKNOWN_TOPIC_OR_PARTITION,
                    Some(p) => {
                        let mut part = p.lock().await;
                        match lp.timestamp {
                            LATEST => pr.offset = part.log.next_offset(),
                            EARLIEST => pr.offset = part.log.log_start_offset(),
                            requested => {
                                // The first batch holding the largest
                                // timestamp, or the first at or after `ts`;
                                // then the first record in it at or after.
                                let target = if requested == MAX_TIMESTAMP {
                                    part.log.headers().iter().map(|h| h.max_timestamp).max()
                                } else {
                                    Some(requested)
                                };
                                let found = target.and_then(|ts| {
                                    part.log.batch_for_timestamp(ts).map(|h| (h, ts))
                                });
                                if let Some((h, ts)) = found {
                                    match part.log.read(h.base_offset, 0).await {
                                        Ok(batches) => {
                                            let (o, t) =
                                                first_record_at_or_after(batches.first(), ts)
                                                    .unwrap_or((h.base_offset, h.max_timestamp));
                                            pr.offset = o.max(part.log.log_start_offset());
                                            pr.timestamp = t;
                                        }
                                        Err(e) => pr.error_code = storage_error(&e),
                                    }
                                }
                            }
                        }
                    }
                }
                tr.partitions.push(pr);
            }
            resp.topics.push(tr);
        }
        resp
    }
}

/// Offset and timestamp of the first record of `batch` with timestamp >= `ts`.
fn first_record_at_or_after(batch: Option<&Bytes>, ts: i64) -> Option<(i64, i64)> {
    let mut buf = batch?.clone();
    let set = RecordBatchDecoder::decode(&mut buf).ok()?;
    set.records
        .iter()
        .find(|r| r.timestamp >= ts)
        .map(|r| (r.offset, r.timestamp))
}

/// A topic's counters and the bytes and records a fetch returned from it.
type FetchedOut = (
    std::sync::Arc<wharf_exporters::registry::TopicMetrics>,
    u64,
    u64,
);

fn record_fetch(out: Vec<FetchedOut>) {
    for (metrics, bytes, messages) in out {
        metrics.record_fetch(bytes, messages);
    }
}

/// The runs of batches as one records field: a single run as it is (one
/// batch from the tail cache, or the batches read from the segments,
/// which lie back to back), several copied into one buffer.
fn concat(batches: Vec<Bytes>) -> Bytes {
    match <[Bytes; 1]>::try_from(batches) {
        Ok([one]) => one,
        Err(batches) => {
            let mut buf = BytesMut::new();
            for b in &batches {
                buf.extend_from_slice(b);
            }
            buf.freeze()
        }
    }
}

/// Records in a run of stored batches, whole batches only.
fn records_in_batches(mut run: &[u8]) -> u64 {
    let mut records = 0;
    while let Ok(h) = stored_header(run) {
        records += (h.last_offset - h.base_offset + 1) as u64;
        run = &run[h.size..];
    }
    records
}

#[cfg(test)]
mod tests {
    use kafka_protocol::records::Compression;

    use super::*;
    use crate::protocol::batch::tests::client_batch;

    #[test]
    fn records_are_counted_in_every_batch_of_a_run() {
        let last = client_batch(1, Compression::None, None);
        let run: Vec<u8> = [3, 5]
            .iter()
            .flat_map(|&n| client_batch(n, Compression::None, None).to_vec())
            .chain(last.iter().copied())
            .collect();
        assert_eq!(records_in_batches(&run), 9);
        let cut = run.len() - last.len() + 20;
        assert_eq!(
            records_in_batches(&run[..cut]),
            8,
            "a cut batch is not counted"
        );
        assert_eq!(records_in_batches(&[]), 0);
    }
}
