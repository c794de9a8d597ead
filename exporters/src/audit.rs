//! Audit records: one CloudTrail-shaped record per admin request, written
//! to the shipper's socket as a `kind: audit` line.
//!
//! ```text
//! {"kind":"audit","ts":"2026-11-25T01:02:03.000Z","eventVersion":"1.09","eventSource":"kafka-cluster.amazonaws.com",
//!  "eventName":"CreateTopics","eventTime":"2026-11-25T01:02:03Z","eventType":"AwsApiCall",
//!  "eventID":"…uuid…","requestID":"…","readOnly":false,"sourceIPAddress":"10.0.0.7",
//!  "userAgent":"rdkafka","userIdentity":{"type":"Unknown","principalId":"User:ANONYMOUS"},
//!  "requestParameters":{…},"responseElements":{…},
//!  "additionalEventData":{"clusterName":"orders","brokerId":"1","apiVersion":5}}
//! ```
//!
//! A request that failed as a whole carries `errorCode` (Kafka's error name,
//! e.g. `TOPIC_ALREADY_EXISTS`) and `errorMessage` instead of
//! `responseElements`; per-item errors of a partly successful request stay
//! in `responseElements`. `eventSource` is MSK's, so queries written for
//! MSK's CloudTrail events work; the shipper delivers the records under
//! `AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/`.

use std::net::IpAddr;
use std::time::SystemTime;

use serde_json::{json, Map, Value};

use crate::sink::LineSink;
use crate::time::{rfc3339_millis, rfc3339_seconds};

/// CloudTrail record version written.
pub const EVENT_VERSION: &str = "1.09";
/// `eventSource` of MSK's cluster (data-plane) events.
pub const DEFAULT_EVENT_SOURCE: &str = "kafka-cluster.amazonaws.com";

/// Admin requests that are audited, with whether they only read.
pub const ADMIN_REQUESTS: &[(&str, bool)] = &[
    ("CreateTopics", false),
    ("DeleteTopics", false),
    ("CreatePartitions", false),
    ("AlterConfigs", false),
    ("IncrementalAlterConfigs", false),
    ("DeleteRecords", false),
    ("DeleteGroups", false),
];

/// One admin request's audit event, before the [`Auditor`] stamps it.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    event_name: String,
    read_only: bool,
    source_ip: Option<IpAddr>,
    user_agent: Option<String>,
    principal: Option<String>,
    request_id: Option<String>,
    api_version: Option<i16>,
    request_parameters: Value,
    outcome: Outcome,
    event_time: Option<SystemTime>,
}

#[derive(Debug, Clone)]
enum Outcome {
    Response(Value),
    Error { code: String, message: String },
}

impl AuditEvent {
    /// An event named after the Kafka request, e.g. `CreateTopics`.
    /// `readOnly` follows [`ADMIN_REQUESTS`] (false for names not listed).
    pub fn new(event_name: impl Into<String>) -> Self {
        let event_name = event_name.into();
        let read_only = ADMIN_REQUESTS
            .iter()
            .find(|(n, _)| *n == event_name)
            .is_some_and(|(_, ro)| *ro);
        Self {
            event_name,
            read_only,
            source_ip: None,
            user_agent: None,
            principal: None,
            request_id: None,
            api_version: None,
            request_parameters: Value::Null,
            outcome: Outcome::Response(Value::Null),
            event_time: None,
        }
    }

    /// The client's address.
    pub fn source_ip(mut self, ip: IpAddr) -> Self {
        self.source_ip = Some(ip);
        self
    }

