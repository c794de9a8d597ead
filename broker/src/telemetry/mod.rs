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

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{RequestKind, ResponseKind};
use serde_json::{json, Value};
use wharf_exporters::{AuditEvent, BrokerGauge, MetricsRegistry};

use crate::broker::Broker;
use crate::storage::{Engine, PartitionLog};

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
    /// and offsets per partition, and consumer lag per group and partition.
    /// Call it periodically, off the request path.
    pub async fn refresh_metrics(&self) {
        let topics: Vec<_> = self
            .topics
            .read()
            .await
            .iter()
            .map(|(n, t)| (n.clone(), t.clone()))
            .collect();
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

/// Kafka's name of an error code (`TOPIC_ALREADY_EXISTS`), `NONE` for 0.
pub fn error_name(code: i16) -> String {
    if code == 0 {
        return "NONE".into();
    }
    match ResponseError::try_from_code(code) {
        Some(e) => {
            let camel = format!("{e:?}");
            let mut out = String::new();
            for (i, c) in camel.chars().enumerate() {
                if c.is_ascii_uppercase() && i > 0 {
                    out.push('_');
                }
                out.push(c.to_ascii_uppercase());
            }
            out
        }
        None => format!("ERROR_{code}"),
    }
}

/// The audit name and `requestParameters` of an admin request.
pub fn request_parameters(body: &RequestKind) -> Option<(&'static str, Value)> {
    Some(match body {
        RequestKind::CreateTopics(r) => (
            "CreateTopics",
            json!({
                "topics": r.topics.iter().map(|t| json!({
                    "name": t.name.0.as_str(),
                    "numPartitions": t.num_partitions,
                    "replicationFactor": t.replication_factor,
                    "configs": t.configs.iter().map(|c| json!({
                        "name": c.name.as_str(),
                        "value": c.value.as_ref().map(|v| v.as_str()),
                    })).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
                "timeoutMs": r.timeout_ms,
                "validateOnly": r.validate_only,
            }),
        ),
        RequestKind::DeleteTopics(r) => (
            "DeleteTopics",
            json!({
                "topics": r.topic_names.iter().map(|n| n.0.as_str())
                    .chain(r.topics.iter().filter_map(|t| t.name.as_ref().map(|n| n.0.as_str())))
                    .collect::<Vec<_>>(),
                "timeoutMs": r.timeout_ms,
            }),
        ),
        RequestKind::CreatePartitions(r) => (
            "CreatePartitions",
            json!({
                "topics": r.topics.iter().map(|t| json!({
                    "name": t.name.0.as_str(),
                    "count": t.count,
                })).collect::<Vec<_>>(),
                "timeoutMs": r.timeout_ms,
                "validateOnly": r.validate_only,
            }),
        ),
        RequestKind::AlterConfigs(_) => ("AlterConfigs", json!({})),
        RequestKind::IncrementalAlterConfigs(_) => ("IncrementalAlterConfigs", json!({})),
        RequestKind::DeleteRecords(_) => ("DeleteRecords", json!({})),
        RequestKind::DeleteGroups(r) => (
            "DeleteGroups",
            json!({"groups": r.groups_names.iter().map(|g| g.0.as_str()).collect::<Vec<_>>()}),
        ),
        _ => return None,
    })
}

/// Per-topic results as `responseElements`, and the error of a request
/// that failed as a whole (every topic refused).
pub fn response_elements(resp: &ResponseKind) -> (Value, Option<(String, String)>) {
    let results: Vec<(String, i16, Option<String>)> = match resp {
        ResponseKind::CreateTopics(r) => r
            .topics
            .iter()
            .map(|t| {
                (
                    t.name.0.to_string(),
                    t.error_code,
                    t.error_message.as_ref().map(|m| m.to_string()),
                )
            })
            .collect(),
        ResponseKind::DeleteTopics(r) => r
            .responses
            .iter()
            .map(|t| {
                (
                    t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default(),
                    t.error_code,
                    t.error_message.as_ref().map(|m| m.to_string()),
                )
            })
            .collect(),
        ResponseKind::CreatePartitions(r) => r
            .results
            .iter()
            .map(|t| {
                (
                    t.name.0.to_string(),
                    t.error_code,
                    t.error_message.as_ref().map(|m| m.to_string()),
                )
            })
            .collect(),
        _ => Vec::new(),
    };
    let elements = json!({
        "topics": results.iter().map(|(name, code, message)| {
            let mut v = json!({"name": name, "errorCode": error_name(*code)});
            if let Some(m) = message.as_ref().filter(|m| !m.is_empty()) {
                v["errorMessage"] = m.clone().into();
            }
            v
        }).collect::<Vec<_>>(),
    });
    let failed = !results.is_empty() && results.iter().all(|(_, c, _)| *c != 0);
    let error = failed.then(|| {
        let (name, code, message) = &results[0];
        (
            error_name(*code),
            message
                .clone()
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| format!("topic `{name}`: {}", error_name(*code))),
        )
    });
    (elements, error)
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
        ResponseKind::CreateTopics(_)
        | ResponseKind::DeleteTopics(_)
        | ResponseKind::CreatePartitions(_) => response_elements(resp).1.is_some(),
        _ => false,
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
