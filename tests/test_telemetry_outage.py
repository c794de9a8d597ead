"""The shipper goes away for 30 s while the broker is under load: every log
line the broker wrote meanwhile reaches S3 on LocalStack once the shipper
is back (the broker spooled them, encrypted, and resent them), and Kafka
produce latency is measured before, during and after the outage (printed,
not asserted: timing is not a test).

Needs the built wharf-broker, wharf-shipper and wharf, and LocalStack
(`localstack/localstack.sh start`; `eval "$(localstack/localstack.sh env)"`)."""

import collections
import datetime
import json
import os
import threading
import time
import uuid

import pytest

from shipper_support import Shipper, s3_objects, unique
from telemetry_support import decrypt_local, parse_ndjson_gz, percentiles, wait_for
from test_broker_harness import Broker

BUCKET = "wharf-logs"
OUTAGE_SECONDS = 30


def shipper_config(tmp, prefix):
    return f"""
data_dir = "{tmp}/shipper"
shutdown_timeout = "30s"

[api]
address = "127.0.0.1:0"

[key]
provider = "local"
path = "{tmp}/master.key"

[sources.broker]
type = "socket"
path = "{tmp}/s.sock"

[sinks.s3]
type = "s3"
inputs = ["broker"]
kinds = ["log"]
bucket = "{BUCKET}"
key = "{prefix}/logs/cluster={{cluster}}/broker={{broker}}/dt=%Y-%m-%d/hour=%H/{{uuid}}.{{ext}}"
compression = "gzip"
encryption = "envelope"
force_path_style = true

[sinks.s3.batch]
max_age = "1s"
"""


def ts(s: str) -> float:
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def test_log_lines_written_while_the_shipper_is_away_reach_s3(wharf_bin, localstack, tmp_path):
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    os.environ.setdefault("AWS_REGION", "us-east-1")
    os.environ.setdefault("AWS_ENDPOINT_URL", localstack)
    prefix = unique("telemetry-outage")
    shipper = Shipper(wharf_bin("wharf-shipper"), tmp_path, shipper_config(tmp_path, prefix)).start()
    (tmp_path / "broker").mkdir()
    broker = Broker(wharf_bin("wharf-broker"), tmp_path / "broker", f"""
cluster_id = "outage"
[telemetry]
socket = "{tmp_path}/s.sock"
spool_dir = "{tmp_path}/spool"
prometheus_address = "127.0.0.1:0"
""")
    broker.start()

    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    stop = threading.Event()
    latencies = []  # (time sent, ms)
    topics_created = []

    def load():
        p = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "linger.ms": 0})
        topic = f"load-{uuid.uuid4().hex[:6]}"
        while not stop.is_set():
            t0 = time.time()
            done = []
            p.produce(topic, b"x" * 100, on_delivery=lambda err, msg: done.append(err))
            p.flush(10)
            if done and done[0] is None:
                latencies.append((t0, (time.time() - t0) * 1000))

    def admin():
        # Each topic creation makes the broker write log lines (and audit).
        a = AdminClient({"bootstrap.servers": broker.bootstrap})
        while not stop.is_set():
            name = f"outage-{uuid.uuid4().hex[:8]}"
            a.create_topics([NewTopic(name, 1, 1)])[name].result(30)
            topics_created.append((time.time(), name))
            time.sleep(0.25)

    threads = [threading.Thread(target=f, daemon=True) for f in (load, admin)]
    for t in threads:
        t.start()
    try:
        time.sleep(5)
        down_at = time.time()
        assert shipper.stop() == 0, shipper.logs()
        time.sleep(OUTAGE_SECONDS)
        up_at = time.time()
        shipper.start()
        time.sleep(5)
    finally:
        stop.set()
        for t in threads:
            t.join(30)

    # Ground truth: the broker's own log lines (its stderr JSON) written
    # while the shipper was away.
    expected = collections.Counter()
    for line in broker.log_path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if not rec.get("target", "").startswith("wharf_broker"):
            continue
        if down_at <= ts(rec["timestamp"]) <= up_at:
            f = rec.get("fields", {})
            expected[(f.get("message"), f.get("topic"))] += 1
    in_window = [n for t, n in topics_created if down_at <= t <= up_at]
    assert len(in_window) >= 20, f"too little activity in the window: {len(in_window)} topics"
    assert sum(expected.values()) >= len(in_window)

    key = tmp_path / "master.key"
    wharf = wharf_bin("wharf")

    def delivered():
        got = collections.Counter()
        for obj in s3_objects(BUCKET, prefix):
            for r in parse_ndjson_gz(decrypt_local(wharf, key, obj["body"])):
                got[(r.get("message"), r.get("topic"))] += 1
        missing = {k: n - got[k] for k, n in expected.items() if got[k] < n}
        return True if not missing else None

    try:
        wait_for("every log line of the outage window in S3", delivered, timeout=120, every=2)
    finally:
        broker.stop()
        shipper.stop()

    before = [ms for t, ms in latencies if t < down_at]
    during = [ms for t, ms in latencies if down_at <= t <= up_at]
    after = [ms for t, ms in latencies if t > up_at]
    print(f"\nproduce latency (acks=all, one 100-byte message at a time):"
          f"\n  before the outage: {percentiles(before)}"
          f"\n  shipper away {OUTAGE_SECONDS}s: {percentiles(during)}"
          f"\n  after restart:     {percentiles(after)}"
          f"\n  broker log lines in the window: {sum(expected.values())}, all in s3://{BUCKET}/{prefix}/")
    assert during, "no produce completed while the shipper was away"
