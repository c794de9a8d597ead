"""`wharf up` end to end: kcat produces, confluent-kafka's AdminClient
creates a topic, and the broker's logs, metric snapshots and exactly one
audit record for that request arrive in the file sink, readable with
`wharf decrypt --key`. Ctrl-C stops both processes cleanly.

Needs the built `wharf` (`cargo build -p wharf`) and kcat."""

import signal
import subprocess
import uuid

import pytest

from telemetry_support import Up, produce, wait_for


@pytest.fixture
def up(wharf_bin, tmp_path):
    u = Up(wharf_bin("wharf"), tmp_path, "--snapshot-seconds", "1", "--cluster", "upcheck").start()
    yield u
    u.stop()


def audit_prefix(up):
    return "AWSLogs/000000000000/CloudTrail/local"


def test_logs_metrics_and_one_audit_record_reach_the_file_sink(up, kcat):
    topic = f"up-{uuid.uuid4().hex[:8]}"
    produce(kcat, up.kafka, topic, 200)

    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": up.kafka, "client.id": "audit-check"})
    created = f"admin-{uuid.uuid4().hex[:8]}"
    for f in admin.create_topics([NewTopic(created, num_partitions=3, replication_factor=1)]).values():
        f.result(30)

    # Broker logs: the start, the auto-created topic and the admin-created one.
    def logs():
        recs = up.records("logs")
        msgs = {(r.get("message"), r.get("topic")) for r in recs}
        need = {("wharf-broker listening (plaintext)", None), ("created topic", topic),
                ("created topic", created)}
        return recs if need <= msgs else None
    log_recs = wait_for("broker log records in objects/logs", logs)
    assert all(r["kind"] == "log" and r["cluster"] == "upcheck" and r["broker"] == "0"
               for r in log_recs)
    assert (up.dir / "objects/logs/cluster=upcheck/broker=0").is_dir()

    # Metric snapshots with MSK's CloudWatch names and dimensions.
    def metrics():
        recs = [r for r in up.records("metrics") if r.get("name") == "BytesInPerSec"
                and r.get("dimensions", {}).get("Topic") == topic]
        return recs or None
    m = wait_for("a BytesInPerSec snapshot for the topic", metrics)
    assert m[0]["dimensions"]["Cluster Name"] == "upcheck"
    assert m[0]["dimensions"]["Broker ID"] == "0"

    # Exactly one CloudTrail-shaped record for the CreateTopics request.
    def audit():
        recs = [r for r in up.records(audit_prefix(up)) if r.get("eventName") == "CreateTopics"
                and created in [t["name"] for t in r["requestParameters"]["topics"]]]
        return recs or None
    wait_for("the CreateTopics audit record", audit)
    # Let any duplicate arrive before counting.
    import time
    time.sleep(3)
    recs = audit()
    assert len(recs) == 1, recs
    r = recs[0]
    assert r["userAgent"] == "audit-check"
    assert r["sourceIPAddress"] == "127.0.0.1"
    # The region and account of the prefix the record is filed under.
    assert (r["awsRegion"], r["recipientAccountId"]) == ("local", "000000000000")
    assert r["requestParameters"]["topics"][0]["numPartitions"] == 3
    assert r["responseElements"]["topics"] == [{"name": created, "errorCode": "NONE"}]
    for field in ("eventVersion", "eventSource", "eventTime", "eventID", "requestID",
                  "readOnly", "eventType"):
        assert field in r, field
    # The auto-creation by Produce is not an admin request: no record for it.
    assert not [x for x in up.records(audit_prefix(up))
                if topic in [t["name"] for t in x["requestParameters"].get("topics", [])
                             if isinstance(t, dict)]]


def test_a_refused_admin_request_is_audited_with_its_error(up):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": up.kafka, "client.id": "audit-refused"})
    name = f"dup-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(name, 1, 1)])[name].result(30)
    with pytest.raises(Exception):
        admin.create_topics([NewTopic(name, 1, 1)])[name].result(30)

    def audit():
        recs = [r for r in up.records(audit_prefix(up))
                if name in [t["name"] for t in r["requestParameters"]["topics"]]]
        return recs if len(recs) >= 2 else None
    recs = wait_for("two audit records", audit)
    assert sorted(r.get("errorCode", "ok") for r in recs) == ["TOPIC_ALREADY_EXISTS", "ok"]


def test_ctrl_c_stops_broker_and_shipper(up):
    pids = subprocess.run(["pgrep", "-f", str(up.dir)], capture_output=True, text=True).stdout.split()
    assert len(pids) >= 2, "broker and shipper children not found"
    assert up.stop(signal.SIGINT) == 0, up.output()
    left = subprocess.run(["pgrep", "-f", str(up.dir / "broker.toml")], capture_output=True,
                          text=True).stdout.split()
    left += subprocess.run(["pgrep", "-f", str(up.dir / "shipper.toml")], capture_output=True,
                           text=True).stdout.split()
    assert not left, f"processes left running: {left}"
    out = up.output()
    assert "broker stopped (exit status: 0)" in out and "shipper stopped (exit status: 0)" in out, out
