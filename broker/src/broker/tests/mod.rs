//! Broker scenarios written once and run against both storage engines.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use kafka_protocol::records::{Compression, RecordBatchDecoder};

use super::{Advertised, Broker, BrokerConfig};
use crate::protocol::batch::tests::{client_batch, encode_records};
use crate::protocol::versions::SUPPORTED;
use crate::protocol::{encode_response, Request};
use crate::storage::disk::frames::AtRest;
use crate::storage::disk::DiskEngine;
use crate::storage::memory::MemoryEngine;
use crate::storage::Engine;

fn adv() -> Advertised {
    Advertised {
        host: "127.0.0.1".into(),
        port: 9092,
    }
}

fn config() -> BrokerConfig {
    BrokerConfig {
        group_initial_rebalance_delay_ms: 0,
        ..BrokerConfig::default()
    }
}

fn request(api: ApiKey, version: i16, body: RequestKind) -> Request {
    let mut header = RequestHeader::default();
    header.request_api_key = api as i16;
    header.request_api_version = version;
    header.client_id = Some(StrBytes::from_static_str("scenario"));
    Request {
        api_key: api,
        header,
        body,
    }
}

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

async fn produce<E: Engine>(
    b: &Broker<E>,
    topic: &str,
    partition: i32,
    records: Bytes,
    acks: i16,
) -> (i16, i64) {
    let mut pd = PartitionProduceData::default();
    pd.index = partition;
    pd.records = Some(records);
    let mut td = TopicProduceData::default();
    td.name = name(topic);
    td.partition_data = vec![pd];
    let mut req = ProduceRequest::default();
    req.acks = acks;
    req.timeout_ms = 1000;
    req.topic_data = vec![td];
    let resp = b
        .handle(
            request(ApiKey::Produce, 9, RequestKind::Produce(req)),
            &adv(),
        )
        .await;
    match resp {
        Some(ResponseKind::Produce(r)) => {
            let p = &r.responses[0].partition_responses[0];
            (p.error_code, p.base_offset)
        }
        other => panic!("unexpected produce response {other:?}"),
    }
}

async fn fetch<E: Engine>(
    b: &Broker<E>,
    topic: &str,
    offset: i64,
    max_wait_ms: i32,
) -> (i16, i64, Vec<i64>) {
    let mut fp = FetchPartition::default();
    fp.partition = 0;
    fp.fetch_offset = offset;
    fp.partition_max_bytes = 1 << 20;
    let mut ft = FetchTopic::default();
    ft.topic = name(topic);
    ft.partitions = vec![fp];
    let mut req = FetchRequest::default();
    req.max_wait_ms = max_wait_ms;
    req.min_bytes = 1;
    req.max_bytes = 1 << 20;
    req.topics = vec![ft];
    let Some(ResponseKind::Fetch(r)) = b
        .handle(request(ApiKey::Fetch, 11, RequestKind::Fetch(req)), &adv())
        .await
    else {
        panic!("no fetch response")
    };
    let p = &r.responses[0].partitions[0];
    let mut records = p.records.clone().unwrap_or_default();
    let mut offsets = Vec::new();
    while !records.is_empty() {
        let set = RecordBatchDecoder::decode(&mut records).expect("stored batches decode");
        offsets.extend(set.records.iter().map(|r| r.offset));
    }
    (p.error_code, p.high_watermark, offsets)
}

async fn list_offset<E: Engine>(b: &Broker<E>, topic: &str, timestamp: i64) -> i64 {
    let mut lp = ListOffsetsPartition::default();
    lp.partition_index = 0;
    lp.timestamp = timestamp;
    let mut lt = ListOffsetsTopic::default();
    lt.name = name(topic);
    lt.partitions = vec![lp];
    let mut req = ListOffsetsRequest::default();
    req.topics = vec![lt];
    let Some(ResponseKind::ListOffsets(r)) = b
        .handle(
            request(ApiKey::ListOffsets, 5, RequestKind::ListOffsets(req)),
            &adv(),
        )
        .await
    else {
        panic!("no list offsets response")
    };
    r.topics[0].partitions[0].offset
}

