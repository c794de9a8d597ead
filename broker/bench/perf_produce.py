#!/usr/bin/env python3
"""Where an encrypted and a plain broker spend their produce CPU: each
broker, fresh and without tail cache, takes --rounds produce rounds of
1 GB of 1 KiB messages (acks=1) under `perf record -g`, in the same
machine state as produce_consume.py (free memory refilled with page
cache, freed pages held from the host; needs root and `perf`). Prints
each round's rate and the broker's MB per CPU-second, then each broker's
top symbols with their sample counts (2000 Hz, so samples / 2000 is CPU
seconds).

    ~/.cache/wharf/test-venv/bin/python broker/bench/perf_produce.py \\
        --broker-bin ~/.cache/wharf-target-release/release/wharf-broker --dir /var/tmp/wharf-perf
"""

import argparse
import subprocess
import time
from pathlib import Path

from bench_support import cpu_ns, cpu_spent
from produce_consume import FreedPagesHeld, Memory, build_loadgen, fresh_broker, loadgen


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--broker-bin", required=True)
    ap.add_argument("--dir", required=True, help="where data and perf files go")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--top", type=int, default=15, help="symbols shown per broker")
    args = ap.parse_args()
    base = Path(args.dir)
    base.mkdir(parents=True, exist_ok=True)
    exe = build_loadgen(base)
    held, memory = FreedPagesHeld(True), Memory(base, True)
    try:
        memory.refill()
        for enc in ["local", "none"]:
            data = base / f"perf-{enc}.data"
            with fresh_broker(args.broker_bin, base, enc, "tail_cache_bytes = 0\n", memory) as b:
                perf = subprocess.Popen(["perf", "record", "-F", "2000", "-g", "-o", str(data),
                                         "-p", str(b.proc.pid)], stderr=subprocess.DEVNULL)
                time.sleep(0.5)  # perf attached
                for r in range(args.rounds):
                    before = cpu_ns(b.proc.pid)
                    p = loadgen(exe, "produce", b.bootstrap, f"t{r}", args.messages, 1024, "1")
                    spent, _ = cpu_spent(before, cpu_ns(b.proc.pid))
                    print(f"{enc} round {r}: {p['mb_per_s']:.0f} MB/s, broker "
                          f"{args.messages * 1024 / 1e6 / spent:.0f} MB per CPU-s", flush=True)
                perf.send_signal(2)
                perf.wait()
        for enc in ["local", "none"]:
            report = subprocess.run(
                ["perf", "report", "-i", str(base / f"perf-{enc}.data"), "--no-children",
                 "--sort", "symbol", "-g", "none", "-n", "--stdio"],
                check=True, capture_output=True, text=True).stdout
            rows = [line for line in report.splitlines() if "%" in line and not line.startswith("#")]
            print(f"\n{enc}:")
            print("\n".join(" ".join(line.split()[:4]) for line in rows[:args.top]))
    finally:
        memory.close()
        held.close()


if __name__ == "__main__":
    main()
