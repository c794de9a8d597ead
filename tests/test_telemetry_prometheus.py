"""A real Prometheus (Debian's package) scrapes a running wharf-broker and
wharf-shipper (started by `wharf up`) while kcat produces and a
confluent-kafka group consumes; every expression of every Grafana panel
and every alert rule in dashboards/ is evaluated through Prometheus' HTTP
API and must return data without error.

Needs the built `wharf`, kcat and `prometheus`; fails saying so when one
is missing."""

import shutil
import subprocess
import threading
import time
import urllib.parse
import uuid

import pytest
import yaml

import test_dashboards_names as names
from test_dashboards_prometheus import free_port, get_json
from telemetry_support import Up, produce

# Alerts that must stay quiet on a healthy single broker under light load.
QUIET = {"WharfOfflinePartitions", "WharfNoActiveController", "WharfDataDiskAlmostFull",
         "WharfTelemetryDropping", "WharfBrokerDown", "WharfUnderReplicatedPartitions",
         "WharfShipperDown", "WharfShipperDeadLetters"}


@pytest.fixture(scope="module")
def env(wharf_bin, kcat, tmp_path_factory):
    exe = shutil.which("prometheus")
    if not exe:
        pytest.fail("prometheus is not installed: `apt-get install prometheus`, or run scripts/test-all.sh")
    tmp = tmp_path_factory.mktemp("telemetry-prom")
    up = Up(wharf_bin("wharf"), tmp, "--snapshot-seconds", "5").start()
    stop = threading.Event()
    threads, procs, failures = [], [], []
    topic = f"prom-{uuid.uuid4().hex[:8]}"
    try:
        # The topic exists before the group subscribes: a consumer that
        # subscribes first gets "Subscribed topic not available" from
        # consume(), which must not end its loop.
        produce(kcat, up.kafka, topic, 200)

        def producer():
            while not stop.is_set():
                produce(kcat, up.kafka, topic, 200)
                time.sleep(0.2)

        def consumer():
            from confluent_kafka import Consumer
            c = Consumer({"bootstrap.servers": up.kafka, "group.id": f"g-{topic}",
                          "auto.offset.reset": "earliest", "enable.auto.commit": False})
            c.subscribe([topic])
            while not stop.is_set():
                msgs = c.consume(50, timeout=0.5)
                # Error events (e.g. a topic not yet in the metadata) carry
                # no offset: committing on them alone raises _NO_OFFSET.
                if any(m.error() is None for m in msgs):
                    c.commit(asynchronous=False)
                time.sleep(0.3)  # slower than the producer: lag stays above 0
            c.close()

        def guarded(f):
            def run():
                try:
                    f()
                except Exception as e:  # noqa: BLE001 (reported by the fixture)
                    failures.append(f"{f.__name__}: {e!r}")
            return run

        for f in (producer, consumer):
            t = threading.Thread(target=guarded(f), daemon=True)
            t.start()
            threads.append(t)

        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [
                {"job_name": "wharf-broker", "static_configs": [{"targets": [up.info["prometheus_broker"]]}]},
                {"job_name": "wharf-shipper", "static_configs": [{"targets": [up.info["prometheus_shipper"]]}]},
            ],
        }
        (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
        port = free_port()
        prom = subprocess.Popen(
            [exe, f"--config.file={tmp / 'prometheus.yml'}", f"--storage.tsdb.path={tmp / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(prom)
        base = f"http://127.0.0.1:{port}"
        def scalar(expr):
            r = get_json(f"{base}/api/v1/query?query=" + urllib.parse.quote(expr))
            return float(r["data"]["result"][0]["value"][1]) if r["data"]["result"] else 0.0

        # Ready when both targets were scraped 12 times and the group has
        # consumed and committed, so that its lag and the bytes out have
        # series (under a loaded CI machine the group's first join can take
        # longer than 12 scrapes).
        ready = {
            "12 scrapes of each target": "min(count_over_time(up[1m])) >= 12 and count(up == 1) == 2",
            "consumer lag series": 'count(kafka_consumer_group_ConsumerLagMetrics_Value{name="SumOffsetLag"})',
            "bytes out": f'sum(kafka_server_BrokerTopicMetrics_Count{{name="BytesOutPerSec",topic="{topic}"}})',
        }
        deadline = time.monotonic() + 120
        missing = list(ready)
        while missing and time.monotonic() < deadline and not failures:
            try:
                missing = [what for what, expr in ready.items() if scalar(expr) <= 0]
            except OSError:
                pass
            time.sleep(0.2)
        if failures:
            pytest.fail(f"the load stopped: {'; '.join(failures)}")
        if missing:
            pytest.fail(f"within 120 s Prometheus still lacked: {', '.join(missing)}")
        yield {"prometheus": base, "up": up, "topic": topic}
    finally:
        stop.set()
        for t in threads:
            t.join(30)
        for p in procs:
            p.terminate()
            p.wait(timeout=10)
        up.stop()


def query(env, expr):
    expr = expr.replace("$__rate_interval", "5s").replace("$__interval", "1s")
    return get_json(f"{env['prometheus']}/api/v1/query?query=" + urllib.parse.quote(expr))


def test_every_panel_of_every_dashboard_returns_data(env):
    empty, errors = [], []
    exprs = names.dashboard_exprs()
    assert exprs
    for where, expr in exprs:
        r = query(env, expr)
        if r["status"] != "success":
            errors.append(f"{where}: {r}")
        elif not r["data"]["result"]:
            empty.append(f"{where}: `{expr}`")
    assert not errors, "\n".join(errors)
    assert not empty, "panels without data:\n" + "\n".join(empty)


def test_every_alert_rule_evaluates_and_reads_existing_series(env):
    problems = []
    rules = names.rule_exprs()
    assert rules
    for where, expr in rules:
        r = query(env, expr)
        if r["status"] != "success":
            problems.append(f"{where}: {r}")
        for metric, labels in names.selectors(expr):
            sel = metric + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
            if not query(env, sel)["data"]["result"]:
                problems.append(f"{where}: `{sel}` has no series")
    assert not problems, "\n".join(problems)


def test_healthy_cluster_raises_no_health_alert(env):
    import os
    st = os.statvfs(env["up"].dir)
    used = st.f_blocks - st.f_bfree
    disk_pct = 100 * used / (used + st.f_bavail)
    quiet = QUIET if disk_pct < 75 else QUIET - {"WharfDataDiskAlmostFull"}
    for where, expr in names.rule_exprs():
        alert = where.split(": ")[1]
        if alert in quiet:
            assert query(env, expr)["data"]["result"] == [], f"{alert} fires on a healthy cluster"


def test_broker_series_reflect_the_traffic(env):
    topic = env["topic"]
    def value(expr):
        r = query(env, expr)["data"]["result"]
        assert r, f"`{expr}` returned nothing"
        return float(r[0]["value"][1])
    assert value(f'kafka_server_BrokerTopicMetrics_Count{{name="MessagesInPerSec",topic="{topic}"}}') > 0
    assert value(f'kafka_server_BrokerTopicMetrics_Count{{name="BytesOutPerSec",topic="{topic}"}}') > 0
    assert value('kafka_controller_KafkaController_Value{name="ActiveControllerCount"}') == 1
    assert value('kafka_controller_KafkaController_Value{name="OfflinePartitionsCount"}') == 0
    assert value(f'kafka_log_Log_Value{{name="Size",topic="{topic}",partition="0"}}') > 0
    lag = query(env, f'kafka_consumer_group_ConsumerLagMetrics_Value{{groupId="g-{topic}",topic="{topic}"}}')
    assert lag["data"]["result"], "no consumer lag series for the group"
    # The group reads as kcat writes, so what it fetches is recent: served
    # from the tail cache, not read back from the segments.
    assert value('sum(wharf_broker_fetch_batches_total{source="tail_cache"})') > 0
    assert value('sum(wharf_broker_fetch_batches_total{source="segments"})') == 0
    assert value('sum(wharf_broker_fetch_batches_total{source="read_ahead"})') == 0