// ---- scenarios -------------------------------------------------------------

async fn produce_assigns_offsets_and_fetch_returns_whole_batches<E: Engine + Clone>(engine: E) {
    let b = Broker::open(config(), engine).await.unwrap();
    assert_eq!(
        produce(&b, "orders", 0, client_batch(3, Compression::None, None), 1).await,
        (0, 0)
    );
    assert_eq!(
        produce(&b, "orders", 0, client_batch(4, Compression::Lz4, None), -1).await,
        (0, 3)
    );
    let (err, hw, offsets) = fetch(&b, "orders", 0, 0).await;
    assert_eq!((err, hw, offsets), (0, 7, (0..7).collect::<Vec<_>>()));
    // A partition the topic lacks, a negative index included, is refused.
    for partition in [-1, 1, i32::MIN] {
        let batch = client_batch(1, Compression::None, None);
        assert_eq!(
            produce(&b, "orders", partition, batch, 1).await.0,
            crate::broker::code::UNKNOWN_TOPIC_OR_PARTITION,
            "partition {partition}"
        );
    }
    // Mid-batch: the whole batch holding offset 4 comes back.
    assert_eq!(fetch(&b, "orders", 4, 0).await.2, vec![3, 4, 5, 6]);
    assert_eq!(
        fetch(&b, "orders", 8, 0).await.0,
        1,
        "beyond the end is OFFSET_OUT_OF_RANGE"
    );
    assert_eq!(list_offset(&b, "orders", -2).await, 0);
    assert_eq!(list_offset(&b, "orders", -1).await, 7);
    // client_batch stamps record i with 1_700_000_000_000 + i.
    assert_eq!(list_offset(&b, "orders", 1_700_000_000_002).await, 2);
}

/// A batch of `n` records, record `i` stamped `timestamp(i)`.
fn stamped(n: usize, compression: Compression, timestamp: impl Fn(usize) -> i64) -> Bytes {
    encode_records(n, compression, None, timestamp, |i| {
        Bytes::from(format!("v{i}"))
    })
}

async fn list_offsets_by_timestamp_finds_the_record<E: Engine + Clone>(engine: E) {
    let b = Broker::open(config(), engine).await.unwrap();
    let t = 1_800_000_000_000;
    // Offsets 0-3 stamped t, t+50, t+10, t+20; offsets 4-6 stamped t+30..t+32.
    let first = stamped(4, Compression::Gzip, |i| t + [0, 50, 10, 20][i]);
    produce(&b, "times", 0, first, 1).await;
    produce(
        &b,
        "times",
        0,
        stamped(3, Compression::None, |i| t + 30 + i as i64),
        1,
    )
    .await;
    // The first batch whose largest timestamp reaches the target, and in it
    // the first record at or after it, as Kafka answers.
    assert_eq!(list_offset(&b, "times", t + 5).await, 1);
    assert_eq!(list_offset(&b, "times", t + 31).await, 1);
    assert_eq!(list_offset(&b, "times", t + 51).await, -1);
    // Max timestamp (-3): the record holding it, not the batch's last.
    assert_eq!(list_offset(&b, "times", -3).await, 1);
}

async fn idempotent_retry_is_not_written_twice<E: Engine + Clone>(engine: E) {
    let b = Broker::open(config(), engine).await.unwrap();
    let batch = client_batch(5, Compression::Snappy, Some((77, 0)));
    assert_eq!(produce(&b, "idem", 0, batch.clone(), -1).await, (0, 0));
    assert_eq!(
        produce(&b, "idem", 0, batch, -1).await,
        (0, 0),
        "retry answered with the first offset"
    );
    let gap = client_batch(1, Compression::None, Some((77, 9)));
    assert_eq!(
        produce(&b, "idem", 0, gap, -1).await.0,
        super::producers::OUT_OF_ORDER_SEQUENCE_NUMBER
    );
    assert_eq!(
        produce(
            &b,
            "idem",
            0,
            client_batch(2, Compression::None, Some((77, 5))),
            -1
        )
        .await,
        (0, 5)
    );
    assert_eq!(fetch(&b, "idem", 0, 0).await.2, (0..7).collect::<Vec<_>>());
}

