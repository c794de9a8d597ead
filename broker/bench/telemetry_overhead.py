#!/usr/bin/env python3
"""wharf-broker's produce throughput with telemetry off beside telemetry on
(shipper attached over its socket, Prometheus scraping the broker and the
shipper every second), in one run, alternating rounds so that drift of the
machine hits both sides alike.

    cargo build --release -p wharf-broker -p wharf-shipper
    ~/.cache/wharf/test-venv/bin/python broker/bench/telemetry_overhead.py \
        --bin-dir $CARGO_TARGET_DIR/release [--messages 200000] [--rounds 3]

Prints a Markdown table: per side, the median over rounds of produce MB/s,
msgs/s and p50/p99 latency (librdkafka, 100-byte messages, acks=1), and the
difference of the medians.
"""

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from produce_consume import produce  # noqa: E402
from shipper_support import Shipper  # noqa: E402
from test_broker_harness import Broker  # noqa: E402


def shipper_config(d: Path) -> str:
    return f"""
data_dir = "{d}/shipper"
[api]
address = "127.0.0.1:0"
[key]
provider = "local"
path = "{d}/master.key"
[sources.broker]
type = "socket"
path = "{d}/s.sock"
[sinks.local]
type = "file"
inputs = ["broker"]
directory = "{d}/objects"
[sinks.local.batch]
max_age = "1s"
"""


def prometheus(d: Path, targets: list[str]):
    exe = shutil.which("prometheus")
    if not exe:
        sys.exit("prometheus is not installed (apt-get install prometheus)")
    jobs = "\n".join(f"  - job_name: t{i}\n    static_configs:\n      - targets: ['{t}']"
                     for i, t in enumerate(targets))
    (d / "prometheus.yml").write_text(f"global:\n  scrape_interval: 1s\nscrape_configs:\n{jobs}\n")
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return subprocess.Popen([exe, f"--config.file={d / 'prometheus.yml'}", f"--storage.tsdb.path={d / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def prometheus_addr(broker: Broker) -> str:
    import json
    for line in broker.log_path.read_text().splitlines():
        try:
            f = json.loads(line).get("fields", {})
        except ValueError:
            continue
        if f.get("message") == "telemetry started":
            return f["prometheus"]
    raise RuntimeError("the broker did not report its Prometheus address")


def round_off(bin_dir: Path, d: Path, n: int):
    b = Broker(str(bin_dir / "wharf-broker"), d, 'flush = "never"\n').start()
    try:
        time.sleep(2)  # the same settling time as the telemetry-on side
        return produce(b.bootstrap, "bench", n, 100, "1")
    finally:
        b.stop()


def round_on(bin_dir: Path, d: Path, n: int):
    sh = Shipper(str(bin_dir / "wharf-shipper"), d, shipper_config(d)).start()
    (d / "broker").mkdir()
    b = Broker(str(bin_dir / "wharf-broker"), d / "broker", f"""flush = "never"
[telemetry]
socket = "{d}/s.sock"
spool_dir = "{d}/spool"
prometheus_address = "127.0.0.1:0"
snapshot_period_seconds = 5
monitoring_level = "PER_TOPIC_PER_PARTITION"
""")
    b.start()
    prom = prometheus(d, [prometheus_addr(b), sh.api])
    try:
        time.sleep(2)
        return produce(b.bootstrap, "bench", n, 100, "1")
    finally:
        prom.terminate()
        prom.wait(10)
        b.stop()
        sh.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    bin_dir = Path(args.bin_dir)
    base = Path(tempfile.mkdtemp(prefix="wharf-telemetry-bench-"))
    print(f"host: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs; "
          f"{args.messages:,} x 100 B, acks=1, flush=never, {args.rounds} rounds per side\n")
    results = {"off": [], "on": []}
    for r in range(args.rounds):
        for side in ("off", "on"):
            d = base / f"{side}-{r}"
            d.mkdir()
            f = round_off if side == "off" else round_on
            results[side].append(f(bin_dir, d, args.messages))
            msgs, mb, p50, p99 = results[side][-1]
            print(f"round {r + 1} telemetry {side}: {msgs:,.0f} msgs/s {mb:.1f} MB/s p50 {p50:.1f} ms p99 {p99:.1f} ms",
                  flush=True)
    med = {s: [statistics.median(x[i] for x in v) for i in range(4)] for s, v in results.items()}
    print("\n| telemetry | produce msgs/s | produce MB/s | p50 ms | p99 ms |")
    print("|---|---|---|---|---|")
    for s in ("off", "on"):
        m = med[s]
        print(f"| {s} | {m[0]:,.0f} | {m[1]:.1f} | {m[2]:.1f} | {m[3]:.1f} |")
    diff = (med["on"][0] - med["off"][0]) / med["off"][0] * 100
    print(f"\nthroughput difference (on vs off, medians): {diff:+.1f}%")
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
