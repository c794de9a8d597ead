"""The sinks under a fault-injecting proxy (tests/fault_proxy.py) between
the shipper and LocalStack: throttling, 500s, hang-ups, partial failures
in PutRecordBatch (per-record ErrorCode) and PutLogEvents
(rejectedLogEventsInfo). Every event ends up either delivered exactly once
or dead-lettered exactly once, and /metrics counts match."""

import collections
import json
import os
import time

import pytest

from fault_proxy import FaultProxy
from shipper_support import Client, Shipper, unique
from sinks_support import (create_delivery_stream, dead_letters, firehose_lines, log_events,
                           sink_config, wait_log_events)

N = 3000


@pytest.fixture
def proxy(localstack):
    p = FaultProxy(localstack, partial=0.5, record_failure=0.5)
    yield p
    p.close()


def test_every_event_is_delivered_or_dead_lettered_exactly_once(wharf_bin, proxy, tmp_path):
    group = "/wharf-test/" + unique("faults")
    stream, fh_prefix = unique("wharf-fh-faults"), unique("fh-faults")
    dl_prefix = unique("dl-faults")
    create_delivery_stream(stream, fh_prefix)
    tables = f'''
[sinks.cwl]
type = "cloudwatch_logs"
inputs = ["broker"]
group = "{group}"
stream = "s-{{shard}}"
endpoint_url = "{proxy.url}"
batch = {{ max_events = 40, max_age = "100ms" }}
max_in_flight = 4
dead_letter = {{ type = "s3", bucket = "wharf-dead-letter", prefix = "{dl_prefix}" }}

[sinks.fh]
type = "firehose"
inputs = ["broker"]
delivery_stream = "{stream}"
endpoint_url = "{proxy.url}"
record_bytes = "1 KiB"
max_attempts = 2
max_age = "100ms"
dead_letter = {{ type = "s3", bucket = "wharf-dead-letter", prefix = "{dl_prefix}" }}
'''
    sh = Shipper(wharf_bin("wharf-shipper"), tmp_path, sink_config(tmp_path, tables)).start()
    now = int(time.time() * 1000)
    lines = [json.dumps({"kind": "log", "ts": now - (n * 13) % 60000, "shard": n % 3, "n": n, "msg": "m" * (n % 50),
                         "poison": n % 397 == 0})
             for n in range(N)]
    c = Client(sh.socket_path)
    for i in range(0, N, 300):
        c.send_lines(lines[i:i + 300])
        time.sleep(0.15)
    c.wait_acked(N)
    c.close()

    def settled(sink):
        return (sh.metric("wharf_shipper_sink_events_delivered_total", sink=sink)
                + sh.metric("wharf_shipper_sink_events_dead_lettered_total", sink=sink))

    deadline = time.time() + 240
    while time.time() < deadline and (settled("cwl") < N or settled("fh") < N):
        time.sleep(0.5)
    counts = {s: (sh.metric("wharf_shipper_sink_events_delivered_total", sink=s),
                  sh.metric("wharf_shipper_sink_events_dead_lettered_total", sink=s)) for s in ("cwl", "fh")}
    assert sh.stop() == 0, sh.logs()
    assert settled_ok(counts), (counts, dict(proxy.stats), sh.logs())

    dead = collections.defaultdict(list)
    for d in dead_letters("wharf-dead-letter", dl_prefix):
        dead[d["sink"]].append(d)

    # CloudWatch Logs: delivered (read back) + dead-lettered = all, disjoint, once each.
    cw_events = wait_log_events([group], int(counts["cwl"][0]))
    cw = collections.Counter(json.loads(e["message"])["n"] for e in cw_events)
    cw_dead = collections.Counter(d["event"]["n"] for d in dead["cwl"])
    check_exactly_once("cwl", cw, cw_dead, counts["cwl"])
    assert {d["reason"] for d in dead["cwl"]} <= {"rejected_too_old", "rejected_too_new"}

    # Firehose: the same, from the S3 objects Firehose wrote.
    fh_lines = firehose_lines(fh_prefix, int(counts["fh"][0]))
    fh = collections.Counter(json.loads(x)["n"] for x in fh_lines)
    fh_dead = collections.Counter(d["event"]["n"] for d in dead["fh"])
    check_exactly_once("fh", fh, fh_dead, counts["fh"])
    assert all(d["reason"] == "failed_InternalFailure" for d in dead["fh"]), {d["reason"] for d in dead["fh"]}

    # The proxy really did all of it.
    s = proxy.stats
    for key in ("PutLogEvents:throttle", "PutLogEvents:error", "PutLogEvents:hangup", "PutLogEvents:partial",
                "PutRecordBatch:throttle", "PutRecordBatch:error", "PutRecordBatch:hangup", "PutRecordBatch:partial",
                "PutRecordBatch:record_ServiceUnavailableException", "PutRecordBatch:record_InternalFailure"):
        assert s[key] > 0, (key, [x for x in sorted(s.items()) if "Record" in x[0]])
    # Records holding a poisoned event kept failing: dead-lettered whole.
    assert {n for n in range(N) if n % 397 == 0} <= set(fh_dead)
    assert cw_dead and fh_dead, ("some events were dead-lettered", len(cw_dead), len(fh_dead), counts, [x for x in sorted(s.items()) if "Record" in x[0]])


