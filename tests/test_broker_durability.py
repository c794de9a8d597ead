"""wharf-broker durability and encryption at rest: kill -9 during an acks=all
produce stream, then every acknowledged message is back, in order, at its
offset; and no produced plaintext marker is ever found in the data dir."""

import threading
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from test_broker_harness import Broker

MARKER = "WHARF-PLAINTEXT-MARKER-7f3a9c"


@pytest.fixture
def broker(wharf_bin, tmp_path):
    b = Broker(wharf_bin("wharf-broker"), tmp_path).start()
    yield b
    b.stop()


def read_partition(bootstrap, topic, partition, until_offset):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "reader", "enable.auto.commit": False,
                  "enable.partition.eof": True})
    c.assign([TopicPartition(topic, partition, 0)])
    got = []
    deadline = time.time() + 60
    while time.time() < deadline:
        m = c.poll(1.0)
        if m is None:
            continue
        if m.error():
            if got and got[-1][0] + 1 >= until_offset:
                break
            continue
        got.append((m.offset(), m.value().decode()))
        if m.offset() + 1 >= until_offset:
            break
    c.close()
    return got


def test_kill_9_during_acks_all_stream_keeps_every_acknowledged_message(broker):
    topic = "durable"
    acked = {}
    lock = threading.Lock()
    p = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "enable.idempotence": True,
                  "linger.ms": 2, "message.timeout.ms": 5000})

    def report(err, msg):
        if err is None:
            with lock:
                acked[msg.offset()] = msg.value().decode()

    stop = threading.Event()

    def stream():
        i = 0
        while not stop.is_set():
            try:
                p.produce(topic, value=f"msg-{i:08d}".encode(), partition=0, on_delivery=report)
                i += 1
            except BufferError:
                pass
            p.poll(0.001)

    t = threading.Thread(target=stream, daemon=True)
    t.start()
    deadline = time.time() + 60
    while len(acked) < 20_000 and time.time() < deadline:
        time.sleep(0.05)
    broker.kill9()  # mid-stream: requests are in flight
    stop.set()
    t.join(10)
    p.flush(10)  # pending ones fail: the broker is gone
    with lock:
        snapshot = dict(acked)
    assert len(snapshot) >= 20_000

    broker.start()
    last = max(snapshot)
    got = dict(read_partition(broker.bootstrap, topic, 0, last + 1))
    missing = [o for o in snapshot if got.get(o) != snapshot[o]]
    assert missing == [], f"{len(missing)} acknowledged messages lost or moved, e.g. offsets {missing[:5]}"
    # In order: offsets are dense and values increase with them.
    values = [got[o] for o in sorted(got)]
    assert sorted(got) == list(range(len(got)))
    assert values == sorted(values)


def test_no_plaintext_marker_reaches_the_data_dir(broker):
    p = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all"})
    for i in range(200):
        p.produce("secrets", key=f"{MARKER}-key".encode(), value=f"{MARKER}-{i}".encode())
    assert p.flush(30) == 0
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"{MARKER}-group",
                  "auto.offset.reset": "earliest"})
    c.subscribe(["secrets"])
    seen = 0
    deadline = time.time() + 60
    while seen < 200 and time.time() < deadline:
        m = c.poll(1.0)
        if m is not None and not m.error():
            assert m.value().decode().startswith(MARKER)
            seen += 1
    c.commit(asynchronous=False)
    c.close()
    assert seen == 200
    broker.stop()
    files = broker.data_files()
    assert any(f.suffix == ".log" for f in files)
    marker = MARKER.encode()
    for f in files:
        assert marker not in f.read_bytes(), f"{f} holds the plaintext marker"
    key = broker.data_dir / "master.key"
    assert key.stat().st_mode & 0o777 == 0o600
