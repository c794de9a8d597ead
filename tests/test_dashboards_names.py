"""Every metric that a dashboard panel, an alert rule or a CloudWatch alarm
uses is one that Wharf really emits.

Broker names come from docs/metrics.md, which is generated from the metric
catalog (exporters/src/catalog.rs) and kept up to date by a Rust test; the
registry emits every catalog row (a Rust unit test checks that too). Shipper
names come from shipper/src/metrics.rs. Runs without any service.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DASH = ROOT / "dashboards"
SHIPPER_METRICS = ROOT / "shipper" / "src" / "metrics.rs"

# Metrics Prometheus itself makes for every scrape target.
PROMETHEUS_BUILTIN = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}

PROMQL_WORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "bool", "offset", "inf", "nan", "sum", "min", "max", "avg", "count", "topk", "bottomk",
    "quantile", "stddev", "stdvar", "count_values", "group",
}


def catalog():
    """(metric -> set of `name` label values or None, CloudWatch name -> list of dimension sets)."""
    prom, cw = {}, {}
    lines = (ROOT / "docs" / "metrics.md").read_text().splitlines()
    rows = [l for l in lines if l.startswith("| ") and not l.startswith("| Metric") and not l.startswith("|---")]
    assert rows, "docs/metrics.md has no metric table"
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        series, cw_name, dims = cells[1], cells[3], cells[5]
        m = re.fullmatch(r"`([A-Za-z_:][A-Za-z0-9_:]*)(\{(.*)\})?`", series)
        if m:
            names = prom.setdefault(m.group(1), set())
            label = re.search(r'name="([^"]+)"', m.group(3) or "")
            names.add(label.group(1) if label else None)
        if cw_name.startswith("`"):
            cw.setdefault(cw_name.strip("`"), []).append([d.strip() for d in dims.split(",")])
    return prom, cw


def shipper_names():
    """The shipper's metric names, as its prometheus-client registry writes them."""
    if not SHIPPER_METRICS.exists():
        return None
    src = SHIPPER_METRICS.read_text()
    prefix = re.search(r'Registry::with_prefix\("([a-z_]+)"\)', src).group(1)
    names = set()
    for name in re.findall(r'register\(\s*"([a-z_]+)"', src):
        names.add(f"{prefix}_{name}")
        names.add(f"{prefix}_{name}_total")  # counters get the suffix
    return names


def selectors(expr):
    """(metric, {label: value}) for every series selector in a PromQL expression."""
    e = re.sub(r"\$__\w+", "1m", expr)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    out = []
    for m in re.finditer(r"([A-Za-z_:][A-Za-z0-9_:]*)\s*(\{[^}]*\})?(\s*\()?", e):
        name, braces, call = m.group(1), m.group(2), m.group(3)
        if call and not braces:
            continue  # a function
        if name.lower() in PROMQL_WORDS:
            continue
        labels = dict(re.findall(r'([A-Za-z_]\w*)\s*=~?\s*"([^"]*)"', braces or ""))
        out.append((name, labels))
    return out


