//! Admin scenarios on both engines: AlterConfigs and
//! IncrementalAlterConfigs, DeleteRecords, DeleteGroups, and what a client
//! observes afterwards, also after a restart.

use kafka_protocol::messages::*;

use super::admin_client::*;
use super::*;
use crate::broker::code;
use crate::broker::configs::{
    OP_APPEND, OP_DELETE, OP_SET, OP_SUBTRACT, RESOURCE_BROKER, RESOURCE_TOPIC,
};
use crate::group::{GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP};
// ---- scenarios -------------------------------------------------------------

async fn incremental_alter_configs_change_what_clients_see<E: Engine + Clone>(engine: E) {
    let b = Broker::open(config(), engine).await.unwrap();
    create(&b, "cfg", 1).await;
    let default_max = describe(&b, "cfg").await["max.message.bytes"].clone();
    assert_eq!(default_max.1, 5, "an untouched key reports DEFAULT_CONFIG");

    // SET: describe shows it as the topic's own value; produce enforces it.
    assert_eq!(
        incremental(
            &b,
            RESOURCE_TOPIC,
            "cfg",
            &[("max.message.bytes", OP_SET, Some("200"))],
            false
        )
        .await,
        (0, String::new())
    );
    assert_eq!(
        describe(&b, "cfg").await["max.message.bytes"],
        ("200".to_string(), 1)
    );
    assert_eq!(
        produce(&b, "cfg", 0, big_batch(1, 500), 1).await.0,
        code::MESSAGE_TOO_LARGE
    );
    assert_eq!(produce(&b, "cfg", 0, big_batch(1, 10), 1).await, (0, 0));

    // validate_only checks but changes nothing.
    assert_eq!(
        incremental(
            &b,
            RESOURCE_TOPIC,
            "cfg",
            &[("retention.ms", OP_SET, Some("1000"))],
            true
        )
        .await
        .0,
        0
    );
    assert_ne!(describe(&b, "cfg").await["retention.ms"].0, "1000");

    // DELETE: back to the broker's default.
    assert_eq!(
        incremental(
            &b,
            RESOURCE_TOPIC,
            "cfg",
            &[("max.message.bytes", OP_DELETE, None)],
            false
        )
        .await
        .0,
        0
    );
    assert_eq!(describe(&b, "cfg").await["max.message.bytes"], default_max);
    assert_eq!(produce(&b, "cfg", 0, big_batch(1, 500), 1).await, (0, 1));

    // Refusals name the problem and leave the config as it was; one
    // refused key fails the whole resource (`retention.ms=5` is not applied).
    let before = describe(&b, "cfg").await;
    let refusals: &[(i8, &str, &[Op<'_>], i16, &str)] = &[
        (
            RESOURCE_TOPIC,
            "cfg",
            &[("no.such.key", OP_SET, Some("1"))],
            code::INVALID_CONFIG,
            "`no.such.key`",
        ),
        (
            RESOURCE_TOPIC,
            "cfg",
            &[("retention.ms", OP_SET, Some("soon"))],
            code::INVALID_CONFIG,
            "`retention.ms` must be an integer, not `soon`",
        ),
        (
            RESOURCE_TOPIC,
            "cfg",
            &[("retention.ms", OP_SET, None)],
            code::INVALID_CONFIG,
            "`retention.ms`: operation SET needs a value",
        ),
        (
            RESOURCE_TOPIC,
            "cfg",
            &[("retention.ms", OP_APPEND, Some("5"))],
            code::INVALID_CONFIG,
            "`retention.ms` is not a list",
        ),
        (
            RESOURCE_TOPIC,
            "cfg",
            &[("cleanup.policy", OP_SUBTRACT, Some("delete"))],
            code::INVALID_CONFIG,
            "cleanup.policy",
        ),
        (
            RESOURCE_TOPIC,
            "cfg",
            &[("retention.ms", 9, Some("5"))],
            code::INVALID_REQUEST,
            "operation 9",
        ),
        (
            RESOURCE_TOPIC,
            "cfg",
            &[
                ("retention.ms", OP_SET, Some("5")),
                ("retention.ms", OP_SET, Some("6")),
            ],
            code::INVALID_REQUEST,
            "more than once",
        ),
        (
            RESOURCE_TOPIC,
            "cfg",
            &[
                ("retention.ms", OP_SET, Some("5")),
                ("bogus", OP_SET, Some("6")),
            ],
            code::INVALID_CONFIG,
            "`bogus`",
        ),
        (
            RESOURCE_TOPIC,
            "nope",
            &[("retention.ms", OP_SET, Some("5"))],
            code::UNKNOWN_TOPIC_OR_PARTITION,
            "topic `nope` does not exist",
        ),
        (
            RESOURCE_BROKER,
            "0",
            &[("retention.ms", OP_SET, Some("5"))],
            code::INVALID_REQUEST,
            "broker configs cannot be altered",
        ),
    ];
    for (kind, resource, ops, want, says) in refusals {
        let (e, m) = incremental(&b, *kind, resource, ops, false).await;
        assert_eq!(e, *want, "{ops:?}: {m}");
        assert!(m.contains(says), "{ops:?}: {m}");
    }
    assert_eq!(describe(&b, "cfg").await, before);
    assert_eq!(
        incremental(
            &b,
            RESOURCE_TOPIC,
            "cfg",
            &[("cleanup.policy", OP_APPEND, Some("delete"))],
            false
        )
        .await
        .0,
        0,
        "appending what the list holds already is a no-op"
    );
}

async fn alter_configs_replaces_the_whole_set<E: Engine + Clone>(engine: E) {
    let b = Broker::open(config(), engine).await.unwrap();
    create(&b, "whole", 1).await;
    let defaults = describe(&b, "whole").await;
    assert_eq!(
        alter(
            &b,
            "whole",
            &[
                ("retention.ms", "60000"),
                ("message.timestamp.type", "LogAppendTime")
            ]
        )
        .await,
        (0, String::new())
    );
    let now = describe(&b, "whole").await;
    assert_eq!(now["retention.ms"], ("60000".to_string(), 1));
    assert_eq!(now["message.timestamp.type"].0, "LogAppendTime");
    // AlterConfigs is not incremental: keys not named go back to their defaults.
    assert_eq!(
        alter(&b, "whole", &[("retention.bytes", "4096")]).await.0,
        0
    );
    let now = describe(&b, "whole").await;
    assert_eq!(now["retention.ms"], defaults["retention.ms"]);
    assert_eq!(
        now["message.timestamp.type"],
        defaults["message.timestamp.type"]
    );
    assert_eq!(now["retention.bytes"], ("4096".to_string(), 1));
    let (e, m) = alter(&b, "whole", &[("compression.type", "zstd")]).await;
    assert_eq!(e, code::INVALID_CONFIG);
    assert!(m.contains("`compression.type`"), "{m}");
    assert_eq!(
        alter(&b, "gone", &[("retention.ms", "1")]).await.0,
        code::UNKNOWN_TOPIC_OR_PARTITION
    );
}

async fn altered_segment_and_retention_settings_are_applied<E: Engine + Clone>(engine: E) {
    let b = Broker::open(config(), engine).await.unwrap();
    create(&b, "shrink", 1).await;
    assert_eq!(
        incremental(
            &b,
            RESOURCE_TOPIC,
            "shrink",
            &[("segment.bytes", OP_SET, Some("1024"))],
            false
        )
        .await
        .0,
        0
    );
    for _ in 0..10 {
        assert_eq!(produce(&b, "shrink", 0, big_batch(2, 300), 1).await.0, 0);
    }
    b.apply_retention().await;
    assert_eq!(
        list_offset(&b, "shrink", -2).await,
        0,
        "nothing expires yet"
    );
    assert_eq!(
        incremental(
            &b,
            RESOURCE_TOPIC,
            "shrink",
            &[("retention.bytes", OP_SET, Some("0"))],
            false
        )
        .await
        .0,
        0
    );
    b.apply_retention().await;
    // Only the active segment (the last batch: each ~600 B batch fills a 1 KiB segment) stays.
    assert_eq!(list_offset(&b, "shrink", -2).await, 18);
    assert_eq!(fetch(&b, "shrink", 0, 0).await.0, code::OFFSET_OUT_OF_RANGE);
}

async fn delete_records_moves_the_log_start<E: Engine + Clone>(engine: E) {
    let b = Broker::open(config(), engine).await.unwrap();
    create(&b, "trim", 2).await;
    for _ in 0..5 {
        produce(&b, "trim", 0, client_batch(3, Compression::None, None), 1).await;
    }
    assert_eq!(delete_records(&b, "trim", 0, 7).await, (0, 7));
    assert_eq!(list_offset(&b, "trim", -2).await, 7);
    assert_eq!(fetch(&b, "trim", 0, 0).await.0, code::OFFSET_OUT_OF_RANGE);
    assert_eq!(fetch(&b, "trim", 6, 0).await.0, code::OFFSET_OUT_OF_RANGE);
    // From the new start: the batch holding 7 comes back whole, as Kafka does.
    assert_eq!(fetch(&b, "trim", 7, 0).await.2, (6..15).collect::<Vec<_>>());
    assert_eq!(
        delete_records(&b, "trim", 0, 3).await,
        (0, 7),
        "below the start: no change"
    );
    assert_eq!(
        delete_records(&b, "trim", 0, 16).await.0,
        code::OFFSET_OUT_OF_RANGE
    );
    assert_eq!(
        delete_records(&b, "trim", 0, -5).await.0,
        code::OFFSET_OUT_OF_RANGE
    );
    assert_eq!(
        delete_records(&b, "trim", 9, 1).await.0,
        code::UNKNOWN_TOPIC_OR_PARTITION
    );
    assert_eq!(
        delete_records(&b, "nope", 0, 1).await.0,
        code::UNKNOWN_TOPIC_OR_PARTITION
    );
    // -1: up to the high watermark; the partition then reads as empty.
    assert_eq!(delete_records(&b, "trim", 0, -1).await, (0, 15));
    assert_eq!(list_offset(&b, "trim", -2).await, 15);
    assert_eq!(fetch(&b, "trim", 15, 0).await, (0, 15, vec![]));
    assert_eq!(
        produce(&b, "trim", 0, client_batch(2, Compression::None, None), 1).await,
        (0, 15)
    );
    assert_eq!(fetch(&b, "trim", 15, 0).await.2, vec![15, 16]);
}

async fn delete_groups_removes_empty_groups_and_their_offsets<E: Engine + Clone>(engine: E) {
    let b = Broker::open(config(), engine).await.unwrap();
    produce(&b, "gt", 0, client_batch(3, Compression::None, None), 1).await;
    commit(&b, "idle", "gt", 2).await;
    commit(&b, "busy", "gt", 1).await;
    // "busy" gets a member.
    let mut p = join_group_request::JoinGroupRequestProtocol::default();
    p.name = st("range");
    p.metadata = Bytes::from_static(b"meta");
    let mut req = JoinGroupRequest::default();
    req.group_id = GroupId(st("busy"));
    req.session_timeout_ms = 10_000;
    req.rebalance_timeout_ms = 10_000;
    req.member_id = st("");
    req.protocol_type = st("consumer");
    req.protocols = vec![p];
    let ResponseKind::JoinGroup(j) =
        call(&b, ApiKey::JoinGroup, 3, RequestKind::JoinGroup(req)).await
    else {
        panic!("not a JoinGroup response")
    };
    assert_eq!(j.error_code, 0);

    assert_eq!(
        delete_groups(&b, &["idle", "busy", "never", ""]).await,
        vec![
            0,
            NON_EMPTY_GROUP,
            GROUP_ID_NOT_FOUND,
            crate::group::INVALID_GROUP_ID
        ]
    );
    let listed = list_groups(&b).await;
    assert!(!listed.contains(&"idle".to_string()), "{listed:?}");
    assert!(listed.contains(&"busy".to_string()), "{listed:?}");
    assert_eq!(committed(&b, "idle", "gt").await, -1);
    assert_eq!(committed(&b, "busy", "gt").await, 1);
    assert_eq!(delete_groups(&b, &["idle"]).await, vec![GROUP_ID_NOT_FOUND]);

    // Once its member leaves, the group can be deleted.
    let mut leave = LeaveGroupRequest::default();
    leave.group_id = GroupId(st("busy"));
    leave.member_id = j.member_id.clone();
    call(&b, ApiKey::LeaveGroup, 2, RequestKind::LeaveGroup(leave)).await;
    assert_eq!(delete_groups(&b, &["busy"]).await, vec![0]);
    assert_eq!(committed(&b, "busy", "gt").await, -1);
    assert!(list_groups(&b).await.is_empty());
}

async fn admin_changes_survive_a_restart<E: Engine + Clone>(engine: E, reopen: impl Fn() -> E) {
    {
        let b = Broker::open(config(), engine).await.unwrap();
        create(&b, "kept", 1).await;
        for _ in 0..4 {
            produce(&b, "kept", 0, client_batch(3, Compression::None, None), 1).await;
        }
        commit(&b, "gone", "kept", 3).await;
        commit(&b, "stays", "kept", 5).await;
        assert_eq!(
            incremental(
                &b,
                RESOURCE_TOPIC,
                "kept",
                &[
                    ("retention.ms", OP_SET, Some("3600000")),
                    ("max.message.bytes", OP_SET, Some("300"))
                ],
                false
            )
            .await
            .0,
            0
        );
        assert_eq!(delete_records(&b, "kept", 0, 5).await, (0, 5));
        assert_eq!(delete_groups(&b, &["gone"]).await, vec![0]);
        b.flush_all().await;
    }
    let b = Broker::open(config(), reopen()).await.unwrap();
    let configs = describe(&b, "kept").await;
    assert_eq!(configs["retention.ms"], ("3600000".to_string(), 1));
    assert_eq!(configs["max.message.bytes"].0, "300");
    assert_eq!(
        produce(&b, "kept", 0, big_batch(1, 500), 1).await.0,
        code::MESSAGE_TOO_LARGE
    );
    assert_eq!(list_offset(&b, "kept", -2).await, 5);
    assert_eq!(fetch(&b, "kept", 4, 0).await.0, code::OFFSET_OUT_OF_RANGE);
    assert_eq!(fetch(&b, "kept", 5, 0).await.2, (3..12).collect::<Vec<_>>());
    assert_eq!(list_groups(&b).await, vec!["stays".to_string()]);
    assert_eq!(committed(&b, "gone", "kept").await, -1);
    assert_eq!(committed(&b, "stays", "kept").await, 5);
}

on_both_engines!(
    incremental_alter_configs_change_what_clients_see,
    alter_configs_replaces_the_whole_set,
    altered_segment_and_retention_settings_are_applied,
    delete_records_moves_the_log_start,
    delete_groups_removes_empty_groups_and_their_offsets,
);

#[tokio::test]
async fn admin_changes_survive_a_restart_on_memory_engine() {
    let engine = MemoryEngine::default();
    let again = engine.clone();
    admin_changes_survive_a_restart(engine, move || again.clone()).await;
}

#[tokio::test]
async fn admin_changes_survive_a_restart_on_disk_engine() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    admin_changes_survive_a_restart(disk_engine(&path), move || disk_engine(&path)).await;
}
