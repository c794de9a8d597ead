#!/usr/bin/env python3
"""wharf-broker's produce cost with telemetry off beside telemetry on
(shipper attached over its socket, Prometheus scraping the broker and the
shipper every second), in one run.

    cargo build --release -p wharf-broker -p wharf-shipper
    ~/.cache/wharf/test-venv/bin/python broker/bench/telemetry_overhead.py \
        --bin-dir $CARGO_TARGET_DIR/release [--rounds 10] [--bursts 8] [--messages 250000]

A shared machine drifts by far more than 3% within minutes, so both sides
run at once and take turns at a fine grain: each round starts a fresh
broker without telemetry and a fresh one with it (plus its shipper and
Prometheus), both pinned to the same CPU (the client and the sidecars on
the other), then sends bursts of 100-byte messages to each in turn (off
on, on off, ..., the order flipped every burst and every round). Two
figures per side and round:

- produce throughput (librdkafka, 100-byte messages in 128 KiB batches,
  acks=1, one partition; the median burst): wall clock, so it moves with
  everything else on the machine;
- the broker's CPU time per MB produced to it, over the whole interleaved
  window (every thread, telemetry's included, so the telemetry side's
  background work during the other side's bursts counts against it; read
  from /proc/PID/task/*/schedstat in ns, the time utime + stime of
  /proc/PID/stat count in 10 ms ticks): what telemetry costs the broker,
  much less sensitive to other load. "sidecars" is the same for the
  shipper and Prometheus together.

Prints per side the median over rounds, the interquartile range and
min-max, then the difference on vs off: the median of the per-round
differences, its IQR and a bootstrap 95% interval of that median.
"""

import argparse
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from confluent_kafka import Producer  # noqa: E402
from bench_support import cpu_ns, cpu_spent  # noqa: E402
from shipper_support import Shipper  # noqa: E402
from test_broker_harness import Broker  # noqa: E402

SIZE = 100
# Batches fill up by size long before the linger ends, so every run sends
# the broker the same requests (about 800 per 100 MB) and its CPU per MB
# does not move with how the client happened to batch.
BATCH_BYTES = 128 * 1024
LINGER_MS = 100
SETTLE_SECONDS = 3  # the same on both sides: Prometheus' start-up is over by then


def produce(bootstrap, topic, n, size, acks, linger_ms=5, batch_size=1 << 20):
    """Produces `n` messages with confluent-kafka; returns msgs/s, MB/s and
    p50/p99 latency (ms) from produce() to the delivery report."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": acks, "linger.ms": linger_ms,
                  "batch.size": batch_size, "queue.buffering.max.messages": 1_000_000,
                  "enable.idempotence": acks == "all"})
    payload = os.urandom(size)
    lat = []

    def report(err, msg, t=None):
        if err is not None:
            raise RuntimeError(err)

    t0 = time.perf_counter()
    for _ in range(n):
        start = time.perf_counter()
        while True:
            try:
                p.produce(topic, value=payload, partition=0,
                          on_delivery=lambda err, msg, s=start: (report(err, msg), lat.append(time.perf_counter() - s)))
                break
            except BufferError:
                p.poll(0.01)
        p.poll(0)
    p.flush(120)
    secs = time.perf_counter() - t0
    lat.sort()
    return n / secs, n * size / secs / 1e6, lat[len(lat) // 2] * 1e3, lat[int(len(lat) * 0.99)] * 1e3


def burst(broker: Broker, n: int) -> dict:
    """Produces n messages to `broker`: throughput and latency."""
    msgs, mb, p50, p99 = produce(broker.bootstrap, "bench", n, SIZE, "1",
                                 linger_ms=LINGER_MS, batch_size=BATCH_BYTES)
    return {"msgs/s": msgs, "MB/s": mb, "p50 ms": p50, "p99 ms": p99}


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


BROKER_CPUS = {1}  # the broker alone here; the client and the sidecars on the rest
CLIENT_CPUS = set(range(os.cpu_count() or 1)) - BROKER_CPUS or BROKER_CPUS


def start_broker(b: Broker) -> Broker:
    """Starts `b` on BROKER_CPUS (inherited from this process), then puts
    this process (the client) back on CLIENT_CPUS."""
    os.sched_setaffinity(0, BROKER_CPUS)
    try:
        return b.start()
    finally:
        os.sched_setaffinity(0, CLIENT_CPUS)


def start_off(bin_dir: Path, d: Path) -> Broker:
    (d / "off").mkdir()
    return start_broker(Broker(str(bin_dir / "wharf-broker"), d / "off", 'flush = "never"\n'))


def start_on(bin_dir: Path, d: Path, stack: list) -> Broker:
    """Shipper, broker with telemetry, Prometheus scraping both; each is
    appended to `stack` as soon as it runs (for stopping)."""
    sh = Shipper(str(bin_dir / "wharf-shipper"), d, shipper_config(d)).start()
    stack.append(sh)
    (d / "on").mkdir()
    b = Broker(str(bin_dir / "wharf-broker"), d / "on", f"""flush = "never"
