#!/usr/bin/env python3
"""Throughput and latency of wharf-broker driven by librdkafka (confluent-kafka),
beside the raw sequential write bandwidth of the same disk, in one run.

    cargo build --release -p wharf-broker
    ~/.cache/wharf/test-venv/bin/python broker/bench/produce_consume.py \
        --broker-bin $CARGO_TARGET_DIR/release/wharf-broker [--messages 200000]

Prints a Markdown table: per message size, acks and encryption: produce
MB/s and msgs/s, p50/p99 produce latency (produce() to delivery report),
consume MB/s and msgs/s.
"""

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from test_broker_harness import Broker  # noqa: E402


def dd_write_mb_s(directory: Path, mib: int = 1024) -> float:
    target = directory / "dd.bin"
    t0 = time.perf_counter()
    subprocess.run(["dd", "if=/dev/zero", f"of={target}", "bs=1M", f"count={mib}", "conv=fdatasync"],
                   check=True, capture_output=True)
    secs = time.perf_counter() - t0
    target.unlink()
    return mib * 1.048576 / secs


def produce(bootstrap, topic, n, size, acks, linger_ms=5, batch_size=1 << 20):
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


def consume(bootstrap, topic, n, size):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench", "enable.auto.commit": False,
                  "fetch.max.bytes": 50 << 20, "max.partition.fetch.bytes": 10 << 20})
    c.assign([TopicPartition(topic, 0, 0)])
    got = 0
    t0 = time.perf_counter()
    while got < n:
        for m in c.consume(min(10000, n - got), timeout=1.0):
            if not m.error():
                got += 1
    secs = time.perf_counter() - t0
    c.close()
    return n / secs, n * size / secs / 1e6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--broker-bin", required=True)
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--dir", default=None, help="where data goes (default: a temp dir)")
    args = ap.parse_args()
    base = Path(args.dir or tempfile.mkdtemp(prefix="wharf-bench-"))
    print(f"host: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, data in {base}")
    print(f"raw sequential write (dd bs=1M conv=fdatasync, 1 GiB): {dd_write_mb_s(base):.0f} MB/s\n")
    print("| msg size | acks | encryption | produce MB/s | produce msgs/s | p50 ms | p99 ms | consume MB/s | consume msgs/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for enc in ["local", "none"]:
        work = base / f"enc-{enc}"
        work.mkdir(exist_ok=True)
        b = Broker(args.broker_bin, work, f'encryption = "{enc}"\n').start()
        try:
            for size in [100, 1024]:
                for acks in ["1", "all"]:
                    topic = f"bench-{size}-{acks}"
                    n = args.messages if size == 100 else args.messages // 4
                    pm, pmb, p50, p99 = produce(b.bootstrap, topic, n, size, acks)
                    cm, cmb = consume(b.bootstrap, topic, n, size)
                    print(f"| {size} B | {acks} | {enc} | {pmb:.1f} | {pm:,.0f} | {p50:.1f} | {p99:.1f} "
                          f"| {cmb:.1f} | {cm:,.0f} |", flush=True)
        finally:
            b.stop()


if __name__ == "__main__":
    main()
