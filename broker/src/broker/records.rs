//! DeleteRecords: moves partitions' log start offsets forward. Fetches
//! below the new start get OFFSET_OUT_OF_RANGE, ListOffsets earliest
//! returns it, and the storage engine deletes the segments wholly below
//! it and keeps the offset across restarts.

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use super::{code, storage_error, Broker};
use crate::storage::{Engine, PartitionLog};

/// DeleteRecords' offset meaning "up to the high watermark".
const HIGH_WATERMARK: i64 = -1;

impl<E: Engine> Broker<E> {
    pub(crate) async fn delete_records(&self, req: DeleteRecordsRequest) -> DeleteRecordsResponse {
        let mut resp = DeleteRecordsResponse::default();
        for t in req.topics {
            let mut tr = DeleteRecordsTopicResult::default();
            tr.name = t.name.clone();
            let topic = self.find_topic(&t.name).await;
            for p in t.partitions {
                let mut pr = DeleteRecordsPartitionResult::default();
                pr.partition_index = p.partition_index;
                pr.low_watermark = -1;
                let partition = topic.as_ref().and_then(|t| t.partition(p.partition_index));
                match partition {
                    None => pr.error_code = code::UNKNOWN_TOPIC_OR_PARTITION,
                    Some(part) => {
                        let mut part = part.lock().await;
                        let (before, end) = (part.log.log_start_offset(), part.log.next_offset());
                        let target = if p.offset == HIGH_WATERMARK {
                            end
                        } else {
                            p.offset
                        };
                        if !(0..=end).contains(&target) {
                            pr.error_code = code::OFFSET_OUT_OF_RANGE;
                        } else {
                            match part
                                .log
                                .delete_records_before(target, crate::now_ms())
                                .await
                            {
                                Ok(segments) => {
                                    pr.low_watermark = part.log.log_start_offset();
                                    if pr.low_watermark > before {
                                        tracing::info!(
                                            topic = %t.name.0,
                                            partition = p.partition_index,
                                            log_start_offset = pr.low_watermark,
                                            segments,
                                            "deleted records"
                                        );
                                    }
                                }
                                Err(e) => {
                                    tracing::error!(topic = %t.name.0, partition = p.partition_index, error = %e, "delete records failed");
                                    pr.error_code = storage_error(&e);
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
