#!/usr/bin/env python3
"""Builds Wharf's Grafana dashboards (grafana/dashboards/*.json).

The dashboards are generated so that their panels stay uniform; edit the
panel lists below and run `python3 dashboards/grafana/build_dashboards.py`.
tests/test_dashboards_names.py checks that the JSON files match this script
and that every query uses metrics Wharf really emits.
"""

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATASOURCE = {"type": "prometheus", "uid": "wharf-prometheus"}
RATE = "$__rate_interval"


def panel(title, targets, unit="short", kind="timeseries", w=12, h=8, description="", thresholds=None):
    """One panel; `targets` is a list of (expr, legend)."""
    steps = [{"color": "green", "value": None}]
    for value, color in thresholds or []:
        steps.append({"color": color, "value": value})
    p = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "gridPos": {"w": w, "h": h},
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "thresholds": {"mode": "absolute", "steps": steps},
            },
            "overrides": [],
        },
        "options": {},
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend}
            for i, (expr, legend) in enumerate(targets)
        ],
    }
    if kind == "stat":
        p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                        "colorMode": "background", "graphMode": "none"}
    return p


def row(title):
    return {"type": "row", "title": title, "collapsed": False, "gridPos": {"w": 24, "h": 1}, "panels": []}


def layout(panels):
    """Places panels left to right, top to bottom, on Grafana's 24-column grid."""
    x = y = row_h = 0
    for i, p in enumerate(panels):
        g = p["gridPos"]
        if p["type"] == "row" or x + g["w"] > 24:
            x, y = 0, y + row_h
            row_h = 0
        g["x"], g["y"] = x, y
        p["id"] = i + 1
        x += g["w"]
        row_h = max(row_h, g["h"])
        if p["type"] == "row":
            x, y, row_h = 0, y + g["h"], 0
    return panels


def dashboard(uid, title, description, panels, tags):
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": tags,
        "editable": True,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "timezone": "utc",
        "templating": {"list": []},
        "annotations": {"list": []},
        "panels": layout(panels),
    }


BTM = "kafka_server_BrokerTopicMetrics_Count"
LAG = "kafka_consumer_group_ConsumerLagMetrics_Value"


def cluster_overview():
    panels = [
        row("Health"),
        panel("Brokers up", [('sum(up{job="wharf-broker"})', "brokers")], kind="stat", w=4, h=4),
        panel("Offline partitions", [('sum(kafka_controller_KafkaController_Value{name="OfflinePartitionsCount"})', "offline")],
              kind="stat", w=4, h=4, thresholds=[(1, "red")],
              description="Partitions without a leader: neither writable nor readable."),
        panel("Active controllers", [('sum(kafka_controller_KafkaController_Value{name="ActiveControllerCount"})', "controllers")],
              kind="stat", w=4, h=4),
        panel("Under-replicated partitions", [('sum(kafka_server_ReplicaManager_Value{name="UnderReplicatedPartitions"})', "under-replicated")],
              kind="stat", w=4, h=4, thresholds=[(1, "orange")]),
        panel("Topics", [('max(kafka_controller_KafkaController_Value{name="GlobalTopicCount"})', "topics")], kind="stat", w=4, h=4),
        panel("Partitions", [('max(kafka_controller_KafkaController_Value{name="GlobalPartitionCount"})', "partitions")], kind="stat", w=4, h=4),
        row("Throughput"),
        panel("Bytes in per topic", [(f'sum by (topic) (rate({BTM}{{name="BytesInPerSec",topic!=""}}[{RATE}]))', "{{topic}}")], unit="Bps"),
        panel("Bytes out per topic", [(f'sum by (topic) (rate({BTM}{{name="BytesOutPerSec",topic!=""}}[{RATE}]))', "{{topic}}")], unit="Bps"),
        panel("Messages in per topic", [(f'sum by (topic) (rate({BTM}{{name="MessagesInPerSec",topic!=""}}[{RATE}]))', "{{topic}}")], unit="ops"),
        panel("Broker throughput", [
            (f'sum by (instance) (rate({BTM}{{name="BytesInPerSec",topic=""}}[{RATE}]))', "in {{instance}}"),
            (f'sum by (instance) (rate({BTM}{{name="BytesOutPerSec",topic=""}}[{RATE}]))', "out {{instance}}"),
        ], unit="Bps"),
        row("Requests"),
        panel("Requests per type", [(f'sum by (request) (rate(kafka_network_RequestMetrics_Count{{name="RequestsPerSec"}}[{RATE}]))', "{{request}}")], unit="reqps"),
        panel("Request errors per type", [(f'sum by (request) (rate(kafka_network_RequestMetrics_Count{{name="ErrorsPerSec"}}[{RATE}]))', "{{request}}")], unit="reqps"),
        panel("Request latency, mean", [('max by (request) (kafka_network_RequestMetrics_Mean{name="TotalTimeMs"})', "{{request}}")], unit="ms"),
        panel("Request latency, p99", [('max by (request) (kafka_network_RequestMetrics_99thPercentile{name="TotalTimeMs"})', "{{request}}")], unit="ms"),
        row("Partitions and storage"),
        panel("Partitions and leaders per broker", [
            ('kafka_server_ReplicaManager_Value{name="PartitionCount"}', "partitions {{instance}}"),
            ('kafka_server_ReplicaManager_Value{name="LeaderCount"}', "leaders {{instance}}"),
        ]),
        panel("Data disk used", [('100 * (1 - node_filesystem_avail_bytes / node_filesystem_size_bytes)', "{{instance}} {{mountpoint}}")],
              unit="percent", thresholds=[(85, "red")]),
        panel("Largest partition logs", [('topk(10, kafka_log_Log_Value{name="Size"})', "{{topic}}-{{partition}}")], unit="bytes"),
        panel("Connections per listener", [('sum by (listener) (kafka_server_socket_server_metrics_connection_count)', "{{listener}}")]),
        panel("Fetched batches by source", [(f'sum by (source) (rate(wharf_broker_fetch_batches_total[{RATE}]))', "{{source}}")],
              unit="ops",
              description="tail_cache: recent batches served from memory; segments: read from disk and decrypted. "
                          "Consumers falling behind the tail show as a growing segments share."),
        panel("Tail cache held", [('sum by (instance) (wharf_broker_tail_cache_bytes)', "{{instance}}")], unit="bytes"),
        row("Consumers"),
        panel("Consumer lag (sum) per group and topic", [(f'max by (groupId, topic) ({LAG}{{name="SumOffsetLag"}})', "{{groupId}} / {{topic}}")]),
        panel("Consumer lag (max partition) per group and topic", [(f'max by (groupId, topic) ({LAG}{{name="MaxOffsetLag"}})', "{{groupId}} / {{topic}}")]),
        row("Telemetry to the shipper"),
        panel("Telemetry lines", [(f'sum by (outcome) (rate(wharf_telemetry_lines_total[{RATE}]))', "{{outcome}}")], unit="ops"),
        panel("Telemetry dropped", [(f'sum by (reason) (increase(wharf_telemetry_dropped_total[{RATE}]))', "{{reason}}")],
              thresholds=[(1, "red")]),
        panel("Telemetry spool", [('sum by (instance) (wharf_telemetry_spool_bytes)', "{{instance}}")], unit="bytes"),
        panel("Unacknowledged telemetry lines", [('sum by (instance) (wharf_telemetry_unacked_lines)', "{{instance}}")]),
        panel("Connected to the shipper", [('min(wharf_telemetry_connected)', "connected")], kind="stat", w=6, h=4),
    ]
    return dashboard("wharf-cluster-overview", "Wharf / Cluster overview",
                     "Throughput, requests, partitions, consumer lag and disk of a Wharf cluster (MSK open-monitoring names).",
                     panels, ["wharf", "kafka"])