async fn restart_keeps_topics_records_offsets_and_producer_state<E: Engine + Clone>(
    engine: E,
    reopen: impl Fn() -> E,
) {
    {
        let b = Broker::open(config(), engine).await.unwrap();
        produce(
            &b,
            "keep",
            0,
            client_batch(3, Compression::Zstd, Some((5, 0))),
            -1,
        )
        .await;
        produce(&b, "keep", 0, client_batch(2, Compression::Gzip, None), -1).await;
        admin_client::commit(&b, "g", "keep", 4).await;
    }
    let b = Broker::open(config(), reopen()).await.unwrap();
    assert_eq!(fetch(&b, "keep", 0, 0).await.2, (0..5).collect::<Vec<_>>());
    assert_eq!(
        produce(
            &b,
            "keep",
            0,
            client_batch(3, Compression::Zstd, Some((5, 0))),
            -1
        )
        .await,
        (0, 0)
    );
    assert_eq!(
        produce(&b, "keep", 0, client_batch(1, Compression::None, None), -1).await,
        (0, 5)
    );
    let mut req = OffsetFetchRequest::default();
    req.group_id = GroupId(StrBytes::from_static_str("g"));
    req.topics = None;
    let Some(ResponseKind::OffsetFetch(r)) = b
        .handle(
            request(ApiKey::OffsetFetch, 5, RequestKind::OffsetFetch(req)),
            &adv(),
        )
        .await
    else {
        panic!("no offset fetch response")
    };
    assert_eq!(r.topics[0].partitions[0].committed_offset, 4);
}

