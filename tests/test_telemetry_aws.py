"""End to end on LocalStack: the real wharf-broker sends its telemetry to a
real wharf-shipper whose sinks are CloudWatch metrics, CloudWatch Logs and
S3, and what a user would look for with boto3 is there:

- metrics in CloudWatch with MSK's names and dimensions (`Cluster Name`,
  `Broker ID`, `Topic`) and values that match the produced traffic;
- one audit record per admin request (CreateTopics, DeleteTopics from
  confluent-kafka's AdminClient), exactly once in the audit log group and
  exactly once in S3 under CloudTrail's prefix
  `AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/`, with CloudTrail's
  fields;
- the broker's log lines in CloudWatch Logs.

CloudWatch refuses PutMetricData into `AWS/...` namespaces (reserved for
AWS's own services), so the metrics land in the shipper's default
`Wharf/Kafka` namespace with MSK's metric names inside it.

Needs the built wharf-broker and wharf-shipper, kcat, and LocalStack
(`localstack/localstack.sh start`; `eval "$(localstack/localstack.sh env)"`)."""

import collections
import datetime
import gzip
import json
import os
import subprocess
import time

from shipper_support import Shipper, s3_client, unique
from sinks_support import aws
from telemetry_support import wait_for
from test_broker_harness import Broker

NAMESPACE = "Wharf/Kafka"
LOG_GROUP = "/wharf/test"
AUDIT_GROUP = "/wharf/audit"
BUCKET = "wharf-logs"
ACCOUNT = "000000000000"  # LocalStack's account
REGION = "us-east-1"
SNAPSHOT_SECONDS = 2
MESSAGES = 3000
PAYLOAD = 200


def shipper_config(tmp, key_arn: str) -> str:
    return f"""
data_dir = "{tmp}/shipper"
shutdown_timeout = "30s"

[api]
address = "127.0.0.1:0"

[key]
provider = "kms"
key_id = "{key_arn}"

[sources.broker]
type = "socket"
path = "{tmp}/s.sock"

[sinks.metrics]
type = "cloudwatch_metrics"
inputs = ["broker"]
namespace = "{NAMESPACE}"
max_age = "1s"

[sinks.broker_logs]
type = "cloudwatch_logs"
inputs = ["broker"]
kinds = ["log"]
group = "{LOG_GROUP}"
stream = "{{cluster}}/broker-{{broker}}"
batch = {{ max_age = "1s" }}

[sinks.audit_logs]
type = "cloudwatch_logs"
inputs = ["broker"]
kinds = ["audit"]
group = "{AUDIT_GROUP}"
stream = "{{additionalEventData.clusterName}}"
batch = {{ max_age = "1s" }}

[sinks.audit_s3]
type = "s3"
inputs = ["broker"]
kinds = ["audit"]
bucket = "{BUCKET}"
key = "AWSLogs/{{recipientAccountId}}/CloudTrail/{{awsRegion}}/%Y/%m/%d/{{uuid}}.{{ext}}"
compression = "gzip"
encryption = "sse-kms"
sse_kms_key_id = "{key_arn}"
force_path_style = true
batch = {{ max_age = "1s" }}
"""


def broker_config(tmp, cluster: str) -> str:
    return f"""
cluster_id = "{cluster}"
node_id = 1
[telemetry]
socket = "{tmp}/s.sock"
spool_dir = "{tmp}/spool"
prometheus_address = "127.0.0.1:0"
monitoring_level = "PER_TOPIC_PER_BROKER"
snapshot_period_seconds = {SNAPSHOT_SECONDS}
aws_region = "{REGION}"
aws_account_id = "{ACCOUNT}"
"""


def admin_requests(bootstrap: str, topic: str, scratch: str):
    """CreateTopics (topic and scratch) and DeleteTopics (scratch), as an
    operator's tool would send them."""
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient({"bootstrap.servers": bootstrap, "client.id": "e2e-admin"})
    for f in a.create_topics([NewTopic(topic, 1, 1), NewTopic(scratch, 1, 1)]).values():
        f.result(30)
    for f in a.delete_topics([scratch]).values():
        f.result(30)