    /// The client id the Kafka client sent (CloudTrail's `userAgent`).
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.user_agent = Some(client_id.into());
        self
    }

    /// The authenticated principal, e.g. `User:alice` (default
    /// `User:ANONYMOUS`).
    pub fn principal(mut self, principal: impl Into<String>) -> Self {
        self.principal = Some(principal.into());
        self
    }

    /// The request's id, e.g. the connection and Kafka correlation id
    /// (default: a fresh UUID).
    pub fn request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }

    /// The Kafka API version of the request.
    pub fn api_version(mut self, version: i16) -> Self {
        self.api_version = Some(version);
        self
    }

    /// What was asked, e.g. `{"topics":[{"name":"t","numPartitions":3}]}`.
    pub fn request_parameters(mut self, params: Value) -> Self {
        self.request_parameters = params;
        self
    }

    /// What was answered (per-item results, errors included).
    pub fn response_elements(mut self, response: Value) -> Self {
        self.outcome = Outcome::Response(response);
        self
    }

    /// The request failed as a whole: Kafka's error name and a message.
    pub fn error(mut self, code: impl Into<String>, message: impl Into<String>) -> Self {
        self.outcome = Outcome::Error {
            code: code.into(),
            message: message.into(),
        };
        self
    }

    /// Overrides `readOnly`.
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// When it happened (default: when the auditor writes it).
    pub fn event_time(mut self, t: SystemTime) -> Self {
        self.event_time = Some(t);
        self
    }
}

/// Stamps audit events with the cluster's identity and writes them.
#[derive(Debug, Clone)]
pub struct Auditor<W> {
    sink: W,
    cluster: String,
    broker_id: String,
    event_source: String,
    region: Option<String>,
    account: Option<String>,
}

impl<W: LineSink> Auditor<W> {
    /// An auditor for one broker of one cluster, writing to `sink`.
    pub fn new(sink: W, cluster: impl Into<String>, broker_id: impl std::fmt::Display) -> Self {
        Self {
            sink,
            cluster: cluster.into(),
            broker_id: broker_id.to_string(),
            event_source: DEFAULT_EVENT_SOURCE.into(),
            region: None,
            account: None,
        }
    }

    /// Sets `awsRegion` and `recipientAccountId` on every record.
    pub fn with_account(mut self, region: impl Into<String>, account: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self.account = Some(account.into());
        self
    }

    /// Overrides `eventSource`.
    pub fn with_event_source(mut self, source: impl Into<String>) -> Self {
        self.event_source = source.into();
        self
    }

    /// The record for `event`, as written.
    pub fn record(&self, event: AuditEvent) -> Value {
        let mut r = Map::new();
        r.insert("kind".into(), "audit".into());
        r.insert("eventVersion".into(), EVENT_VERSION.into());
        r.insert("eventSource".into(), self.event_source.clone().into());
        r.insert("eventName".into(), event.event_name.into());
        let t = event.event_time.unwrap_or_else(SystemTime::now);
        r.insert("eventTime".into(), rfc3339_seconds(t).into());
        // The socket format's event time, which the shipper partitions by.
        r.insert("ts".into(), rfc3339_millis(t).into());
        r.insert("eventType".into(), "AwsApiCall".into());
        r.insert("eventID".into(), uuid::Uuid::new_v4().to_string().into());
        let request_id = event
            .request_id
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        r.insert("requestID".into(), request_id.into());
        r.insert("readOnly".into(), event.read_only.into());
        if let Some(region) = &self.region {
            r.insert("awsRegion".into(), region.clone().into());
        }
        if let Some(account) = &self.account {
            r.insert("recipientAccountId".into(), account.clone().into());
        }
        let ip = event
            .source_ip
            .map_or("unknown".to_string(), |ip| ip.to_string());
        r.insert("sourceIPAddress".into(), ip.into());
        r.insert(
            "userAgent".into(),
            event.user_agent.unwrap_or_default().into(),
        );
        r.insert(
            "userIdentity".into(),
            json!({
                "type": "Unknown",
                "principalId": event.principal.unwrap_or_else(|| "User:ANONYMOUS".into()),
            }),
        );
        r.insert("requestParameters".into(), event.request_parameters);
        match event.outcome {
            Outcome::Response(v) => {
                r.insert("responseElements".into(), v);
            }
            Outcome::Error { code, message } => {
                r.insert("errorCode".into(), code.into());
                r.insert("errorMessage".into(), message.into());
            }
        }
        let mut extra = Map::new();
        extra.insert("clusterName".into(), self.cluster.clone().into());
        extra.insert("brokerId".into(), self.broker_id.clone().into());
        if let Some(v) = event.api_version {
            extra.insert("apiVersion".into(), v.into());
        }
        r.insert("additionalEventData".into(), Value::Object(extra));
        Value::Object(r)
    }

