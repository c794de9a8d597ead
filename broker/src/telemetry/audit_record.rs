//! The audit record's request and response parts for each admin request:
//! `requestParameters` naming the resources and settings asked for,
//! `responseElements` with each result's Kafka error name, and the
//! error of a request that failed as a whole.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{RequestKind, ResponseKind};
use kafka_protocol::protocol::StrBytes;
use serde_json::{json, Value};

use crate::broker::configs::{op_name, resource_type_name};

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

/// `requestParameters` of an AlterConfigs or IncrementalAlterConfigs
/// request `$r` (two generated types with the same fields);
/// `$operation` gives a config entry's operation name, if it has one.
macro_rules! config_resources {
    ($r:expr, |$c:ident| $operation:expr) => {
        json!({
            "resources": $r.resources.iter().map(|res| json!({
                "resourceType": resource_type_name(res.resource_type),
                "resourceName": res.resource_name.as_str(),
                "configs": res.configs.iter().map(|$c| {
                    let mut v = json!({
                        "name": $c.name.as_str(),
                        "value": $c.value.as_ref().map(|v| v.as_str()),
                    });
                    if let Some(op) = $operation {
                        v["operation"] = op.into();
                    }
                    v
                }).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "validateOnly": $r.validate_only,
        })
    };
}

/// The outcomes of AlterConfigs' or IncrementalAlterConfigs' `responses`
/// (two generated types with the same fields).
macro_rules! resource_outcomes {
    ($responses:expr) => {
        $responses
            .iter()
            .map(|x| {
                resource_outcome(
                    x.resource_type,
                    &x.resource_name,
                    x.error_code,
                    x.error_message.as_ref(),
                )
            })
            .collect()
    };
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
        RequestKind::AlterConfigs(r) => ("AlterConfigs", config_resources!(r, |_c| None::<String>)),
        RequestKind::IncrementalAlterConfigs(r) => (
            "IncrementalAlterConfigs",
            config_resources!(r, |c| Some(op_name(c.config_operation))),
        ),
        RequestKind::DeleteRecords(r) => (
            "DeleteRecords",
            json!({
                "topics": r.topics.iter().map(|t| json!({
                    "name": t.name.0.as_str(),
                    "partitions": t.partitions.iter().map(|p| json!({
                        "partition": p.partition_index,
                        "offset": p.offset,
                    })).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
                "timeoutMs": r.timeout_ms,
            }),
        ),
        RequestKind::DeleteGroups(r) => (
            "DeleteGroups",
            json!({"groups": r.groups_names.iter().map(|g| g.0.as_str()).collect::<Vec<_>>()}),
        ),
        _ => return None,
    })
}

/// One result of an admin response: what it is about (in
/// `responseElements`), its error code and message, and how to name it
/// in an error message.
struct AdminOutcome {
    element: Value,
    code: i16,
    message: Option<String>,
    subject: String,
}

fn outcome(element: Value, code: i16, message: Option<&StrBytes>, subject: String) -> AdminOutcome {
    AdminOutcome {
        element,
        code,
        message: message.map(|m| m.to_string()).filter(|m| !m.is_empty()),
        subject,
    }
}

fn resource_outcome(t: i8, name: &StrBytes, code: i16, message: Option<&StrBytes>) -> AdminOutcome {
    let kind = resource_type_name(t);
    outcome(
        json!({"resourceType": kind, "resourceName": name.as_str()}),
        code,
        message,
        format!("{} `{name}`", kind.to_lowercase()),
    )
}

/// The results of an admin response, under the `responseElements` key
/// they are listed as.
fn admin_outcomes(resp: &ResponseKind) -> Option<(&'static str, Vec<AdminOutcome>)> {
    let topic = |name: &str, code, message| {
        outcome(
            json!({"name": name}),
            code,
            message,
            format!("topic `{name}`"),
        )
    };
    Some(match resp {
        ResponseKind::CreateTopics(r) => (
            "topics",
            r.topics
                .iter()
                .map(|t| topic(t.name.0.as_str(), t.error_code, t.error_message.as_ref()))
                .collect(),
        ),
        ResponseKind::DeleteTopics(r) => (
            "topics",
            r.responses
                .iter()
                .map(|t| {
                    let name = t.name.as_ref().map(|n| n.0.as_str()).unwrap_or_default();
                    topic(name, t.error_code, t.error_message.as_ref())
                })
                .collect(),
        ),
        ResponseKind::CreatePartitions(r) => (
            "topics",
            r.results
                .iter()
                .map(|t| topic(t.name.0.as_str(), t.error_code, t.error_message.as_ref()))
                .collect(),
        ),
        ResponseKind::AlterConfigs(r) => ("resources", resource_outcomes!(r.responses)),
        ResponseKind::IncrementalAlterConfigs(r) => ("resources", resource_outcomes!(r.responses)),
        ResponseKind::DeleteRecords(r) => (
            "partitions",
            r.topics
                .iter()
                .flat_map(|t| {
                    t.partitions.iter().map(move |p| {
                        outcome(
                            json!({
                                "topic": t.name.0.as_str(),
                                "partition": p.partition_index,
                                "lowWatermark": p.low_watermark,
                            }),
                            p.error_code,
                            None,
                            format!("partition {}-{}", t.name.0.as_str(), p.partition_index),
                        )
                    })
                })
                .collect(),
        ),
        ResponseKind::DeleteGroups(r) => (
            "groups",
            r.results
                .iter()
                .map(|g| {
                    let id = g.group_id.0.as_str();
                    outcome(
                        json!({"groupId": id}),
                        g.error_code,
                        None,
                        format!("group `{id}`"),
                    )
                })
                .collect(),
        ),
        _ => return None,
    })
}

/// The results of an admin response as `responseElements` (each with
/// its `errorCode` and, when there is one, `errorMessage`), and the
/// error of a request that failed as a whole (every result an error).
pub fn response_elements(resp: &ResponseKind) -> (Value, Option<(String, String)>) {
    let (key, outcomes) = admin_outcomes(resp).unwrap_or(("results", Vec::new()));
    let elements: Vec<Value> = outcomes
        .iter()
        .map(|o| {
            let mut v = o.element.clone();
            v["errorCode"] = error_name(o.code).into();
            if let Some(m) = &o.message {
                v["errorMessage"] = m.clone().into();
            }
            v
        })
        .collect();
    let failed = !outcomes.is_empty() && outcomes.iter().all(|o| o.code != 0);
    let error = failed.then(|| {
        let first = &outcomes[0];
        (
            error_name(first.code),
            first
                .message
                .clone()
                .unwrap_or_else(|| format!("{}: {}", first.subject, error_name(first.code))),
        )
    });
    (json!({ key: elements }), error)
}

/// Whether any result of an admin response is an error (for the
/// request error counters); false for other responses.
pub(super) fn any_admin_error(resp: &ResponseKind) -> bool {
    admin_outcomes(resp).is_some_and(|(_, o)| o.iter().any(|o| o.code != 0))
}