async fn long_poll_wakes_on_produce<E: Engine + Clone>(engine: E) {
    let b = Broker::open(config(), engine).await.unwrap();
    produce(&b, "poll", 0, client_batch(1, Compression::None, None), 1).await;
    let b2: Arc<Broker<E>> = b.clone();
    let waiter = tokio::spawn(async move { fetch(&b2, "poll", 1, 10_000).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiter.is_finished(), "fetch with nothing to return waits");
    produce(&b, "poll", 0, client_batch(2, Compression::None, None), 1).await;
    let (_, _, offsets) = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(offsets, vec![1, 2]);
}

async fn group_rebalances_when_a_member_leaves<E: Engine + Clone>(engine: E) {
    let b = Broker::open(config(), engine).await.unwrap();
    let join = |member: &str| {
        let mut p = JoinGroupRequestProtocol::default();
        p.name = StrBytes::from_static_str("range");
        p.metadata = Bytes::from_static(b"meta");
        let mut req = JoinGroupRequest::default();
        req.group_id = GroupId(StrBytes::from_static_str("grp"));
        req.session_timeout_ms = 10_000;
        req.rebalance_timeout_ms = 10_000;
        req.member_id = StrBytes::from_string(member.to_string());
        req.protocol_type = StrBytes::from_static_str("consumer");
        req.protocols = vec![p];
        request(ApiKey::JoinGroup, 5, RequestKind::JoinGroup(req))
    };
    let joined = |r: Option<ResponseKind>| match r {
        Some(ResponseKind::JoinGroup(r)) => r,
        other => panic!("unexpected {other:?}"),
    };
    // v4+: the first join gets MEMBER_ID_REQUIRED and an id.
    let first = joined(b.handle(join(""), &adv()).await);
    assert_eq!(first.error_code, crate::group::MEMBER_ID_REQUIRED);
    let a = joined(b.handle(join(first.member_id.as_str()), &adv()).await);
    assert_eq!((a.error_code, a.generation_id, a.members.len()), (0, 1, 1));
    let second = joined(b.handle(join(""), &adv()).await);
    let (b1, b2) = (b.clone(), b.clone());
    let a_id = a.member_id.to_string();
    let s_id = second.member_id.to_string();
    // The newcomer's join starts a rebalance that waits for the existing member.
    let jb = tokio::spawn({
        let r = join(&s_id);
        async move { b2.handle(r, &adv()).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!jb.is_finished());
    let ja = tokio::spawn({
        let r = join(&a_id);
        async move { b1.handle(r, &adv()).await }
    });
    let (ra, rb) = (joined(ja.await.unwrap()), joined(jb.await.unwrap()));
    assert_eq!((ra.generation_id, rb.generation_id), (2, 2));
    assert_eq!(ra.leader, rb.leader);
    assert_eq!(
        ra.members.len() + rb.members.len(),
        2,
        "only the leader gets the member list"
    );
    // The non-leader leaves; the leader's heartbeat says rebalance, its rejoin is generation 3.
    let (leader, follower) = if ra.leader == ra.member_id {
        (ra, rb)
    } else {
        (rb, ra)
    };
    let mut leave = LeaveGroupRequest::default();
    leave.group_id = GroupId(StrBytes::from_static_str("grp"));
    leave.member_id = follower.member_id.clone();
    b.handle(
        request(ApiKey::LeaveGroup, 2, RequestKind::LeaveGroup(leave)),
        &adv(),
    )
    .await;
    let mut hb = HeartbeatRequest::default();
    hb.group_id = GroupId(StrBytes::from_static_str("grp"));
    hb.generation_id = 2;
    hb.member_id = leader.member_id.clone();
    let Some(ResponseKind::Heartbeat(h)) = b
        .handle(
            request(ApiKey::Heartbeat, 3, RequestKind::Heartbeat(hb)),
            &adv(),
        )
        .await
    else {
        panic!("no heartbeat response")
    };
    assert_eq!(h.error_code, crate::group::REBALANCE_IN_PROGRESS);
    let again = joined(b.handle(join(leader.member_id.as_str()), &adv()).await);
    assert_eq!(
        (again.error_code, again.generation_id, again.members.len()),
        (0, 3, 1)
    );
}

async fn every_advertised_version_encodes<E: Engine + Clone>(engine: E) {
    let b = Broker::open(config(), engine).await.unwrap();
    produce(&b, "enc", 0, client_batch(1, Compression::None, None), 1).await;
    for (api, min, max) in SUPPORTED {
        for v in *min..=*max {
            let body = match api {
                ApiKey::Metadata => RequestKind::Metadata(MetadataRequest::default()),
                ApiKey::ApiVersions => RequestKind::ApiVersions(ApiVersionsRequest::default()),
                ApiKey::DescribeGroups => {
                    RequestKind::DescribeGroups(DescribeGroupsRequest::default())
                }
                ApiKey::ListGroups => RequestKind::ListGroups(ListGroupsRequest::default()),
                ApiKey::InitProducerId => {
                    RequestKind::InitProducerId(InitProducerIdRequest::default())
                }
                ApiKey::FindCoordinator => {
                    RequestKind::FindCoordinator(FindCoordinatorRequest::default())
                }
                ApiKey::AlterConfigs => RequestKind::AlterConfigs(AlterConfigsRequest::default()),
                ApiKey::IncrementalAlterConfigs => {
                    RequestKind::IncrementalAlterConfigs(IncrementalAlterConfigsRequest::default())
                }
                ApiKey::DeleteRecords => {
                    RequestKind::DeleteRecords(DeleteRecordsRequest::default())
                }
                ApiKey::DeleteGroups => RequestKind::DeleteGroups(DeleteGroupsRequest::default()),
                _ => continue,
            };
            let resp = b.handle(request(*api, v, body), &adv()).await.unwrap();
            encode_response(*api, v, 1, &resp).unwrap_or_else(|e| panic!("{e}"));
        }
    }
    for v in 3..=9 {
        let mut pd = PartitionProduceData::default();
        pd.records = Some(client_batch(1, Compression::None, None));
        let mut td = TopicProduceData::default();
        td.name = name("enc");
        td.partition_data = vec![pd];
        let mut req = ProduceRequest::default();
        req.acks = 1;
        req.topic_data = vec![td];
        let resp = b
            .handle(
                request(ApiKey::Produce, v, RequestKind::Produce(req)),
                &adv(),
            )
            .await
            .unwrap();
        encode_response(ApiKey::Produce, v, 1, &resp).unwrap();
    }
    let mut buf = BytesMut::new();
    MetadataRequest::default().encode(&mut buf, 12).unwrap();
}

macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test]
            async fn $name() {
                super::$name(crate::storage::memory::MemoryEngine::default()).await
            })*
        }
        mod disk {
            $(#[tokio::test]
            async fn $name() {
                let dir = tempfile::tempdir().unwrap();
                super::$name(super::disk_engine(dir.path())).await
            })*
        }
    };
}

