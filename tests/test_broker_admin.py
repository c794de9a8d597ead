"""The admin requests of issue #6 with real admin clients: AlterConfigs,
IncrementalAlterConfigs, DeleteRecords and DeleteGroups change what a user
then observes (describe_configs, list_offsets, a consumer from the start,
list_consumer_groups), survive a broker restart, and each give exactly one
CloudTrail-shaped audit record in the file sink of `wharf up`.

Needs the built `wharf` and `wharf-broker` (`cargo build -p wharf -p wharf-broker`)."""

import json
import uuid

import pytest
from confluent_kafka import (Consumer, ConsumerGroupTopicPartitions, KafkaException, Producer,
                             TopicPartition)
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                   ConfigSource, NewTopic, OffsetSpec, ResourceType)

from telemetry_support import Up, wait_for
from test_broker_harness import Broker

AUDIT = "AWSLogs/000000000000/CloudTrail/local"


@pytest.fixture(scope="module")
def up(wharf_bin, tmp_path_factory):
    u = Up(wharf_bin("wharf"), tmp_path_factory.mktemp("admin-up"), "--cluster", "admin").start()
    yield u
    u.stop()


def uid(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def admin_client(bootstrap, client_id="admin-check"):
    return AdminClient({"bootstrap.servers": bootstrap, "client.id": client_id})


def create(admin, topic, partitions=1):
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)


def produce(bootstrap, topic, n):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for i in range(n):
        p.produce(topic, value=f"v-{i}".encode(), partition=0)
    assert p.flush(30) == 0


