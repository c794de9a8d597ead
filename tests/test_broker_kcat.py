"""wharf-broker with kcat (librdkafka 2.0): produce and consume with every
compression codec, and `kcat -L` listing topics and partitions."""

import json
import subprocess

import pytest

from test_broker_harness import Broker


@pytest.fixture
def broker(wharf_bin, tmp_path):
    b = Broker(wharf_bin("wharf-broker"), tmp_path, "default_partitions = 3\n").start()
    yield b
    b.stop()


def run(args, input=None, timeout=60):
    r = subprocess.run(args, input=input, capture_output=True, timeout=timeout)
    assert r.returncode == 0, f"{args} failed: {r.stderr.decode()}"
    return r.stdout.decode()


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_kcat_produce_consume_with_compression(kcat, broker, codec):
    topic = f"kcat-{codec}"
    lines = [f"{codec}-message-{i}-" + "x" * (i % 50) for i in range(2000)]
    run([kcat, "-b", broker.bootstrap, "-P", "-t", topic, "-p", "0", "-z", codec,
         "-X", "linger.ms=20"], input=("\n".join(lines) + "\n").encode())
    out = run([kcat, "-b", broker.bootstrap, "-C", "-t", topic, "-p", "0", "-o", "beginning",
               "-e", "-f", "%o %s\\n"])
    got = [line.split(" ", 1) for line in out.splitlines()]
    assert [int(o) for o, _ in got] == list(range(len(lines)))
    assert [v for _, v in got] == lines
    # Reading from the middle of a (compressed) batch returns exactly the tail.
    out = run([kcat, "-b", broker.bootstrap, "-C", "-t", topic, "-p", "0", "-o", "1234",
               "-e", "-f", "%o\\n"])
    assert [int(o) for o in out.split()] == list(range(1234, 2000))


def test_kcat_lists_topics_and_partitions(kcat, broker):
    run([kcat, "-b", broker.bootstrap, "-P", "-t", "listed"], input=b"a\nb\n")
    meta = json.loads(run([kcat, "-b", broker.bootstrap, "-L", "-J"]))
    assert [b["id"] for b in meta["brokers"]] == [0]
    topics = {t["topic"]: t for t in meta["topics"]}
    assert "listed" in topics
    assert sorted(p["partition"] for p in topics["listed"]["partitions"]) == [0, 1, 2]
    assert all(p["leader"] == 0 for p in topics["listed"]["partitions"])


def test_kcat_consumer_group_reads_all_partitions(kcat, broker):
    lines = [f"g-{i}" for i in range(300)]
    run([kcat, "-b", broker.bootstrap, "-P", "-t", "grouped", "-K", ":"],
        input="".join(f"k{i}:{v}\n" for i, v in enumerate(lines)).encode())
    out = run([kcat, "-b", broker.bootstrap, "-G", "kcatgroup", "grouped", "-o", "beginning", "-e",
               "-f", "%s\\n", "-X", "topic.auto.offset.reset=earliest"], timeout=60)
    assert sorted(out.split()) == sorted(lines)
