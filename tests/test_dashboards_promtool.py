"""The alert rules pass `promtool check rules` and their unit tests
(`promtool test rules`), and the example Prometheus configuration is valid.
Needs promtool (Debian package prometheus; scripts/test-all.sh installs it).
"""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DASH = ROOT / "dashboards"


def promtool(*args):
    exe = shutil.which("promtool")
    if not exe:
        pytest.fail("promtool is not installed: `apt-get install prometheus`, or run scripts/test-all.sh")
    return subprocess.run([exe, *args], capture_output=True, text=True, cwd=DASH)


@pytest.mark.parametrize("rules", sorted(p.name for p in (DASH / "prometheus" / "rules").glob("*.yml")))
def test_promtool_check_rules(rules):
    r = promtool("check", "rules", f"prometheus/rules/{rules}")
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_alert_has_a_unit_test():
    import yaml

    alerts = {rule["alert"]
              for p in (DASH / "prometheus" / "rules").glob("*.yml")
              for g in yaml.safe_load(p.read_text())["groups"] for rule in g["rules"] if "alert" in rule}
    tested = {t["alertname"]
              for p in (DASH / "tests").glob("*.test.yml")
              for case in yaml.safe_load(p.read_text())["tests"] for t in case.get("alert_rule_test", [])}
    assert alerts - tested == set(), f"alerts without a promtool test: {sorted(alerts - tested)}"
    for needed in ["WharfBrokerDown", "WharfOfflinePartitions", "WharfConsumerLagGrowing",
                   "WharfDataDiskAlmostFull", "WharfTelemetryDropping", "WharfShipperBufferAgeHigh",
                   "WharfShipperDeadLetters"]:
        assert needed in alerts, needed


@pytest.mark.parametrize("tests", sorted(p.name for p in (DASH / "tests").glob("*.test.yml")))
def test_promtool_test_rules(tests):
    r = promtool("test", "rules", f"tests/{tests}")
    assert r.returncode == 0, r.stdout + r.stderr


def test_promtool_test_rules_fails_when_an_expectation_is_wrong(tmp_path):
    src = (DASH / "tests" / "wharf-broker.test.yml").read_text()
    broken = src.replace("summary: \"3 partitions are offline\"", "summary: \"4 partitions are offline\"")
    assert broken != src
    path = DASH / "tests" / f".broken-{tmp_path.name}.test.yml"
    path.write_text(broken)
    try:
        r = promtool("test", "rules", f"tests/{path.name}")
    finally:
        path.unlink()
    assert r.returncode != 0


def test_promtool_check_config():
    r = promtool("check", "config", "prometheus/prometheus.yml")
    assert r.returncode == 0, r.stdout + r.stderr
