//! Requests the admin scenarios send, each returning what a client reads
//! from the response (every response is also encoded at its version).

use std::collections::BTreeMap;

use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::*;

use super::*;
use crate::broker::configs::RESOURCE_TOPIC;

pub(super) fn st(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// Handles `body` at `version` and checks the response encodes there.
pub(super) async fn call<E: Engine>(
    b: &Broker<E>,
    api: ApiKey,
    version: i16,
    body: RequestKind,
) -> ResponseKind {
    let resp = b
        .handle(request(api, version, body), &adv())
        .await
        .expect("a response");
    encode_response(api, version, 1, &resp).unwrap_or_else(|e| panic!("{e}"));
    resp
}

pub(super) async fn create<E: Engine>(b: &Broker<E>, topic: &str, partitions: i32) {
    let mut t = create_topics_request::CreatableTopic::default();
    t.name = name(topic);
    t.num_partitions = partitions;
    t.replication_factor = 1;
    let mut req = CreateTopicsRequest::default();
    req.topics = vec![t];
    let ResponseKind::CreateTopics(r) =
        call(b, ApiKey::CreateTopics, 5, RequestKind::CreateTopics(req)).await
    else {
        panic!("not a CreateTopics response")
    };
    assert_eq!(r.topics[0].error_code, 0);
}

/// One IncrementalAlterConfigs entry: (key, operation, value).
pub(super) type Op<'a> = (&'a str, i8, Option<&'a str>);

/// An IncrementalAlterConfigs request for one resource.
pub(super) fn incremental_request(
    resource_type: i8,
    resource: &str,
    ops: &[Op<'_>],
    validate_only: bool,
) -> RequestKind {
    let mut res = incremental_alter_configs_request::AlterConfigsResource::default();
    res.resource_type = resource_type;
    res.resource_name = st(resource);
    res.configs = ops
        .iter()
        .map(|(k, op, v)| {
            let mut c = incremental_alter_configs_request::AlterableConfig::default();
            c.name = st(k);
            c.config_operation = *op;
            c.value = v.map(st);
            c
        })
        .collect();
    let mut req = IncrementalAlterConfigsRequest::default();
    req.resources = vec![res];
    req.validate_only = validate_only;
    RequestKind::IncrementalAlterConfigs(req)
}

/// An AlterConfigs request setting `configs` of one topic.
pub(super) fn alter_request(topic: &str, configs: &[(&str, &str)]) -> RequestKind {
    let mut res = alter_configs_request::AlterConfigsResource::default();
    res.resource_type = RESOURCE_TOPIC;
    res.resource_name = st(topic);
    res.configs = configs
        .iter()
        .map(|(k, v)| {
            let mut c = alter_configs_request::AlterableConfig::default();
            c.name = st(k);
            c.value = Some(st(v));
            c
        })
        .collect();
    let mut req = AlterConfigsRequest::default();
    req.resources = vec![res];
    RequestKind::AlterConfigs(req)
}

fn outcome(code: i16, message: Option<&StrBytes>) -> (i16, String) {
    (code, message.map(|m| m.to_string()).unwrap_or_default())
}

/// IncrementalAlterConfigs on one resource: (error code, message).
pub(super) async fn incremental<E: Engine>(
    b: &Broker<E>,
    resource_type: i8,
    resource: &str,
    ops: &[Op<'_>],
    validate_only: bool,
) -> (i16, String) {
    let req = incremental_request(resource_type, resource, ops, validate_only);
    let ResponseKind::IncrementalAlterConfigs(r) =
        call(b, ApiKey::IncrementalAlterConfigs, 1, req).await
    else {
        panic!("not an IncrementalAlterConfigs response")
    };
    outcome(
        r.responses[0].error_code,
        r.responses[0].error_message.as_ref(),
    )
}

/// AlterConfigs (v0) on one topic: (error code, message).
pub(super) async fn alter<E: Engine>(
    b: &Broker<E>,
    topic: &str,
    configs: &[(&str, &str)],
) -> (i16, String) {
    let req = alter_request(topic, configs);
    let ResponseKind::AlterConfigs(r) = call(b, ApiKey::AlterConfigs, 0, req).await else {
        panic!("not an AlterConfigs response")
    };
    outcome(
        r.responses[0].error_code,
        r.responses[0].error_message.as_ref(),
    )
}

/// DescribeConfigs of a topic: key -> (value, source).
pub(super) async fn describe<E: Engine>(
    b: &Broker<E>,
    topic: &str,
) -> BTreeMap<String, (String, i8)> {
    let mut res = describe_configs_request::DescribeConfigsResource::default();
    res.resource_type = RESOURCE_TOPIC;
    res.resource_name = st(topic);
    res.configuration_keys = None;
    let mut req = DescribeConfigsRequest::default();
    req.resources = vec![res];
    let ResponseKind::DescribeConfigs(r) = call(
        b,
        ApiKey::DescribeConfigs,
        4,
        RequestKind::DescribeConfigs(req),
    )
    .await
    else {
        panic!("not a DescribeConfigs response")
    };
    assert_eq!(
        r.results[0].error_code, 0,
        "{:?}",
        r.results[0].error_message
    );
    r.results[0]
        .configs
        .iter()
        .map(|c| {
            (
                c.name.to_string(),
                (c.value.as_ref().unwrap().to_string(), c.config_source),
            )
        })
        .collect()
}

/// A DeleteRecords request for one partition.
pub(super) fn delete_records_request(topic: &str, partition: i32, offset: i64) -> RequestKind {
    let mut p = DeleteRecordsPartition::default();
    p.partition_index = partition;
    p.offset = offset;
    let mut t = DeleteRecordsTopic::default();
    t.name = name(topic);
    t.partitions = vec![p];
    let mut req = DeleteRecordsRequest::default();
    req.topics = vec![t];
    RequestKind::DeleteRecords(req)
}

pub(super) fn delete_groups_request(groups: &[&str]) -> RequestKind {
    let mut req = DeleteGroupsRequest::default();
    req.groups_names = groups.iter().map(|g| GroupId(st(g))).collect();
    RequestKind::DeleteGroups(req)
}

/// DeleteRecords of one partition: (error code, low watermark).
pub(super) async fn delete_records<E: Engine>(
    b: &Broker<E>,
    topic: &str,
    partition: i32,
    offset: i64,
) -> (i16, i64) {
    let req = delete_records_request(topic, partition, offset);
    let ResponseKind::DeleteRecords(r) = call(b, ApiKey::DeleteRecords, 2, req).await else {
        panic!("not a DeleteRecords response")
    };
    let p = &r.topics[0].partitions[0];
    (p.error_code, p.low_watermark)
}

pub(super) async fn delete_groups<E: Engine>(b: &Broker<E>, groups: &[&str]) -> Vec<i16> {
    let req = delete_groups_request(groups);
    let ResponseKind::DeleteGroups(r) = call(b, ApiKey::DeleteGroups, 2, req).await else {
        panic!("not a DeleteGroups response")
    };
    r.results.iter().map(|g| g.error_code).collect()
}

pub(super) async fn list_groups<E: Engine>(b: &Broker<E>) -> Vec<String> {
    let ResponseKind::ListGroups(r) = call(
        b,
        ApiKey::ListGroups,
        4,
        RequestKind::ListGroups(ListGroupsRequest::default()),
    )
    .await
    else {
        panic!("not a ListGroups response")
    };
    r.groups.iter().map(|g| g.group_id.0.to_string()).collect()
}

/// Commits `offset` for partition 0 of `topic` as a group without members.
pub(super) async fn commit<E: Engine>(b: &Broker<E>, group: &str, topic: &str, offset: i64) {
    let mut p = OffsetCommitRequestPartition::default();
    p.partition_index = 0;
    p.committed_offset = offset;
    let mut t = OffsetCommitRequestTopic::default();
    t.name = name(topic);
    t.partitions = vec![p];
    let mut req = OffsetCommitRequest::default();
    req.group_id = GroupId(st(group));
    req.generation_id_or_member_epoch = -1;
    req.topics = vec![t];
    let ResponseKind::OffsetCommit(r) =
        call(b, ApiKey::OffsetCommit, 7, RequestKind::OffsetCommit(req)).await
    else {
        panic!("not an OffsetCommit response")
    };
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
}

pub(super) async fn committed<E: Engine>(b: &Broker<E>, group: &str, topic: &str) -> i64 {
    let mut t = offset_fetch_request::OffsetFetchRequestTopic::default();
    t.name = name(topic);
    t.partition_indexes = vec![0];
    let mut req = OffsetFetchRequest::default();
    req.group_id = GroupId(st(group));
    req.topics = Some(vec![t]);
    let ResponseKind::OffsetFetch(r) =
        call(b, ApiKey::OffsetFetch, 5, RequestKind::OffsetFetch(req)).await
    else {
        panic!("not an OffsetFetch response")
    };
    r.topics[0].partitions[0].committed_offset
}

/// A batch of `n` records whose values are `size` bytes each, stamped now.
pub(super) fn big_batch(n: usize, size: usize) -> Bytes {
    let now = crate::now_ms();
    crate::protocol::batch::tests::encode_records(
        n,
        Compression::None,
        None,
        |_| now,
        |_| Bytes::from(vec![b'x'; size]),
    )
}

/// Handles `body` and writes its audit record as the server does;
/// checks that it gave exactly one record into `sink` and returns it.
pub(super) async fn audited<E: Engine>(
    b: &Broker<E>,
    sink: &wharf_exporters::MemorySink,
    api: ApiKey,
    version: i16,
    body: RequestKind,
) -> serde_json::Value {
    let before = sink.json_lines().len();
    let pending = b.audit_begin(&body).expect("an audited request");
    let resp = b.handle(request(api, version, body), &adv()).await;
    let peer: std::net::SocketAddr = "10.0.0.7:5123".parse().unwrap();
    b.audit_end(pending, resp.as_ref(), "scenario", peer, version, 17);
    let lines = sink.json_lines();
    assert_eq!(lines.len(), before + 1, "exactly one record: {lines:?}");
    lines.last().unwrap().clone()
}

/// A broker on the memory engine whose audit records go to the returned sink.
pub(super) async fn audited_broker() -> (Arc<Broker<MemoryEngine>>, wharf_exporters::MemorySink) {
    use wharf_exporters::{Auditor, MemorySink};
    let b = Broker::open(config(), MemoryEngine::default())
        .await
        .unwrap();
    let sink = MemorySink::new();
    let auditor = Auditor::new(sink.clone(), "wharf", 0);
    b.set_audit(Box::new(move |e| {
        auditor.emit(e);
    }));
    (b, sink)
}
