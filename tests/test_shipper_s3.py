"""wharf-shipper → S3 on LocalStack: 100,000 events through the socket
reach S3 exactly once, in Hive-partitioned keys that DuckDB reads."""

import collections
import json
import threading

import pytest

from shipper_support import (Client, Shipper, decode_object, esdk_decrypt_kms, event, open_multipart_uploads,
                              s3_objects, unique, wharf_decrypt)

BUCKET = "wharf-test"
CLUSTERS = ["prod-eu", "prod-us"]
BROKERS = [1, 2, 3]
# Two event hours, so partitions split on time too.
HOURS_MS = [1_767_322_800_000, 1_767_326_400_000]  # 2026-01-02T03:00Z, 04:00Z


def config(tmp_path, prefix, key_arn=None, endpoint=None, **over):
    opts = {"compression": "gzip", "encryption": "none", "max_age": "2s", "max_bytes": "8 MiB"}
    opts.update(over)
    key = f'[key]\nprovider = "kms"\nkey_id = "{key_arn}"' if key_arn else ""
    endpoint = f'endpoint_url = "{endpoint}"' if endpoint else ""
    return f'''
data_dir = "{tmp_path}/data"
{key}
[api]
address = "127.0.0.1:0"
[sources.broker]
type = "socket"
path = "{tmp_path}/s.sock"
[sinks.s3]
type = "s3"
inputs = ["broker"]
bucket = "{BUCKET}"
key = "{prefix}/cluster={{cluster}}/broker={{broker}}/dt=%Y-%m-%d/hour=%H/{{uuid}}.{{ext}}"
compression = "{opts["compression"]}"
encryption = "{opts["encryption"]}"
part_bytes = "5 MiB"
{endpoint}
batch = {{ max_bytes = "{opts["max_bytes"]}", max_age = "{opts["max_age"]}" }}
'''


def make_events(client, count):
    out = []
    for n in range(count):
        out.append(event(client, n, HOURS_MS[n % 2] + n, CLUSTERS[(n // 2) % 2], BROKERS[n % 3]))
    return out


def send_all(path, client_id, lines, chunk=2000):
    c = Client(path)
    for i in range(0, len(lines), chunk):
        c.send_lines(lines[i:i + chunk])
    c.wait_acked(len(lines), timeout=180)
    assert c.errors == []
    c.close()


def delivered_events(prefix, key_arn, wharf):
    """Every event in S3, decrypted with the Python Encryption SDK; each
    object also decrypted with `wharf decrypt`, which must agree."""
    rows = []
    objects = s3_objects(BUCKET, prefix)
    for obj in objects:
        assert obj["metadata"].get("wharf-encryption") == "aws-encryption-sdk"
        assert obj["body"][:3] == b"\x02\x04\x78", "ESDK v2 message, suite 0x0478"
        plain, ctx = esdk_decrypt_kms(obj["body"], key_arn)
        assert ctx["object"] == obj["key"] and ctx["purpose"] == "wharf-shipper-object"
        assert wharf_decrypt(wharf, obj["body"]) == plain
        comp = obj["metadata"]["wharf-compression"]
        for r in decode_object(plain, comp):
            r["_key"] = obj["key"]
            rows.append(r)
    return rows


@pytest.fixture(scope="module")
def shipped(wharf_bin, localstack, kms_key_arn, tmp_path_factory):
    """Send 4 x 25,000 events from 4 concurrent clients; stop the shipper
    (SIGTERM flushes); return what S3 holds."""
    tmp = tmp_path_factory.mktemp("s3")
    prefix = unique("shipper-s3")
    cfg = config(tmp, prefix, key_arn=kms_key_arn, encryption="envelope")
    sh = Shipper(wharf_bin("wharf-shipper"), tmp, cfg).start()
    sent = {c: make_events(c, 25_000) for c in range(4)}
    threads = [threading.Thread(target=send_all, args=(sh.socket_path, c, lines)) for c, lines in sent.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sh.metric("wharf_shipper_events_acked_total", source="broker") == 100_000
    sh.wait_metric("wharf_shipper_sink_events_delivered_total", 100_000, sink="s3")
    metrics = sh.metrics()
    assert sh.stop() == 0, sh.logs()
    rows = delivered_events(prefix, kms_key_arn, wharf_bin("wharf"))
    return {"prefix": prefix, "sent": sent, "rows": rows, "metrics": metrics}


def test_100k_events_reach_s3_exactly_once(shipped):
    rows = shipped["rows"]
    got = collections.Counter((r["client"], r["n"]) for r in rows)
    want = {(c, n) for c, lines in shipped["sent"].items() for n in range(len(lines))}
    missing = want - set(got)
    doubled = [k for k, v in got.items() if v > 1]
    assert not missing, f"{len(missing)} events missing, e.g. {sorted(missing)[:5]}"
    assert not doubled, f"{len(doubled)} events doubled, e.g. {doubled[:5]}"
    assert len(rows) == 100_000
    # Each event is the client's object plus its stable id.
    ids = {r["wharf_id"] for r in rows}
    assert len(ids) == 100_000
    sample = rows[0]
    original = json.loads(shipped["sent"][sample["client"]][sample["n"]])
    assert {k: v for k, v in sample.items() if k not in ("wharf_id", "_key")} == original
    assert not open_multipart_uploads(BUCKET, shipped["prefix"])


def test_keys_are_hive_partitions_from_event_fields_and_time(shipped):
    for r in shipped["rows"][:5000]:
        hour = "03" if r["ts"] < HOURS_MS[1] else "04"
        expect = f"{shipped['prefix']}/cluster={r['cluster']}/broker={r['broker']}/dt=2026-01-02/hour={hour}/"
        assert r["_key"].startswith(expect), (r["_key"], expect)
        assert r["_key"].endswith(".ndjson.gz")


def test_duckdb_counts_by_partition(shipped, tmp_path):
    import duckdb
    # Lay the objects out as Athena would see them, decoded.
    root = tmp_path / "lake"
    by_key = collections.defaultdict(list)
    for r in shipped["rows"]:
        by_key[r["_key"]].append({k: v for k, v in r.items() if k != "_key"})
    for key, rows in by_key.items():
        p = root / key.replace(".ndjson.gz", ".ndjson")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("".join(json.dumps(x) + "\n" for x in rows))
    got = duckdb.sql(
        f"""select cluster, broker, dt, hour, count(*) as n
            from read_json_auto('{root}/**/*.ndjson', hive_partitioning = true)
            group by all order by all"""
    ).fetchall()
    want = collections.Counter()
    for c, lines in shipped["sent"].items():
        for line in lines:
            e = json.loads(line)
            hour = 3 if e["ts"] < HOURS_MS[1] else 4
            want[(e["cluster"], e["broker"], "2026-01-02", hour)] += 1
    got_map = {(c, int(b), str(d), int(h)): n for c, b, d, h, n in got}
    assert got_map == dict(want)
    assert sum(got_map.values()) == 100_000


def test_metrics_count_what_happened(shipped):
    m = shipped["metrics"]
    assert m['wharf_shipper_events_received_total{source="broker"}'] == 100_000
    assert m['wharf_shipper_sink_events_delivered_total{sink="s3"}'] == 100_000
    objects = len({r["_key"] for r in shipped["rows"]})
    assert m['wharf_shipper_sink_objects_total{sink="s3"}'] == objects
    # One GenerateDataKey per object, the buffer's segments from the cache:
    # 100,000 events cost a handful of KMS calls, not 100,000.
    kms = sum(v for k, v in m.items() if k.startswith("wharf_shipper_kms_calls_total"))
    assert 0 < kms <= objects + 5, kms