def settled_ok(counts):
    return all(d + x == N for d, x in counts.values())


def check_exactly_once(sink, delivered, dead, counts):
    twice = [n for n, k in delivered.items() if k > 1]
    assert not twice, f"{sink}: {len(twice)} events delivered twice, e.g. {twice[:5]}"
    assert all(k == 1 for k in dead.values()), f"{sink}: dead-lettered twice"
    both = set(delivered) & set(dead)
    assert not both, f"{sink}: {len(both)} events both delivered and dead-lettered"
    assert set(delivered) | set(dead) == set(range(N)), f"{sink}: events lost"
    assert (len(delivered), len(dead)) == counts, f"{sink}: /metrics says {counts}"


def test_metrics_sum_exactly_under_faults_and_bodies_are_gzipped(wharf_bin, proxy, tmp_path):
    import datetime as dt
    from sinks_support import aws

    namespace = "Wharf/Faults-" + unique("ns")
    table = f'''
[sinks.cw]
type = "cloudwatch_metrics"
inputs = ["broker"]
namespace = "{namespace}"
endpoint_url = "{proxy.url}"
max_age = "100ms"
'''
    sh = Shipper(wharf_bin("wharf-shipper"), tmp_path, sink_config(tmp_path, table)).start()
    minute = (int(time.time()) // 60) * 60 * 1000
    c = Client(sh.socket_path)
    total = 0
    for burst in range(12):
        lines = [json.dumps({"kind": "metric", "ts": minute + burst * 10 + i, "name": "MessagesInPerSec",
                             "value": burst * 10 + i, "cluster": "faults", "broker": i % 2})
                 for i in range(10)]
        total += sum(burst * 10 + i for i in range(10))
        c.send_lines(lines)
        time.sleep(0.2)
    c.wait_acked(120)
    c.close()
    sh.wait_metric("wharf_shipper_sink_events_delivered_total", 120, sink="cw")
    assert sh.stop() == 0, sh.logs()
    assert proxy.stats["query:throttle"] and proxy.stats["query:error"] and proxy.stats["query:hangup"]
    assert proxy.gzip_bodies["query"] > 0, "PutMetricData bodies are gzipped"
    cw = aws("cloudwatch")
    got_sum, got_count = 0, 0
    for broker in ("0", "1"):
        dps = cw.get_metric_statistics(
            Namespace=namespace, MetricName="MessagesInPerSec", Period=60, Statistics=["Sum", "SampleCount"],
            StartTime=dt.datetime.fromtimestamp(minute / 1000 - 300, dt.timezone.utc),
            EndTime=dt.datetime.fromtimestamp(minute / 1000 + 300, dt.timezone.utc),
            Dimensions=[{"Name": "Cluster Name", "Value": "faults"}, {"Name": "Broker ID", "Value": broker}],
        )["Datapoints"]
        got_sum += sum(d["Sum"] for d in dps)
        got_count += sum(d["SampleCount"] for d in dps)
    assert (got_sum, got_count) == (total, 120)
