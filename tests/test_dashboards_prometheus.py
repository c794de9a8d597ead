"""A real Prometheus scrapes the exporters' endpoint and evaluates every
broker dashboard panel and alert rule through its HTTP API.

Until the broker is wired to the exporters, the endpoint is served by the
`demo_metrics_endpoint` example (exporters/examples/), which feeds the real
registry synthetic produce, fetch, request and consumer-lag traffic. Needs
the built example (`cargo build --workspace --all-targets`) and
`prometheus` (Debian package); fails saying so when either is missing.
"""

import json
import re
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

import test_dashboards_names as names

ROOT = Path(__file__).resolve().parent.parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


@pytest.fixture(scope="module")
def prometheus(bin_dir, tmp_path_factory):
    exe = shutil.which("prometheus")
    if not exe:
        pytest.fail("prometheus is not installed: `apt-get install prometheus`, or run scripts/test-all.sh")
    demo = bin_dir / "examples" / "demo_metrics_endpoint"
    if not demo.exists():
        pytest.fail(f"{demo} is missing: build with `cargo build --workspace --all-targets`")
    tmp = tmp_path_factory.mktemp("prom")
    endpoint = subprocess.Popen([str(demo)], stdout=subprocess.PIPE, text=True)
    procs = [endpoint]
    try:
        line = endpoint.stdout.readline()
        target = re.match(r"listening on (\S+)", line).group(1)
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": "wharf-broker", "static_configs": [{"targets": [target]}]}],
        }
        (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
        port = free_port()
        prom = subprocess.Popen(
            [exe, f"--config.file={tmp / 'prometheus.yml'}", f"--storage.tsdb.path={tmp / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(prom)
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                up = get_json(f"{base}/api/v1/query?query=" + urllib.parse.quote('count_over_time(up{job="wharf-broker"}[1m])'))
                if up["data"]["result"] and float(up["data"]["result"][0]["value"][1]) >= 6:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        else:
            pytest.fail("Prometheus did not scrape the endpoint 6 times within 30 s")
        yield {"prometheus": base, "target": target}
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=10)


def query(env, expr):
    base = env["prometheus"]
    expr = expr.replace("$__rate_interval", "5s").replace("$__interval", "1s")
    return get_json(f"{base}/api/v1/query?query=" + urllib.parse.quote(expr))


def broker_exprs():
    return [(w, e) for w, e in [*names.dashboard_exprs(), *names.rule_exprs()]
            if not w.startswith("wharf-shipper")]


def test_every_broker_panel_returns_data(prometheus):
    empty, errors = [], []
    for where, expr in names.dashboard_exprs():
        if where.startswith("wharf-shipper"):
            continue
        r = query(prometheus, expr)
        if r["status"] != "success":
            errors.append(f"{where}: {r}")
        elif not r["data"]["result"]:
            empty.append(f"{where}: `{expr}`")
    assert not errors, "\n".join(errors)
    assert not empty, "panels without data:\n" + "\n".join(empty)


def test_every_broker_rule_evaluates_and_every_series_it_reads_exists(prometheus):
    problems = []
    for where, expr in names.rule_exprs():
        if where.startswith("wharf-shipper"):
            continue
        r = query(prometheus, expr)
        if r["status"] != "success":
            problems.append(f"{where}: {r}")
        for metric, labels in names.selectors(expr):
            sel = metric + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
            if not query(prometheus, sel)["data"]["result"]:
                problems.append(f"{where}: `{sel}` has no series")
    assert not problems, "\n".join(problems)


def test_quiet_alerts_stay_quiet_on_a_healthy_broker(prometheus):
    # The demo broker is healthy: no offline partitions, one controller,
    # 40% disk, no telemetry drops.
    for where, expr in names.rule_exprs():
        alert = where.split(": ")[1]
        if alert in {"WharfOfflinePartitions", "WharfNoActiveController", "WharfDataDiskAlmostFull",
                     "WharfTelemetryDropping", "WharfBrokerDown", "WharfUnderReplicatedPartitions"}:
            assert query(prometheus, expr)["data"]["result"] == [], f"{alert} fires on a healthy broker"


def test_promtool_check_metrics_on_the_endpoint_output(prometheus):
    """Only the style findings MSK's own names carry (CamelCase, Kafka's
    connection_count) are allowed; see docs/metrics.md."""
    with urllib.request.urlopen(f"http://{prometheus['target']}/metrics", timeout=10) as r:
        text = r.read()
    exe = shutil.which("promtool")
    out = subprocess.run([exe, "check", "metrics"], input=text, capture_output=True)
    assert out.returncode in (0, 3), out.stdout + out.stderr
    prom, _ = names.catalog()
    for finding in (out.stdout + out.stderr).decode().splitlines():
        if not finding.strip():
            continue
        metric = finding.split()[0]
        inherited = metric in prom and metric.startswith("kafka_") and (
            finding.endswith("should be written in 'snake_case' not 'camelCase'")
            or (metric == "kafka_server_socket_server_metrics_connection_count"
                and finding.endswith('should not have "_count" suffix')))
        assert inherited, f"unexpected promtool finding: {finding}"