    /// Writes the record for `event`; false if the line was dropped (and
    /// counted by the writer).
    pub fn emit(&self, event: AuditEvent) -> bool {
        let line = serde_json::to_vec(&self.record(event)).unwrap_or_default();
        self.sink.try_send_line(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::MemorySink;
    use std::time::Duration;

    #[test]
    fn a_create_topics_request_becomes_one_cloudtrail_record() {
        let sink = MemorySink::new();
        let auditor =
            Auditor::new(sink.clone(), "orders", 1).with_account("eu-west-1", "000000000000");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_032_523);
        assert!(auditor.emit(
            AuditEvent::new("CreateTopics")
                .source_ip("10.0.0.7".parse().unwrap())
                .client_id("rdkafka")
                .request_id("conn-3/corr-17")
                .api_version(5)
                .request_parameters(json!({"topics": [{"name": "payments", "numPartitions": 3}]}))
                .response_elements(json!({"topics": [{"name": "payments", "errorCode": "NONE"}]}))
                .event_time(t),
        ));
        let lines = sink.json_lines();
        assert_eq!(lines.len(), 1);
        let r = &lines[0];
        assert_eq!(r["kind"], "audit");
        assert_eq!(r["eventVersion"], EVENT_VERSION);
        assert_eq!(r["eventSource"], DEFAULT_EVENT_SOURCE);
        assert_eq!(r["eventName"], "CreateTopics");
        assert_eq!(r["eventTime"], "2025-11-25T01:02:03Z");
        assert_eq!(r["ts"], "2025-11-25T01:02:03.000Z");
        assert_eq!(r["eventType"], "AwsApiCall");
        assert_eq!(r["readOnly"], false);
        assert_eq!(r["sourceIPAddress"], "10.0.0.7");
        assert_eq!(r["userAgent"], "rdkafka");
        assert_eq!(r["requestID"], "conn-3/corr-17");
        assert_eq!(r["awsRegion"], "eu-west-1");
        assert_eq!(r["recipientAccountId"], "000000000000");
        assert_eq!(r["requestParameters"]["topics"][0]["numPartitions"], 3);
        assert_eq!(r["responseElements"]["topics"][0]["errorCode"], "NONE");
        assert!(r.get("errorCode").is_none());
        assert_eq!(r["additionalEventData"]["clusterName"], "orders");
        assert_eq!(r["additionalEventData"]["apiVersion"], 5);
        assert!(uuid::Uuid::parse_str(r["eventID"].as_str().unwrap()).is_ok());
    }

    #[test]
    fn a_failed_request_carries_the_error_instead_of_a_response() {
        let auditor = Auditor::new(MemorySink::new(), "orders", 1);
        let r = auditor.record(
            AuditEvent::new("DeleteTopics")
                .error("UNKNOWN_TOPIC_OR_PARTITION", "topic nope does not exist"),
        );
        assert_eq!(r["errorCode"], "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(r["errorMessage"], "topic nope does not exist");
        assert!(r.get("responseElements").is_none());
        assert_eq!(r["sourceIPAddress"], "unknown");
        assert_eq!(r["userIdentity"]["principalId"], "User:ANONYMOUS");
        // Each record has its own ids.
        let again = auditor.record(AuditEvent::new("DeleteTopics"));
        assert_ne!(r["eventID"], again["eventID"]);
        assert_ne!(r["requestID"], again["requestID"]);
    }

    #[test]
    fn every_admin_request_of_the_issue_is_audited_as_a_write() {
        for name in [
            "CreateTopics",
            "DeleteTopics",
            "CreatePartitions",
            "AlterConfigs",
            "IncrementalAlterConfigs",
            "DeleteRecords",
            "DeleteGroups",
        ] {
            let r = Auditor::new(MemorySink::new(), "c", 1).record(AuditEvent::new(name));
            assert_eq!(r["readOnly"], false, "{name}");
        }
    }
}