def consume_from_start(bootstrap, topic, n):
    """(offset, value) of the first `n` messages a new group reads from the start."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": uid("reader"),
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, -2)])  # -2: OFFSET_BEGINNING
    got = []
    try:
        def more():
            for m in c.consume(n, timeout=1):
                assert m.error() is None, m.error()
                got.append((m.offset(), m.value().decode()))
            return len(got) >= n
        wait_for(f"{n} messages of {topic}", more, timeout=30, every=0)
    finally:
        c.close()
    return got


def topic_configs(admin, topic):
    res = ConfigResource(ResourceType.TOPIC, topic)
    return admin.describe_configs([res])[res].result(30)


def earliest(admin, topic):
    tp = TopicPartition(topic, 0)
    return admin.list_offsets({tp: OffsetSpec.earliest()})[tp].result(30).offset


def audit_records(up, event, needle):
    """The `event` records whose requestParameters mention `needle`, read
    once a later marker request's record has arrived (the broker writes
    its audit lines in order), so that a duplicate would be counted."""
    marker = uid("marker")
    create(admin_client(up.kafka), marker)
    wait_for("the marker's audit record", lambda: [
        r for r in up.records(AUDIT) if r.get("eventName") == "CreateTopics"
        and marker in json.dumps(r["requestParameters"])])
    return [r for r in up.records(AUDIT) if r.get("eventName") == event
            and needle in json.dumps(r["requestParameters"])]


def the_record(up, event, needle):
    recs = audit_records(up, event, needle)
    assert len(recs) == 1, recs
    r = recs[0]
    assert r["readOnly"] is False
    assert r["userAgent"] == "admin-check"
    assert r["sourceIPAddress"] == "127.0.0.1"
    for field in ("eventVersion", "eventSource", "eventTime", "eventID", "requestID", "eventType"):
        assert field in r, field
    return r


def test_incremental_alter_configs_changes_the_described_config_and_is_audited_once(up):
    admin = admin_client(up.kafka)
    topic = uid("cfg")
    create(admin, topic)
    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("retention.ms", "3600000", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("max.message.bytes", "2048", incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([res])[res].result(30)

    configs = topic_configs(admin, topic)
    assert configs["retention.ms"].value == "3600000"
    assert configs["retention.ms"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert configs["max.message.bytes"].value == "2048"
    assert configs["segment.bytes"].is_default
    # The new limit holds for producers.
    p = Producer({"bootstrap.servers": up.kafka, "acks": "all", "message.max.bytes": 100000})
    errors = []
    p.produce(topic, value=b"x" * 4000, on_delivery=lambda err, _: errors.append(err))
    p.flush(30)
    assert errors and errors[0] is not None and errors[0].name() == "MSG_SIZE_TOO_LARGE", errors

    r = the_record(up, "IncrementalAlterConfigs", topic)
    assert r["requestParameters"]["resources"] == [{
        "resourceType": "TOPIC", "resourceName": topic, "configs": [
            {"name": "retention.ms", "operation": "SET", "value": "3600000"},
            {"name": "max.message.bytes", "operation": "SET", "value": "2048"}]}]
    assert r["responseElements"]["resources"] == [
        {"resourceType": "TOPIC", "resourceName": topic, "errorCode": "NONE"}]


def test_a_refused_config_change_names_the_key_and_is_audited_with_its_error(up):
    admin = admin_client(up.kafka)
    topic = uid("bad")
    create(admin, topic)
    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("retention.ms", "5", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("no.such.setting", "1", incremental_operation=AlterConfigOpType.SET)])
    with pytest.raises(KafkaException) as e:
        admin.incremental_alter_configs([res])[res].result(30)
    assert e.value.args[0].name() == "INVALID_CONFIG"
    assert "`no.such.setting`" in e.value.args[0].str()
    assert topic_configs(admin, topic)["retention.ms"].value != "5", "nothing applied"

    r = the_record(up, "IncrementalAlterConfigs", topic)
    assert r["errorCode"] == "INVALID_CONFIG"
    assert "`no.such.setting`" in r["errorMessage"]
    assert "responseElements" not in r


def test_alter_configs_replaces_the_topic_config_and_is_audited_once(up):
    admin = admin_client(up.kafka)
    topic = uid("whole")
    create(admin, topic)
    res = ConfigResource(ResourceType.TOPIC, topic, set_config={"retention.bytes": "1048576"})
    admin.alter_configs([res])[res].result(30)
    configs = topic_configs(admin, topic)
    assert configs["retention.bytes"].value == "1048576"
    assert not configs["retention.bytes"].is_default

    r = the_record(up, "AlterConfigs", topic)
    assert r["requestParameters"]["resources"][0]["configs"] == [
        {"name": "retention.bytes", "value": "1048576"}]
    assert r["responseElements"]["resources"][0]["errorCode"] == "NONE"


def test_delete_records_moves_the_earliest_offset_and_is_audited_once(up):
    admin = admin_client(up.kafka)
    topic = uid("trim")
    create(admin, topic)
    produce(up.kafka, topic, 10)
    tp = TopicPartition(topic, 0, 4)
    deleted = admin.delete_records([tp])[tp].result(30)
    assert deleted.low_watermark == 4

    assert earliest(admin, topic) == 4
    assert consume_from_start(up.kafka, topic, 6) == [(i, f"v-{i}") for i in range(4, 10)]

    r = the_record(up, "DeleteRecords", topic)
    assert r["requestParameters"]["topics"] == [
        {"name": topic, "partitions": [{"partition": 0, "offset": 4}]}]
    assert r["responseElements"]["partitions"] == [
        {"topic": topic, "partition": 0, "lowWatermark": 4, "errorCode": "NONE"}]


def test_delete_consumer_groups_removes_the_group_and_is_audited_once(up):
    admin = admin_client(up.kafka)
    topic = uid("grp-topic")
    create(admin, topic)
    produce(up.kafka, topic, 3)
    group = uid("grp")
    c = Consumer({"bootstrap.servers": up.kafka, "group.id": group,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    got = []

    def read_all():
        got.extend(m for m in c.consume(10, timeout=1) if m.error() is None)
        return len(got) >= 3
    wait_for("the group member's messages", read_all, timeout=60, every=0)
    c.commit(asynchronous=False)

    def listed():
        return [g.group_id for g in admin.list_consumer_groups().result(30).valid]
    # A group with a member is not deleted.
    with pytest.raises(KafkaException) as e:
        admin.delete_consumer_groups([group])[group].result(30)
    assert e.value.args[0].name() == "NON_EMPTY_GROUP"
    assert group in listed()

    c.close()
    admin.delete_consumer_groups([group])[group].result(30)
    assert group not in listed()
    tp = TopicPartition(topic, 0)
    committed = admin.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group, [tp])])[group].result(30)
    assert committed.topic_partitions[0].offset < 0, "the committed offset went with the group"

    recs = audit_records(up, "DeleteGroups", group)
    assert len(recs) == 2, recs
    refused, done = sorted(recs, key=lambda r: "errorCode" in r, reverse=True)
    assert refused["errorCode"] == "NON_EMPTY_GROUP"
    assert done["requestParameters"] == {"groups": [group]}
    assert done["responseElements"] == {"groups": [{"groupId": group, "errorCode": "NONE"}]}


@pytest.fixture
def broker(wharf_bin, tmp_path):
    b = Broker(wharf_bin("wharf-broker"), tmp_path).start()
    yield b
    b.stop()


def test_admin_changes_survive_a_broker_restart(broker):
    admin = admin_client(broker.bootstrap)
    topic = uid("kept")
    create(admin, topic)
    produce(broker.bootstrap, topic, 8)
    group = uid("gone")
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group})
    c.commit(offsets=[TopicPartition(topic, 0, 2)], asynchronous=False)
    c.close()
    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("retention.ms", "7200000", incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([res])[res].result(30)
    tp = TopicPartition(topic, 0, 5)
    assert admin.delete_records([tp])[tp].result(30).low_watermark == 5
    admin.delete_consumer_groups([group])[group].result(30)

    broker.stop()
    broker.start()
    admin = admin_client(broker.bootstrap)
    assert topic_configs(admin, topic)["retention.ms"].value == "7200000"
    assert earliest(admin, topic) == 5
    assert consume_from_start(broker.bootstrap, topic, 3) == [(i, f"v-{i}") for i in range(5, 8)]
    assert group not in [g.group_id for g in admin.list_consumer_groups().result(30).valid]


def test_kafka_python_admin_alters_configs_deletes_records_and_groups(broker):
    from kafka import KafkaConsumer, TopicPartition as KTP
    from kafka.admin import ConfigResource as KConfigResource, ConfigResourceType, KafkaAdminClient
    from kafka.admin import NewTopic as KNewTopic
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, client_id="kafka-python-admin")
    topic = uid("kp")
    admin.create_topics([KNewTopic(topic, 1, 1)])
    produce(broker.bootstrap, topic, 6)

    admin.alter_configs([KConfigResource(ConfigResourceType.TOPIC, topic,
                                         configs={"retention.ms": "9000000"})])
    # kafka-python shows only the configs whose source is not a default.
    described = admin.describe_configs([KConfigResource(ConfigResourceType.TOPIC, topic)])
    text = repr(described)
    assert "retention.ms" in text and "9000000" in text, text
    assert "segment.bytes" not in text, text

    admin.delete_records({KTP(topic, 0): 3})
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest",
                      enable_auto_commit=False)
    tp = KTP(topic, 0)
    assert c.beginning_offsets([tp])[tp] == 3
    c.close()

    group = uid("kp-group")
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=group)
    from kafka.structs import OffsetAndMetadata
    c.commit({tp: OffsetAndMetadata(4, "", -1)})
    c.close()
    assert group in [g[0] if isinstance(g, tuple) else g["group_id"] for g in admin.list_groups()]
    assert admin.delete_groups([group]) == {group: "OK"}
    assert group not in [g[0] if isinstance(g, tuple) else g["group_id"]
                         for g in admin.list_groups()]
    admin.close()