def dashboard_exprs():
    for path in sorted((DASH / "grafana" / "dashboards").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for t in panel.get("targets", []):
                yield f"{path.name}: {panel['title']}", t["expr"]


def rule_exprs():
    for path in sorted((DASH / "prometheus" / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                yield f"{path.name}: {rule.get('alert') or rule.get('record')}", rule["expr"]


def test_the_selector_parser_finds_metrics_and_skips_functions_and_labels():
    got = selectors('sum by (topic) (rate(kafka_x_Count{name="BytesInPerSec",topic!=""}[$__rate_interval])) '
                    '/ on(instance) node_y and up == 0')
    assert got == [("kafka_x_Count", {"name": "BytesInPerSec"}), ("node_y", {}), ("up", {})]


def check(where, expr, prom, shipper):
    problems = []
    found = selectors(expr)
    if not found:
        problems.append(f"{where}: no metric in `{expr}`")
    for name, labels in found:
        if name in PROMETHEUS_BUILTIN:
            continue
        if name.startswith("wharf_shipper_"):
            if shipper is None:
                pytest.skip(f"{where} uses shipper metrics but shipper/src/metrics.rs is not in this "
                            f"tree yet (merge the shipper branch)")
            if name not in shipper:
                problems.append(f"{where}: `{name}` is not a metric the shipper registers")
            continue
        if name not in prom:
            problems.append(f"{where}: `{name}` is not in the broker's metric catalog (docs/metrics.md)")
            continue
        if "name" in labels and labels["name"] not in prom[name]:
            problems.append(f'{where}: `{name}{{name="{labels["name"]}"}}` is not emitted; '
                            f"the catalog has name={sorted(n for n in prom[name] if n)}")
    return problems


@pytest.mark.parametrize("source", ["dashboards", "rules"])
def test_every_query_uses_metrics_wharf_emits(source):
    prom, _ = catalog()
    shipper = shipper_names()
    exprs = list(dashboard_exprs() if source == "dashboards" else rule_exprs())
    assert len(exprs) > 10, f"too few {source} found"
    problems = [p for where, expr in exprs if not where.startswith("wharf-shipper")
                for p in check(where, expr, prom, shipper)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("source", ["dashboards", "rules"])
def test_shipper_queries_use_metrics_the_shipper_registers(source):
    prom, _ = catalog()
    exprs = [(w, e) for w, e in (dashboard_exprs() if source == "dashboards" else rule_exprs())
             if w.startswith("wharf-shipper")]
    assert exprs, f"no shipper {source}"
    problems = [p for where, expr in exprs for p in check(where, expr, prom, shipper_names())]
    assert not problems, "\n".join(problems)


def test_a_wrong_name_is_caught():
    prom, _ = catalog()
    assert check("t", 'kafka_server_BrokerTopicMetrics_Count{name="BytesInPerSecond"}', prom, set())
    assert check("t", "kafka_server_BrokerTopicMetric_Count", prom, set())
    assert check("t", "wharf_shipper_nope_total", prom, {"wharf_shipper_x_total"})
    assert not check("t", 'kafka_server_BrokerTopicMetrics_Count{name="BytesInPerSec"}', prom, set())


def test_dashboard_json_matches_its_build_script():
    sys.path.insert(0, str(DASH / "grafana"))
    try:
        import build_dashboards
    finally:
        sys.path.pop(0)
    for name, text in build_dashboards.render().items():
        path = DASH / "grafana" / "dashboards" / name
        assert path.read_text() == text, (
            f"{path} is out of date: run `python3 dashboards/grafana/build_dashboards.py`")


def test_dashboards_cover_the_cluster_overview():
    exprs = " ".join(e for w, e in dashboard_exprs() if w.startswith("wharf-cluster-overview"))
    for needle in ["BytesInPerSec", "BytesOutPerSec", "MessagesInPerSec", "PartitionCount",
                   "OfflinePartitionsCount", "kafka_network_RequestMetrics_99thPercentile",
                   "SumOffsetLag", "node_filesystem_avail_bytes"]:
        assert needle in exprs, needle


def test_cloudwatch_alarms_are_valid_put_metric_alarm_input_on_catalog_names():
    from botocore.session import get_session
    from botocore.validate import ParamValidator

    _, cw = catalog()
    shape = get_session().get_service_model("cloudwatch").operation_model("PutMetricAlarm").input_shape
    alarms = json.loads((DASH / "cloudwatch" / "alarms.json").read_text())["alarms"]
    assert len(alarms) >= 6
    names = set()
    for alarm in alarms:
        report = ParamValidator().validate(alarm, shape)
        assert not report.has_errors(), f"{alarm['AlarmName']}: {report.generate_report()}"
        metrics = [alarm] if "MetricName" in alarm else [
            m["MetricStat"]["Metric"] for m in alarm["Metrics"] if "MetricStat" in m]
        for m in metrics:
            name = m["MetricName"]
            names.add(name)
            assert name in cw, f"{alarm['AlarmName']}: {name} is not a CloudWatch name the broker writes"
            dims = [d["Name"] for d in m["Dimensions"]]
            assert dims in cw[name], f"{alarm['AlarmName']}: {name} is written with {cw[name]}, not {dims}"
    for needed in ["OfflinePartitionsCount", "KafkaDataLogsDiskUsed", "SumOffsetLag", "TelemetryLinesDropped"]:
        assert needed in names, needed