[telemetry]
socket = "{d}/s.sock"
spool_dir = "{d}/spool"
prometheus_address = "127.0.0.1:0"
snapshot_period_seconds = 5
monitoring_level = "PER_TOPIC_PER_PARTITION"
""")
    start_broker(b)
    stack.append(b)
    stack.append(prometheus(d, [prometheus_addr(b), sh.api]))
    return b


def stop(thing):
    if isinstance(thing, subprocess.Popen):
        thing.terminate()
        thing.wait(10)
    else:
        thing.stop()


def run_round(bin_dir: Path, d: Path, i: int, n: int, bursts: int) -> dict:
    """Both sides at once: a broker without telemetry and one with it (and
    its shipper and Prometheus), then `bursts` bursts of n messages to
    each, alternating (the order flipped every burst and every round).
    Per side: the median burst, and the broker's CPU over the whole
    interleaved window per MB sent to it, so the telemetry side's
    background work (snapshots, scrapes, shipping) while the other side
    produced counts against it too."""
    stack = []
    try:
        stack.append(start_off(bin_dir, d))
        on = start_on(bin_dir, d, stack)
        brokers = {"off": stack[0], "on": on}
        sidecars = [p.proc if isinstance(p, Shipper) else p for p in stack
                    if isinstance(p, (Shipper, subprocess.Popen))]
        time.sleep(SETTLE_SECONDS)
        before = {s: cpu_ns(b.proc.pid) for s, b in brokers.items()}
        side_before = [cpu_ns(p.pid) for p in sidecars]
        results = {"off": [], "on": []}
        for j in range(bursts):
            for side in (("off", "on") if (i + j) % 2 == 0 else ("on", "off")):
                results[side].append(burst(brokers[side], n))
        after = {s: cpu_ns(b.proc.pid) for s, b in brokers.items()}
        side_after = [cpu_ns(p.pid) for p in sidecars]
    finally:
        for thing in reversed(stack):
            stop(thing)
    mb = n * bursts * SIZE / 1e6
    out = {}
    for side, rs in results.items():
        spent, ended = cpu_spent(before[side], after[side])
        out[side] = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
        out[side]["broker CPU ms/MB"] = spent * 1e3 / mb
        out[side]["threads ended"] = ended
        out[side]["sidecar CPU ms/MB"] = 0.0
    out["on"]["sidecar CPU ms/MB"] = sum(cpu_spent(b, a)[0] for b, a in zip(side_before, side_after)) * 1e3 / mb
    return out


def quartiles(xs: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(xs, n=4, method="inclusive") if len(xs) > 1 else [xs[0]] * 3
    return q[0], statistics.median(xs), q[2]


def bootstrap_median(xs: list[float], rounds: int = 10_000) -> tuple[float, float]:
    """95% bootstrap interval of the median of xs."""
    rng = random.Random(1)
    meds = sorted(statistics.median(rng.choices(xs, k=len(xs))) for _ in range(rounds))
    return meds[int(0.025 * rounds)], meds[int(0.975 * rounds) - 1]


def fmt(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--messages", type=int, default=250_000, help="per burst")
    ap.add_argument("--bursts", type=int, default=8, help="per side and round")
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()
    bin_dir = Path(args.bin_dir)
    os.sched_setaffinity(0, CLIENT_CPUS)
    base = Path(tempfile.mkdtemp(prefix="wharf-telemetry-bench-"))
    load = os.getloadavg()
    print(f"host: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, load average "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {args.rounds} rounds of {args.bursts} bursts "
          f"per side, {args.messages:,} x {SIZE} B per burst, acks=1, {BATCH_BYTES // 1024} KiB batches, "
          f"flush=never; broker CPUs {sorted(BROKER_CPUS)}, client and sidecars {sorted(CLIENT_CPUS)}\n", flush=True)
    runs = {"off": [], "on": []}
    try:
        for i in range(args.rounds):
            d = base / f"round-{i}"
            d.mkdir()
            r = run_round(bin_dir, d, i, args.messages, args.bursts)
            shutil.rmtree(d, ignore_errors=True)
            for side in ("off", "on"):
                x = r[side]
                runs[side].append(x)
                print(f"round {i + 1} telemetry {side:3}: {x['msgs/s']:,.0f} msgs/s {x['MB/s']:.1f} MB/s "
                      f"p50 {x['p50 ms']:.1f} ms p99 {x['p99 ms']:.1f} ms (median burst), broker CPU "
                      f"{x['broker CPU ms/MB']:.3f} ms/MB, sidecars {x['sidecar CPU ms/MB']:.3f} ms/MB"
                      + (f" ({x['threads ended']} threads ended: their last part is not counted)"
                         if x["threads ended"] else ""),
                      flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)

    keys = ["msgs/s", "MB/s", "p50 ms", "p99 ms", "broker CPU ms/MB", "sidecar CPU ms/MB"]
    print("\n| measure | telemetry off: median (IQR; min-max) | telemetry on: median (IQR; min-max) |")
    print("|---|---|---|")
    for k in keys:
        cells = []
        for side in ("off", "on"):
            xs = [r[k] for r in runs[side]]
            lo, med, hi = quartiles(xs)
            cells.append(f"{fmt(med)} ({fmt(lo)}-{fmt(hi)}; {fmt(min(xs))}-{fmt(max(xs))})")
        print(f"| {k} | {cells[0]} | {cells[1]} |")

    print("\n| on vs off, per round | median | IQR | bootstrap 95% interval of the median |")
    print("|---|---|---|---|")
    for k in ("msgs/s", "broker CPU ms/MB"):
        diffs = [(on[k] - off[k]) / off[k] * 100 for off, on in zip(runs["off"], runs["on"])]
        lo, med, hi = quartiles(diffs)
        c_lo, c_hi = bootstrap_median(diffs)
        print(f"| {k} | {med:+.1f}% | {lo:+.1f}% to {hi:+.1f}% | {c_lo:+.1f}% to {c_hi:+.1f}% |")


if __name__ == "__main__":
    main()
