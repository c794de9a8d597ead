"""wharf-broker with kafka-python: a producer and a consumer group whose
committed offsets carry over to the next member."""

import time

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from test_broker_harness import Broker


@pytest.fixture
def broker(wharf_bin, tmp_path):
    b = Broker(wharf_bin("wharf-broker"), tmp_path).start()
    yield b
    b.stop()


def consume(bootstrap, group, topic, want, timeout=60):
    c = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest",
                      enable_auto_commit=False, consumer_timeout_ms=3000)
    got = []
    deadline = time.time() + timeout
    while len(got) < want and time.time() < deadline:
        for tp, msgs in c.poll(timeout_ms=500).items():
            got.extend(m.value.decode() for m in msgs)
    c.commit()
    c.close()
    return got


def test_kafka_python_producer_and_consumer_group(broker):
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics([NewTopic("kp", num_partitions=3, replication_factor=1)])
    admin.close()
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", compression_type="gzip")
    first = [f"kp-{i}" for i in range(600)]
    for v in first:
        p.send("kp", v.encode())
    p.flush(30)
    got = consume(broker.bootstrap, "kp-group", "kp", len(first))
    assert sorted(got) == sorted(first)
    second = [f"kp2-{i}" for i in range(300)]
    for v in second:
        p.send("kp", v.encode())
    p.flush(30)
    p.close()
    # A new member of the same group resumes at the committed offsets.
    got = consume(broker.bootstrap, "kp-group", "kp", len(second))
    assert sorted(got) == sorted(second)
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id="kp-group")
    committed = sum(c.committed(TopicPartition("kp", i)) or 0 for i in range(3))
    c.close()
    assert committed == len(first) + len(second)