def shipper_pipeline():
    S = "wharf_shipper_"
    panels = [
        row("Sources"),
        panel("Events received per source", [(f'sum by (source) (rate({S}events_received_total[{RATE}]))', "{{source}}")], unit="ops"),
        panel("Events acked per source", [(f'sum by (source) (rate({S}events_acked_total[{RATE}]))', "{{source}}")], unit="ops"),
        panel("Lines refused (dead-lettered) per source", [(f'sum by (source, reason) (increase({S}events_dead_lettered_total[{RATE}]))', "{{source}} {{reason}}")]),
        panel("Events dropped (buffer full)", [(f'sum by (source) (increase({S}events_dropped_total[{RATE}]))', "{{source}}")], thresholds=[(1, "red")]),
        panel("Connected clients", [(f'sum by (source) ({S}connections)', "{{source}}")], w=8),
        row("Buffer"),
        panel("Buffer size", [(f'sum by (instance) ({S}buffer_bytes)', "{{instance}}")], unit="bytes"),
        panel("Oldest undelivered event per sink", [(f'max by (sink) ({S}sink_oldest_unacked_age_seconds)', "{{sink}}")], unit="s",
              thresholds=[(900, "red")]),
        row("Sinks"),
        panel("Events delivered per sink", [(f'sum by (sink) (rate({S}sink_events_delivered_total[{RATE}]))', "{{sink}}")], unit="ops"),
        panel("Events retried per sink", [(f'sum by (sink) (rate({S}sink_events_retried_total[{RATE}]))', "{{sink}}")], unit="ops"),
        panel("Events dead-lettered per sink", [(f'sum by (sink) (increase({S}sink_events_dead_lettered_total[{RATE}]))', "{{sink}}")], thresholds=[(1, "red")]),
        panel("Objects written per sink", [
            (f'sum by (sink) (rate({S}sink_objects_total[{RATE}]))', "objects {{sink}}"),
        ], unit="ops"),
        panel("Object bytes written per sink", [(f'sum by (sink) (rate({S}sink_object_bytes_total[{RATE}]))', "{{sink}}")], unit="Bps"),
        row("Keys"),
        panel("Master key calls", [(f'sum by (operation) (rate({S}kms_calls_total[{RATE}]))', "{{operation}}")], unit="reqps"),
    ]
    return dashboard("wharf-shipper-pipeline", "Wharf / Shipper pipeline",
                     "Events in and out of wharf-shipper per source and sink, retries, dead letters, buffer size and age, master key calls.",
                     panels, ["wharf", "shipper"])


DASHBOARDS = {
    "wharf-cluster-overview.json": cluster_overview,
    "wharf-shipper-pipeline.json": shipper_pipeline,
}


def render():
    return {name: json.dumps(build(), indent=2) + "\n" for name, build in DASHBOARDS.items()}


if __name__ == "__main__":
    for name, text in render().items():
        (HERE / "dashboards" / name).write_text(text)
        print(f"wrote dashboards/grafana/dashboards/{name}")