fn disk_engine(dir: &std::path::Path) -> DiskEngine {
    let keys = std::sync::Arc::new(wharf_envelope::LocalKeyProvider::from_key([7; 32]));
    DiskEngine::open(dir, AtRest::sealed(keys)).unwrap()
}

on_both_engines!(
    produce_assigns_offsets_and_fetch_returns_whole_batches,
    list_offsets_by_timestamp_finds_the_record,
    idempotent_retry_is_not_written_twice,
    long_poll_wakes_on_produce,
    group_rebalances_when_a_member_leaves,
    every_advertised_version_encodes,
);

#[tokio::test]
async fn restart_on_memory_engine() {
    let engine = MemoryEngine::default();
    let again = engine.clone();
    restart_keeps_topics_records_offsets_and_producer_state(engine, move || again.clone()).await;
}

#[tokio::test]
async fn restart_on_disk_engine() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    restart_keeps_topics_records_offsets_and_producer_state(disk_engine(&path), move || {
        disk_engine(&path)
    })
    .await;
}

#[tokio::test]
async fn produce_and_fetch_are_counted_per_topic_and_admin_requests_audited() {
    let (b, sink) = admin_client::audited_broker().await;
    let batch = client_batch(3, Compression::None, None);
    let bytes = batch.len() as f64;
    assert_eq!(produce(&b, "orders", 0, batch, 1).await.0, 0);
    assert_eq!(fetch(&b, "orders", 0, 0).await.2, vec![0, 1, 2]);
    b.refresh_metrics().await;
    let samples = b.metrics().collect();
    let value = |key: &str| {
        samples
            .iter()
            .find(|s| s.key == key && s.labels.iter().any(|(_, v)| v == "orders"))
            .map(|s| s.value)
    };
    assert_eq!(value("bytes_in.topic"), Some(bytes));
    assert_eq!(value("messages_in.topic"), Some(3.0));
    assert_eq!(value("messages_out.topic"), Some(3.0));
    assert!(value("log_size").is_some());
    assert!(
        sink.json_lines().is_empty(),
        "produce and fetch are not audited"
    );

    // An admin request gives one audit record; a produce gives none.
    let mut t = kafka_protocol::messages::create_topics_request::CreatableTopic::default();
    t.name = name("payments");
    t.num_partitions = 2;
    t.replication_factor = 1;
    let mut req = CreateTopicsRequest::default();
    req.topics = vec![t];
    let body = RequestKind::CreateTopics(req);
    let r = admin_client::audited(&b, &sink, ApiKey::CreateTopics, 5, body).await;
    assert_eq!(r["eventName"], "CreateTopics");
    assert_eq!(r["sourceIPAddress"], "10.0.0.7");
    assert_eq!(r["userAgent"], "scenario");
    assert_eq!(r["requestParameters"]["topics"][0]["numPartitions"], 2);
    assert_eq!(
        r["responseElements"]["topics"][0]["errorCode"],
        serde_json::json!("NONE")
    );
    assert!(b
        .audit_begin(&RequestKind::Produce(ProduceRequest::default()))
        .is_none());
}

mod admin;
mod admin_audit;
mod admin_client;
