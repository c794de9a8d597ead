//! What the broker tells its telemetry (`wharf-exporters`): the request
//! outcome counted per API key, one audit record per admin request, and
//! the gauges refreshed periodically (partition, leader and topic counts,
//! log sizes, consumer lag).
//!
//! Nothing here waits: counters are atomics kept in the broker's topics,
//! audit records go to a non-blocking writer, and the periodic refresh
//! runs on its own task.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use kafka_protocol::messages::{RequestKind, ResponseKind};
use serde_json::Value;
use wharf_exporters::{AuditEvent, BrokerGauge, MetricsRegistry};

pub use self::audit_record::{error_name, request_parameters, response_elements};
use crate::broker::Broker;
use crate::storage::{Engine, PartitionLog};

mod audit_record;

/// Where the broker hands its audit events (the telemetry's auditor).
pub type AuditHook = Box<dyn Fn(AuditEvent) + Send + Sync>;

/// An admin request about to be handled, remembered for its audit record.
#[derive(Debug)]
pub struct PendingAudit {
    name: &'static str,
    parameters: Value,
}

impl<E: Engine> Broker<E> {
    /// The registry the broker counts into.
    pub fn metrics(&self) -> &MetricsRegistry {
        &self.metrics
    }

    /// Sends one audit record per admin request to `hook` from now on
    /// (the first hook set stays).
    pub fn set_audit(&self, hook: AuditHook) {
        let _ = self.audit.set(hook);
    }

    /// The audit record's request part for `body` when it is an admin
    /// request and auditing is on.
    pub fn audit_begin(&self, body: &RequestKind) -> Option<PendingAudit> {
        self.audit.get()?;
        request_parameters(body).map(|(name, parameters)| PendingAudit { name, parameters })
    }

    /// Writes the audit record of a handled admin request.
    pub fn audit_end(
        &self,
        pending: PendingAudit,
        response: Option<&ResponseKind>,
        client_id: &str,
        peer: SocketAddr,
        version: i16,
        correlation_id: i32,
    ) {
        let Some(hook) = self.audit.get() else { return };
        let mut event = AuditEvent::new(pending.name)
            .client_id(client_id)
            .source_ip(peer.ip())
            .api_version(version)
            .request_id(format!("{peer}/{correlation_id}"))
            .request_parameters(pending.parameters);
        event = match response.map(response_elements) {
            Some((elements, None)) => event.response_elements(elements),
            Some((_, Some((code, message)))) => event.error(code, message),
            None => event.error("UNSUPPORTED_VERSION", "the broker did not answer"),
        };
        hook(event);
    }

    /// Refreshes the gauges that change rarely: partition, leader and
    /// topic counts, the controller and offline-partition gauges, log size
    /// and offsets per partition, consumer lag per group and partition, and
    /// the tail cache's counters.
    /// Call it periodically, off the request path.
    pub async fn refresh_metrics(&self) {
        let topics = self.topic_list().await;
        let mut ends = BTreeMap::new();
        let mut partitions = 0i64;
        for (name, topic) in &topics {
            for (i, p) in topic.partitions.iter().enumerate() {
                let (size, start, end) = {
                    let part = p.lock().await;
                    (
                        part.log.size_bytes(),
                        part.log.log_start_offset(),
                        part.log.next_offset(),
                    )
                };
                let m = self.metrics.partition(name, i as i32);
                m.set_log_size(size);
                m.set_offsets(start, end);
                ends.insert((name.clone(), i as i32), end);
                partitions += 1;
            }
        }
        let m = &self.metrics;
        m.set_gauge(BrokerGauge::PartitionCount, partitions);
        m.set_gauge(BrokerGauge::LeaderCount, partitions);
        m.set_gauge(BrokerGauge::GlobalPartitionCount, partitions);
        m.set_gauge(BrokerGauge::GlobalTopicCount, topics.len() as i64);
        // One broker: it is the controller and leads every partition.
        m.set_gauge(BrokerGauge::ActiveControllerCount, 1);
        m.set_gauge(BrokerGauge::OfflinePartitionsCount, 0);
        m.set_gauge(BrokerGauge::UnderReplicatedPartitions, 0);
        if let Some(c) = self.engine.tail_cache_stats() {
            m.set_tail_cache(c.hits, c.misses, c.read_ahead, c.held_bytes);
        }

        let offsets = &self.groups.offsets;
        for group in offsets.groups() {
            for (topic, p) in offsets.partitions_of(&group) {
                let (Some(end), Some((committed, _))) = (
                    ends.get(&(topic.clone(), p)),
                    offsets.get(&group, &topic, p),
                ) else {
                    continue;
                };
                m.set_consumer_lag(&group, &topic, p, (end - committed).max(0));
            }
        }
    }
}

/// True when a response reports an error (top-level or for any partition
/// or topic), for the request error counters.
pub fn response_has_error(resp: &ResponseKind) -> bool {
    match resp {
        ResponseKind::Produce(r) => r
            .responses
            .iter()
            .any(|t| t.partition_responses.iter().any(|p| p.error_code != 0)),
        ResponseKind::Fetch(r) => {
            r.error_code != 0
                || r.responses
                    .iter()
                    .any(|t| t.partitions.iter().any(|p| p.error_code != 0))
        }
        ResponseKind::ListOffsets(r) => r
            .topics
            .iter()
            .any(|t| t.partitions.iter().any(|p| p.error_code != 0)),
        ResponseKind::Metadata(r) => r.topics.iter().any(|t| t.error_code != 0),
        ResponseKind::OffsetCommit(r) => r
            .topics
            .iter()
            .any(|t| t.partitions.iter().any(|p| p.error_code != 0)),
        ResponseKind::OffsetFetch(r) => r.error_code != 0,
        ResponseKind::FindCoordinator(r) => r.error_code != 0,
        ResponseKind::JoinGroup(r) => r.error_code != 0,
        ResponseKind::SyncGroup(r) => r.error_code != 0,
        ResponseKind::Heartbeat(r) => r.error_code != 0,
        ResponseKind::LeaveGroup(r) => r.error_code != 0,
        ResponseKind::ApiVersions(r) => r.error_code != 0,
        ResponseKind::InitProducerId(r) => r.error_code != 0,
        _ => audit_record::any_admin_error(resp),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_names_are_kafkas() {
        assert_eq!(error_name(0), "NONE");
        assert_eq!(error_name(36), "TOPIC_ALREADY_EXISTS");
        assert_eq!(error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
    }
}
