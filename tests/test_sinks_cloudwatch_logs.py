"""wharf-shipper → CloudWatch Logs on LocalStack: events land in the
templated groups and streams exactly once; events out of order and spanning
days are delivered; too old, too new go to the S3 dead letter; too large
ones are truncated with a marker; /metrics counts match."""

import json
import os
import time

import pytest

from shipper_support import Client, Shipper, unique
from sinks_support import dead_letters, log_events, sink_config, wait_log_events, aws

DAY = 24 * 3600 * 1000


def cwl_table(group_prefix, dl_prefix, extra=""):
    kms = os.environ.get("WHARF_TEST_KMS_KEY_ARN", "")
    return f'''
[sinks.cwl]
type = "cloudwatch_logs"
inputs = ["broker"]
group = "{group_prefix}/{{cluster}}"
stream = "broker-{{broker}}"
retention_days = 30
kms_key_id = "{kms}"
batch = {{ max_age = "500ms", max_events = 500 }}
max_in_flight = 3
dead_letter = {{ type = "s3", bucket = "wharf-dead-letter", prefix = "{dl_prefix}" }}
{extra}
'''


@pytest.fixture(scope="module")
def shipped(wharf_bin, localstack, kms_key_arn, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cwl")
    group_prefix = "/wharf-test/" + unique("cwl")
    dl_prefix = unique("dl-cwl")
    sh = Shipper(wharf_bin("wharf-shipper"), tmp, sink_config(tmp, cwl_table(group_prefix, dl_prefix))).start()
    now = int(time.time() * 1000)
    lines, want, too_old, too_new, big = [], {}, set(), set(), set()
    for n in range(3000):
        # Out of order, spread over the last 3 days.
        ts = now - ((n * 7919) % (3 * DAY))
        ev = {"kind": "log", "ts": ts, "cluster": f"c{n % 2}", "broker": n % 3, "n": n, "message": f"line {n}"}
        lines.append(json.dumps(ev))
        want[n] = ev
    for n in range(3000, 3010):
        lines.append(json.dumps({"kind": "log", "ts": now - 15 * DAY, "cluster": "c0", "broker": 0, "n": n}))
        too_old.add(n)
    for n in range(3010, 3020):
        lines.append(json.dumps({"kind": "log", "ts": now + 3 * 3600 * 1000, "cluster": "c0", "broker": 0, "n": n}))
        too_new.add(n)
    for n in range(3020, 3022):
        lines.append(json.dumps({"kind": "log", "ts": now, "cluster": "c1", "broker": 1, "n": n, "blob": "y" * (1100 << 10)}))
        big.add(n)
    c = Client(sh.socket_path)
    c.send_lines(lines)
    c.wait_acked(len(lines))
    assert c.errors == []
    c.close()
    groups = [f"{group_prefix}/c0", f"{group_prefix}/c1"]
    expect = len(want) + len(big)
    sh.wait_metric("wharf_shipper_sink_events_delivered_total", expect, sink="cwl")
    sh.wait_metric("wharf_shipper_sink_events_dead_lettered_total", len(too_old) + len(too_new), sink="cwl")
    metrics = {
        "delivered": sh.metric("wharf_shipper_sink_events_delivered_total", sink="cwl"),
        "dead": sh.metric("wharf_shipper_sink_events_dead_lettered_total", sink="cwl"),
        "oversize": sh.metric("wharf_shipper_sink_events_oversize_total", sink="cwl"),
    }
    assert sh.stop() == 0, sh.logs()
    events = wait_log_events(groups, expect)
    return {"want": want, "too_old": too_old, "too_new": too_new, "big": big, "groups": groups,
            "events": events, "dead": dead_letters("wharf-dead-letter", dl_prefix), "metrics": metrics}


def test_every_event_lands_once_in_its_templated_group_and_stream(shipped):
    got = {}
    for g in shipped["groups"]:
        for e in log_events(g):
            msg = e["message"]
            if "truncated" in msg:
                continue
            obj = json.loads(msg)
            assert obj["n"] not in got, f"event {obj['n']} delivered twice"
            got[obj["n"]] = (g, e["logStreamName"], e["timestamp"], obj)
    assert set(got) == set(shipped["want"])
    for n, (g, stream, ts, obj) in got.items():
        ev = shipped["want"][n]
        assert g.endswith("/" + ev["cluster"])
        assert stream == f"broker-{ev['broker']}"
        assert ts == ev["ts"]
        assert obj["wharf_id"]


def test_too_old_and_too_new_are_dead_lettered_once_and_counted(shipped):
    dead = shipped["dead"]
    by_n = {}
    for d in dead:
        assert d["sink"] == "cwl"
        assert d["event"]["n"] not in by_n, "dead-lettered twice"
        by_n[d["event"]["n"]] = d["reason"]
    assert {n for n, r in by_n.items() if r == "too_old"} == shipped["too_old"]
    assert {n for n, r in by_n.items() if r == "too_new"} == shipped["too_new"]
    assert shipped["metrics"]["dead"] == len(shipped["too_old"]) + len(shipped["too_new"])
    assert shipped["metrics"]["delivered"] == len(shipped["want"]) + len(shipped["big"])


def test_events_over_the_limit_are_truncated_with_a_visible_marker(shipped):
    truncated = [e for e in shipped["events"] if "…[wharf: truncated" in e["message"]]
    assert len(truncated) == len(shipped["big"])
    for e in truncated:
        assert len(e["message"].encode()) <= 1_048_576 - 26
    assert shipped["metrics"]["oversize"] == len(shipped["big"])


def test_created_groups_have_the_configured_retention_and_kms_key(shipped, kms_key_arn):
    logs = aws("logs")
    for g in shipped["groups"]:
        got = logs.describe_log_groups(logGroupNamePrefix=g)["logGroups"]
        assert got and got[0].get("retentionInDays") == 30, got
        assert got[0].get("kmsKeyId") == kms_key_arn, got