def produce(kcat: str, bootstrap: str, topic: str):
    lines = b"".join(f"{i:0{PAYLOAD}d}\n".encode() for i in range(MESSAGES))
    r = subprocess.run([kcat, "-P", "-b", bootstrap, "-t", topic, "-X", "acks=all",
                        "-X", "compression.codec=none"], input=lines, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode()


def metric_data(name: str, dims: dict, start: datetime.datetime, stat: str) -> list[float]:
    got = aws("cloudwatch").get_metric_data(
        MetricDataQueries=[{
            "Id": "m", "ReturnData": True,
            "MetricStat": {"Metric": {"Namespace": NAMESPACE, "MetricName": name,
                                      "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()]},
                           "Period": 60, "Stat": stat}}],
        StartTime=start, EndTime=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=2))
    return got["MetricDataResults"][0]["Values"]


def audit_in_s3(since: datetime.datetime, cluster: str) -> list[tuple[str, dict]]:
    """(key, record) of every audit record of `cluster` under CloudTrail's
    prefix for the days since `since`."""
    s3 = s3_client()
    out = []
    day = since.date()
    while day <= datetime.datetime.now(datetime.timezone.utc).date():
        prefix = f"AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/{day:%Y/%m/%d}/"
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
            for o in page.get("Contents", []):
                body = s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read()
                for line in gzip.decompress(body).splitlines():
                    rec = json.loads(line)
                    if rec.get("additionalEventData", {}).get("clusterName") == cluster:
                        out.append((o["Key"], rec))
        day += datetime.timedelta(days=1)
    return out


def audit_in_logs(cluster: str) -> list[dict]:
    try:
        events = aws("logs").get_paginator("filter_log_events").paginate(
            logGroupName=AUDIT_GROUP, logStreamNames=[cluster])
        return [json.loads(e["message"]) for page in events for e in page["events"]]
    except aws("logs").exceptions.ResourceNotFoundException:
        return []


def test_broker_telemetry_reaches_cloudwatch_and_s3(wharf_bin, localstack, kms_key_arn, kcat, tmp_path):
    for k, v in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"),
                 ("AWS_REGION", REGION), ("AWS_ENDPOINT_URL", localstack)):
        os.environ.setdefault(k, v)
    cluster = unique("e2e")
    topic, scratch = f"orders-{cluster}", f"scratch-{cluster}"
    start = datetime.datetime.now(datetime.timezone.utc).replace(second=0, microsecond=0)

    shipper = Shipper(wharf_bin("wharf-shipper"), tmp_path, shipper_config(tmp_path, kms_key_arn)).start()
    (tmp_path / "broker").mkdir()
    broker = Broker(wharf_bin("wharf-broker"), tmp_path / "broker", broker_config(tmp_path, cluster)).start()
    try:
        admin_requests(broker.bootstrap, topic, scratch)
        produce(kcat, broker.bootstrap, topic)
        topic_dims = {"Cluster Name": cluster, "Broker ID": "1", "Topic": topic}

        # (a) Metrics: the names a user finds with ListMetrics for this
        # cluster, then the produced topic's values with GetMetricData.
        def listed():
            got = aws("cloudwatch").list_metrics(
                Namespace=NAMESPACE, Dimensions=[{"Name": "Cluster Name", "Value": cluster}])["Metrics"]
            by_name = collections.defaultdict(list)
            for m in got:
                by_name[m["MetricName"]].append({d["Name"]: d["Value"] for d in m["Dimensions"]})
            return by_name if all(n in by_name for n in ("BytesInPerSec", "MessagesInPerSec",
                                                         "PartitionCount", "GlobalTopicCount")) else None
        metrics = wait_for("the broker's metrics in CloudWatch", listed, timeout=120, every=2)
        assert topic_dims in metrics["BytesInPerSec"], metrics["BytesInPerSec"]
        assert topic_dims in metrics["MessagesInPerSec"], metrics["MessagesInPerSec"]
        assert {"Cluster Name": cluster, "Broker ID": "1"} in metrics["PartitionCount"]
        assert {"Cluster Name": cluster} in metrics["GlobalTopicCount"]
        assert all(set(d) <= {"Cluster Name", "Broker ID", "Topic", "Consumer Group", "Partition"}
                   for dims in metrics.values() for d in dims), metrics

        msgs = wait_for("MessagesInPerSec of the produced topic",
                        lambda: [v for v in metric_data("MessagesInPerSec", topic_dims, start, "Sum") if v > 0],
                        timeout=60, every=2)
        bytes_in = metric_data("BytesInPerSec", topic_dims, start, "Sum")
        assert sum(bytes_in) > 0, bytes_in
        # Both rates come from the same snapshots, so their ratio is the
        # bytes the broker counted per message: the payload plus the
        # record's and batch's framing, never less than the payload.
        per_message = sum(bytes_in) / sum(msgs)
        assert PAYLOAD <= per_message <= PAYLOAD + 100, per_message
        # No snapshot can have seen more messages per second than were produced.
        peak = metric_data("MessagesInPerSec", topic_dims, start, "Maximum")
        assert 0 < max(peak) <= MESSAGES, peak
        # Gauges too: the broker's partitions (the first snapshots may
        # predate the topics).
        wait_for("PartitionCount of the broker at 1 or more", lambda: max(metric_data(
            "PartitionCount", {"Cluster Name": cluster, "Broker ID": "1"}, start, "Maximum"), default=0) >= 1,
            timeout=60, every=2)

        # (b) Audit: one record per admin request, exactly once in the log
        # group and exactly once in S3 under CloudTrail's prefix.
        def audits_arrived():
            logs, s3 = audit_in_logs(cluster), audit_in_s3(start, cluster)
            return (logs, s3) if len(logs) >= 2 and len(s3) >= 2 else None
        logs, s3 = wait_for("two audit records in CloudWatch Logs and S3", audits_arrived, timeout=120, every=2)
        # Late duplicates would show up after the first sighting: let every
        # sink's batch age (1 s) pass a few times, then read again.
        time.sleep(5)
        logs, s3 = audit_in_logs(cluster), audit_in_s3(start, cluster)
        for where, records in (("CloudWatch Logs", logs), ("S3", [r for _, r in s3])):
            ids = collections.Counter(r["eventID"] for r in records)
            assert all(n == 1 for n in ids.values()), f"{where}: duplicated records {ids}"
            assert sorted(r["eventName"] for r in records) == ["CreateTopics", "DeleteTopics"], (where, records)
            created = next(r for r in records if r["eventName"] == "CreateTopics")
            deleted = next(r for r in records if r["eventName"] == "DeleteTopics")
            assert {t["name"] for t in created["requestParameters"]["topics"]} == {topic, scratch}
            assert json.dumps(deleted["requestParameters"]).count(scratch) == 1, deleted
            assert topic not in json.dumps(deleted["requestParameters"]), deleted
            for r in records:
                assert r["eventSource"] == "kafka-cluster.amazonaws.com"
                assert r["eventType"] == "AwsApiCall"
                assert r["eventVersion"]
                assert r["awsRegion"] == REGION and r["recipientAccountId"] == ACCOUNT
                assert r["sourceIPAddress"] == "127.0.0.1"
                assert r["userAgent"] == "e2e-admin"
                assert r["additionalEventData"]["brokerId"] == "1"
                assert "errorCode" not in r, r
                datetime.datetime.strptime(r["eventTime"], "%Y-%m-%dT%H:%M:%SZ")
        assert {r["eventID"] for r in logs} == {r["eventID"] for _, r in s3}
        for key, r in s3:
            assert key.startswith(f"AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/{r['eventTime'][:10].replace('-', '/')}/"), key

        # (c) The broker's own log lines, e.g. the topics it created.
        def broker_lines():
            try:
                pages = aws("logs").get_paginator("filter_log_events").paginate(
                    logGroupName=LOG_GROUP, logStreamNames=[f"{cluster}/broker-1"])
                mine = [json.loads(e["message"]) for page in pages for e in page["events"]]
            except aws("logs").exceptions.ResourceNotFoundException:  # created with the first batch
                return None
            ours = [m for m in mine if m.get("cluster") == cluster and m.get("topic") == topic]
            return mine if ours else None
        lines = wait_for("the broker's log lines in CloudWatch Logs", broker_lines, timeout=120, every=2)
        assert all(m["kind"] == "log" and m["level"] in ("ERROR", "WARN", "INFO", "DEBUG", "TRACE")
                   for m in lines), lines[:3]
        streams = aws("logs").describe_log_streams(logGroupName=LOG_GROUP,
                                                   logStreamNamePrefix=cluster)["logStreams"]
        assert [s["logStreamName"] for s in streams] == [f"{cluster}/broker-1"]
        assert shipper.metric("wharf_shipper_sink_events_dead_lettered_total") == 0, shipper.logs()
    finally:
        broker.stop()
        assert shipper.stop() == 0, shipper.logs()
