"""wharf-shipper → CloudWatch metrics on LocalStack: metric records become
PutMetricData datums (gzipped bodies) under MSK's names and dimensions,
values of one metric aggregated per period (GetMetricStatistics shows the
sums, counts, minima and maxima sent); `emf` mode writes the same metrics
as Embedded Metric Format events to CloudWatch Logs."""

import datetime as dt
import json
import time

from shipper_support import Client, Shipper, unique
from sinks_support import aws, sink_config, wait_log_events


def send(sh, lines):
    c = Client(sh.socket_path)
    c.send_lines(lines)
    c.wait_acked(len(lines))
    assert c.errors == []
    c.close()


def metric(name, value, cluster, broker, ts, **extra):
    rec = {"kind": "metric", "ts": ts, "name": name, "unit": "Count", "cluster": cluster, "broker": broker}
    if isinstance(value, dict):
        rec["statistic_set"] = value
    else:
        rec["value"] = value
    rec.update(extra)
    return json.dumps(rec)


def stats(namespace, name, dims, start_ms):
    cw = aws("cloudwatch")
    start = dt.datetime.fromtimestamp(start_ms / 1000 - 600, dt.timezone.utc)
    end = dt.datetime.fromtimestamp(start_ms / 1000 + 600, dt.timezone.utc)
    got = cw.get_metric_statistics(
        Namespace=namespace, MetricName=name, StartTime=start, EndTime=end, Period=60,
        Statistics=["Sum", "SampleCount", "Minimum", "Maximum"],
        Dimensions=[{"Name": k, "Value": v} for k, v in dims.items()])
    return got["Datapoints"]


def test_metrics_arrive_aggregated_with_msk_names_and_dimensions(wharf_bin, localstack, tmp_path):
    namespace = "Wharf/Test-" + unique("ns")
    cluster = unique("c")
    table = f'''
[sinks.cw]
type = "cloudwatch_metrics"
inputs = ["broker"]
namespace = "{namespace}"
max_age = "500ms"
'''
    sh = Shipper(wharf_bin("wharf-shipper"), tmp_path, sink_config(tmp_path, table)).start()
    minute = (int(time.time()) // 60) * 60 * 1000
    lines = [metric("BytesInPerSec", v, cluster, 1, minute + v * 100) for v in range(1, 11)]
    lines += [metric("PartitionCount", {"count": 4, "sum": 40, "min": 5, "max": 15}, cluster, 1, minute + 5),
              metric("PartitionCount", 20, cluster, 1, minute + 6)]
    lines += [metric("MessagesInPerSec", 7, cluster, 2, minute + 7, topic="orders")]
    # A log line is not for this sink; a metric without a name is dead-lettered.
    lines += [json.dumps({"kind": "log", "message": "x"}), json.dumps({"kind": "metric", "value": 1})]
    send(sh, lines)
    sh.wait_metric("wharf_shipper_sink_events_delivered_total", 13, sink="cw")
    sh.wait_metric("wharf_shipper_sink_events_dead_lettered_total", 1, sink="cw")
    assert sh.stop() == 0, sh.logs()

    [bytes_in] = stats(namespace, "BytesInPerSec", {"Cluster Name": cluster, "Broker ID": "1"}, minute)
    assert (bytes_in["Sum"], bytes_in["SampleCount"], bytes_in["Minimum"], bytes_in["Maximum"]) == (55, 10, 1, 10)
    [parts] = stats(namespace, "PartitionCount", {"Cluster Name": cluster, "Broker ID": "1"}, minute)
    assert (parts["Sum"], parts["SampleCount"], parts["Minimum"], parts["Maximum"]) == (60, 5, 5, 20)
    [msgs] = stats(namespace, "MessagesInPerSec",
                   {"Cluster Name": cluster, "Broker ID": "2", "Topic": "orders"}, minute)
    assert msgs["Sum"] == 7
    names = {m["MetricName"] for m in aws("cloudwatch").list_metrics(Namespace=namespace)["Metrics"]}
    assert names == {"BytesInPerSec", "PartitionCount", "MessagesInPerSec"}


def test_emf_mode_writes_embedded_metric_format_events(wharf_bin, localstack, tmp_path):
    group = "/wharf-test/" + unique("emf")
    table = f'''
[sinks.emf]
type = "cloudwatch_metrics"
inputs = ["broker"]
mode = "emf"
namespace = "Wharf/Kafka"
[sinks.emf.emf]
group = "{group}"
stream = "broker-{{broker}}"
batch = {{ max_age = "200ms" }}
'''
    sh = Shipper(wharf_bin("wharf-shipper"), tmp_path, sink_config(tmp_path, table)).start()
    now = int(time.time() * 1000)
    send(sh, [metric("BytesInPerSec", v, "prod", 3, now + v) for v in range(5)])
    sh.wait_metric("wharf_shipper_sink_events_delivered_total", 5, sink="emf")
    assert sh.stop() == 0, sh.logs()
    events = wait_log_events([group], 5)
    assert len(events) == 5
    for e in events:
        doc = json.loads(e["message"])
        m = doc["_aws"]["CloudWatchMetrics"][0]
        assert m["Namespace"] == "Wharf/Kafka"
        assert m["Dimensions"] == [["Broker ID", "Cluster Name"]]
        assert m["Metrics"] == [{"Name": "BytesInPerSec", "Unit": "Count"}]
        assert doc["Cluster Name"] == "prod" and doc["Broker ID"] == "3"
        assert e["logStreamName"] == "broker-3"
    assert sorted(json.loads(e["message"])["BytesInPerSec"] for e in events) == [0, 1, 2, 3, 4]
