//! Produce: check batches, assign offsets, append, flush per policy.

use bytes::Bytes;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};

use super::producers::SequenceCheck;
use super::{code, storage_error, Broker, FlushPolicy};
use crate::protocol::batch::{assign, split_batches, BatchError};
use crate::storage::{Engine, PartitionLog};

impl<E: Engine> Broker<E> {
    pub(crate) async fn produce(
        &self,
        req: ProduceRequest,
        _version: i16,
    ) -> Option<ProduceResponse> {
        let mut resp = ProduceResponse::default();
        let transactional = req.transactional_id.is_some();
        let sync = match self.config.flush {
            FlushPolicy::Always => true,
            FlushPolicy::AcksAll => req.acks == -1,
            FlushPolicy::Never => false,
        };
        for topic_data in req.topic_data {
            let name = topic_data.name.0.to_string();
            let mut topic_resp = TopicProduceResponse::default();
            topic_resp.name = topic_data.name.clone();
            let topic = self.topic_or_create(&name, true).await;
            for pd in topic_data.partition_data {
                let mut pr = PartitionProduceResponse::default();
                pr.index = pd.index;
                pr.base_offset = -1;
                pr.log_append_time_ms = -1;
                let result = match (&topic, transactional) {
                    (_, true) => Err(code::TRANSACTIONAL_ID_AUTHORIZATION_FAILED),
                    (Err(e), _) => Err(*e),
                    (Ok(None), _) => Err(code::UNKNOWN_TOPIC_OR_PARTITION),
                    (Ok(Some(t)), _) => match t.partition(pd.index) {
                        None => Err(code::UNKNOWN_TOPIC_OR_PARTITION),
                        Some(p) => {
                            let records = pd.records.unwrap_or_default();
                            let bytes = records.len() as u64;
                            let mut part = p.lock().await;
                            let r = self
                                .append_records(&mut part, &t.config, records, sync)
                                .await;
                            pr.log_start_offset = part.log.log_start_offset();
                            drop(part);
                            r.map(|(base, time, messages)| {
                                if messages > 0 {
                                    t.metrics.record_produce(bytes, messages);
                                }
                                (base, time)
                            })
                        }
                    },
                };
                match result {
                    Ok((base, append_time)) => {
                        pr.base_offset = base;
                        pr.log_append_time_ms = append_time;
                    }
                    Err(e) => pr.error_code = e,
                }
                topic_resp.partition_responses.push(pr);
            }
            resp.responses.push(topic_resp);
        }
        self.notify_append();
        (req.acks != 0).then_some(resp)
    }

    /// Appends the batches of one partition; returns (base offset, log
    /// append time or -1, records appended, duplicates not counted).
    async fn append_records(
        &self,
        part: &mut super::topic::Partition<E::Log>,
        config: &super::topic::TopicConfig,
        records: Bytes,
        sync: bool,
    ) -> Result<(i64, i64, u64), i16> {
        let batches = split_batches(&records).map_err(|e| match e {
            BatchError::OldMagic(_) => code::UNSUPPORTED_FOR_MESSAGE_FORMAT,
            _ => code::CORRUPT_MESSAGE,
        })?;
        if batches.is_empty() {
            return Err(code::INVALID_REQUEST);
        }
        if batches
            .iter()
            .any(|(h, _)| h.size > config.max_message_bytes as usize)
        {
            return Err(code::MESSAGE_TOO_LARGE);
        }
        if batches.iter().any(|(h, _)| h.transactional || h.control) {
            return Err(code::TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
        }
        let now = crate::now_ms();
        let append_time = config.log_append_time.then_some(now);
        let mut first_base = None;
        let mut messages = 0u64;
        for (header, bytes) in batches {
            match part.producers.check(&header) {
                SequenceCheck::Refuse(code) => return Err(code),
                SequenceCheck::Duplicate(offset) => {
                    first_base.get_or_insert(offset);
                    continue;
                }
                SequenceCheck::Append => {}
            }
            let base = part.log.next_offset();
            let stored = assign(&bytes, base, append_time);
            let mut stored_header = header;
            stored_header.base_offset = base;
            stored_header.last_offset = base + (header.last_offset - header.base_offset);
            if let Some(t) = append_time {
                stored_header.max_timestamp = t;
            }
            part.log
                .append(&stored_header, stored, now)
                .await
                .map_err(|e| storage_error(&e))?;
            part.producers.record(&stored_header);
            messages += (header.last_offset - header.base_offset + 1).max(0) as u64;
            first_base.get_or_insert(base);
        }
        if sync {
            part.log.flush().await.map_err(|e| storage_error(&e))?;
        }
        Ok((
            first_base.unwrap_or(-1),
            append_time.unwrap_or(-1),
            messages,
        ))
    }
}
