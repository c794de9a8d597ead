"""wharf-broker with confluent-kafka (librdkafka 2.x): an idempotent acks=all
producer, a group of three consumers reading every message exactly once,
and a consumer leaving so that its partitions move without skips or re-reads
past the committed offsets."""

import threading
import time
from collections import Counter

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from test_broker_harness import Broker

TOTAL = 100_000
PARTITIONS = 6


@pytest.fixture
def broker(wharf_bin, tmp_path):
    b = Broker(wharf_bin("wharf-broker"), tmp_path).start()
    yield b
    b.stop()


def create_topic(bootstrap, topic, partitions):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    fs = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    fs[topic].result(timeout=30)
    md = admin.list_topics(topic, timeout=10)
    assert len(md.topics[topic].partitions) == partitions


def produce_all(bootstrap, topic, values):
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
                  "linger.ms": 5, "compression.type": "lz4"})
    errors = []
    acked = []

    def report(err, msg):
        if err is not None:
            errors.append(err)
        else:
            acked.append((msg.partition(), msg.offset()))

    for i, v in enumerate(values):
        while True:
            try:
                p.produce(topic, key=str(i).encode(), value=v.encode(), on_delivery=report)
                break
            except BufferError:
                p.poll(0.1)
        p.poll(0)
    assert p.flush(60) == 0
    assert errors == []
    return acked


class GroupMember(threading.Thread):
    """Consumes, records each message, commits synchronously after each batch."""

    def __init__(self, bootstrap, group, topic, seen, lock):
        super().__init__(daemon=True)
        self.c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                           "auto.offset.reset": "earliest", "enable.auto.commit": False,
                           "session.timeout.ms": 10000, "heartbeat.interval.ms": 500})
        self.c.subscribe([topic])
        self.topic = topic
        self.seen = seen
        self.lock = lock
        self.stop = threading.Event()
        self.count = 0
        self.errors = []
        self.assigned = []

    def run(self):
        while not self.stop.is_set():
            msgs = self.c.consume(500, timeout=0.5)
            # The Consumer is used from this thread only; others read this copy.
            self.assigned = sorted(tp.partition for tp in self.c.assignment())
            good = []
            for m in msgs:
                if m.error():
                    if m.error().code() != KafkaError._PARTITION_EOF:
                        self.errors.append(m.error())
                    continue
                good.append(m)
            if good:
                with self.lock:
                    for m in good:
                        self.seen.append((m.value().decode(), m.partition(), m.offset()))
                self.count += len(good)
                try:
                    self.c.commit(asynchronous=False)
                except KafkaException as e:
                    self.errors.append(e)
        self.c.close()

    def assignment(self):
        return self.assigned


def wait_for(cond, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_idempotent_producer_and_group_of_three_with_one_leaving(broker):
    topic = "confluent-orders"
    create_topic(broker.bootstrap, topic, PARTITIONS)
    values = [f"order-{i}" for i in range(TOTAL)]
    acked = produce_all(broker.bootstrap, topic, values)
    assert len(acked) == TOTAL
    assert len(set(acked)) == TOTAL, "every acknowledged message has its own offset"
    per_partition = Counter(p for p, _ in acked)
    assert sorted(per_partition) == list(range(PARTITIONS))

    seen, lock = [], threading.Lock()
    members = [GroupMember(broker.bootstrap, "g-orders", topic, seen, lock) for _ in range(3)]
    for m in members:
        m.start()
    wait_for(lambda: sum(len(m.assignment()) for m in members) == PARTITIONS
             and all(m.assignment() for m in members), 60, "three members sharing six partitions")
    wait_for(lambda: len(seen) >= TOTAL // 2, 120, "half of the messages")

    leaving = members[2]
    moved = leaving.assignment()
    leaving.stop.set()
    leaving.join(30)
    stayers = members[:2]
    wait_for(lambda: sorted(p for m in stayers for p in m.assignment()) == list(range(PARTITIONS)), 60,
             "the leaver's partitions to move to the other two")
    assert moved and set(moved) <= {p for m in stayers for p in m.assignment()}

    wait_for(lambda: len(seen) >= TOTAL, 180, "every message")
    time.sleep(2)  # anything read twice would show up now
    for m in stayers:
        m.stop.set()
        m.join(30)
    assert all(not m.errors for m in members), [m.errors for m in members]
    counts = Counter(v for v, _, _ in seen)
    dupes = [v for v, n in counts.items() if n > 1]
    assert dupes == [], f"{len(dupes)} messages read twice, e.g. {dupes[:5]}"
    assert set(counts) == set(values)
    # Offsets per partition are dense and in order.
    by_part = {}
    for _, p, o in seen:
        by_part.setdefault(p, []).append(o)
    for p, offs in by_part.items():
        assert sorted(offs) == list(range(per_partition[p])), f"partition {p} has gaps"
