#!/usr/bin/env python3
"""Throughput and latency of wharf-broker driven by librdkafka (loadgen.c,
built here with gcc against Debian's librdkafka-dev), beside the raw
sequential write bandwidth of the same disk, in one run.

    cargo build --release -p wharf-broker
    ~/.cache/wharf/test-venv/bin/python broker/bench/produce_consume.py \
        --broker-bin $CARGO_TARGET_DIR/release/wharf-broker [--messages 1000000] [--rounds 3]

Prints a Markdown table: per message size, acks and encryption: produce
MB/s and msgs/s, p50/p99 produce latency (produce() to delivery report),
the broker's own CPU time per MB produced (per-thread schedstat; steadier
than wall-clock rates on a shared machine), the cores the broker and the
load generator kept busy while producing (which of them sets the pace on
a 2-core machine), consume MB/s and msgs/s of a
catch-up read from the segments (brokers without tail cache) and the
broker's CPU per MB it served, each the
median of --rounds runs; then a tail table: a consumer reading while the
producer writes, on brokers with the default tail cache.

Every round starts each broker afresh on an empty data directory, and
deletes both after it. Before measuring, and again after each such
deletion (and each dd file's), the machine's free memory is filled with
clean page cache by reading holes of a sparse file (see `Memory`;
--no-warm skips it), so every round writes into recycled pages, as a broker that has run for a
while does, and the run needs little disk. Rounds of 1 KiB messages move
1 GB each (--messages): the 256 MB rounds used before were over in a
quarter of a second and differed by up to 2x round to round.

After the tables: the targets row by row: encryption's cost as the median
of per-round ratios (the brokers take turns within a round) with a
bootstrap 90% interval for it, and encrypted acks=1 produce against dd's
median.
"""

import argparse
import contextlib
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_support import cpu_ns, cpu_spent  # noqa: E402
from test_broker_harness import Broker  # noqa: E402


def dd_write_mb_s(directory: Path, memory: "Memory", mib: int = 1024) -> float:
    target = directory / "dd.bin"
    t0 = time.perf_counter()
    subprocess.run(["dd", "if=/dev/zero", f"of={target}", "bs=1M", f"count={mib}", "conv=fdatasync"],
                   check=True, capture_output=True)
    secs = time.perf_counter() - t0
    target.unlink()
    memory.refill()
    return mib * 1.048576 / secs


class Memory:
    """Keeps the machine's free memory filled with clean page cache, so
    that what the brokers and dd write lands in recycled pages, as on a
    machine that has run for a while, whatever was deleted before.

    On a VM, a page the guest never touched, or freed (this kind of VM
    reports freed pages to the host at once, and the host takes them
    back), costs a host fault on its next first write: page-cache writes
    into such pages ran at ~430 MB/s, into recycled ones at 2.6-4.6 GB/s.
    The filler is a sparse file: reading its holes puts zero pages in the
    page cache without writing the disk, so every round's data can be
    deleted after it and the run needs little disk."""

    HEADROOM_MIB = 512

    def __init__(self, directory: Path, enabled: bool):
        self.path = directory / "filler.sparse"
        self.enabled = enabled
        self.offset = 0
        self.size = 0
        self.buf = bytearray(1 << 20)

    def refill(self) -> int:
        """Reads fresh holes of the filler until free memory is down to
        the headroom; returns the MiB put in the page cache."""
        if not self.enabled:
            return 0
        meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
        want = int(meminfo["MemFree"].split()[0]) // 1024 - self.HEADROOM_MIB
        if want <= 0:
            return 0
        need = self.offset + (want << 20)
        if need > self.size:
            self.size = max(need, 2 * self.size)
            with self.path.open("ab") as f:
                f.truncate(self.size)  # holes: no disk written
        with self.path.open("rb", buffering=0) as f:
            f.seek(self.offset)
            for _ in range(want):
                f.readinto(self.buf)
        self.offset += want << 20
        return want

    def close(self):
        self.path.unlink(missing_ok=True)


PAGE_REPORTING_DELAY = Path("/sys/module/page_reporting/parameters/min_free_ms")


class FreedPagesHeld:
    """While the run lasts, pages the guest frees stay its own for five
    minutes before they are reported to the host. This VM kind's kernel
    reports a freed page at once (min_free_ms = 0), and the host then
    takes it back, so that its next first write costs a host fault; the
    bench deletes a gigabyte every few seconds, which no broker does, and
    which otherwise decided at random which rounds ran on such pages. The
    setting is put back at the end. Needs root; a kernel without the
    parameter has nothing to hold."""

    def __init__(self, enabled: bool):
        self.before = None
        if not enabled or not PAGE_REPORTING_DELAY.exists():
            return
        try:
            before = PAGE_REPORTING_DELAY.read_text().strip()
            PAGE_REPORTING_DELAY.write_text("300000")
            self.before = before
            print(f"freed pages: reported to the host after 300000 ms for this run "
                  f"(was {before}; --leave-page-reporting keeps it)")
        except OSError as e:
            print(f"freed pages: could not hold them from the host ({e}); rounds spread more")

    def close(self):
        if self.before is not None:
            PAGE_REPORTING_DELAY.write_text(self.before)


def build_loadgen(out_dir: Path) -> Path:
    """Compiles loadgen.c (librdkafka from C: the Python client would be
    the bottleneck on a small machine) into `out_dir`."""
    src = Path(__file__).with_name("loadgen.c")
    exe = out_dir / "loadgen"
    try:
        subprocess.run(["gcc", "-O2", "-o", str(exe), str(src), "-lrdkafka"], check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        sys.exit(f"building {src} failed ({e}); it needs gcc and librdkafka-dev "
                 "(apt-get install librdkafka-dev)")
    return exe


def loadgen(exe: Path, *args) -> dict:
    """Runs the load generator; its JSON result, plus `client_cores`: the
    CPU it used over the wall time it ran (2.0 = both cores of this VM)."""
    before, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    out = subprocess.run([str(exe), *map(str, args)], check=True, capture_output=True, text=True)
    after, wall = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter() - t0
    result = json.loads(out.stdout)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result["client_cores"] = cpu / wall
    return result


def loadgen_version(exe: Path) -> str:
    return subprocess.run([str(exe), "version"], check=True, capture_output=True,
                          text=True).stdout.strip()


@contextlib.contextmanager
def fresh_broker(broker_bin: str, base: Path, enc: str, config: str, memory: Memory):
    """A broker process of its own for one round, on an empty data
    directory that is deleted after it, and free memory refilled after
    that. A broker kept for the whole run carried whatever its process
    started with (where its heap and files landed) into every round, so
    its rounds were not independent: medians of the same row moved by
    more from run to run than the spread of single rounds allowed."""
    work = base / f"enc-{enc}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    b = Broker(broker_bin, work, f'encryption = "{enc}"\n{config}').start()
    try:
        yield b
    finally:
        b.stop()
        shutil.rmtree(work / "data", ignore_errors=True)
        memory.refill()


def median(rows, key):
    return statistics.median(r[key] for r in rows)


def tail_round(exe: Path, b, topic: str, n: int, size: int) -> dict:
    """A consumer reading from offset 0 while the producer writes (acks=1):
    it stays at the tail, as most consumers do. Returns the producer's
    rates and the broker's CPU per MB moved (produced plus consumed)."""
    before = cpu_ns(b.proc.pid)
    producer = subprocess.Popen([str(exe), "produce", b.bootstrap, topic, str(n), str(size), "1"],
                                stdout=subprocess.PIPE, text=True)
    time.sleep(0.2)  # the topic exists once the producer's first batch lands
    consumed = loadgen(exe, "consume", b.bootstrap, topic, n)
    out, _ = producer.communicate()
    if producer.returncode != 0:
        sys.exit(f"loadgen produce failed (exit {producer.returncode})")
    spent, _ = cpu_spent(before, cpu_ns(b.proc.pid))
    prod = json.loads(out)
    prod["consume_mb_per_s"] = consumed["mb_per_s"]
    prod["broker_mb_per_cpu_s"] = 2 * n * size / 1e6 / spent
    return prod


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--broker-bin", required=True)
    ap.add_argument("--messages", type=int, default=1_000_000,
                    help="messages per run")
    ap.add_argument("--rounds", type=int, default=3, help="runs per row; the table shows medians")
    ap.add_argument("--dir", default=None, help="where data goes (default: a temp dir)")
    ap.add_argument("--sizes", default="100,1024", help="message sizes of the catch-up rows")
    ap.add_argument("--acks", default="1,all", help="acks settings of the catch-up rows")
    ap.add_argument("--tail-only", action="store_true", help="only the tail table")
    ap.add_argument("--no-tail", action="store_true", help="no tail table")
    ap.add_argument("--leave-page-reporting", action="store_true",
                    help="leave the kernel's free page reporting delay as it is (see FreedPagesHeld)")
    ap.add_argument("--no-warm", action="store_true",
                    help="measure without first filling free memory with page cache")
    args = ap.parse_args()
    base = Path(args.dir or tempfile.mkdtemp(prefix="wharf-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    exe = build_loadgen(base)
    print(f"host: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, data in {base}")
    held = FreedPagesHeld(not args.leave_page_reporting)
    memory = Memory(base, not args.no_warm)
    try:
        t0 = time.perf_counter()
        mib = memory.refill()
        if mib:
            print(f"warm-up: filled {mib} MiB of free memory with page cache in "
                  f"{time.perf_counter() - t0:.0f} s, and again after every deletion "
                  "(--no-warm skips this)")
        dd = [dd_write_mb_s(base, memory) for _ in range(args.rounds)]
        print(f"raw sequential write (dd bs=1M conv=fdatasync, 1 GiB), {args.rounds} runs: "
              f"median {statistics.median(dd):.0f} MB/s ({', '.join(f'{x:.0f}' for x in dd)})")
        run(args, base, exe, memory, statistics.median(dd))
    finally:
        memory.close()
        held.close()


def run(args, base: Path, exe: Path, memory: Memory, dd_mb_s: float):
    print(f"load: broker/bench/loadgen.c (librdkafka {loadgen_version(exe)}); every round "
          f"starts both brokers afresh, which then take turns; median of {args.rounds} "
          "rounds per row\n")
    encs = ["local", "none"]
    rows, tail, counts = {}, {}, {}
    n = args.messages
    sizes = [] if args.tail_only else [int(x) for x in args.sizes.split(",")]
    for size in sizes:
        for acks in args.acks.split(","):
            for r in range(args.rounds):
                # Alternate which side goes first, so drift hits both alike.
                for enc in encs if r % 2 == 0 else encs[::-1]:
                    # Catch-up rows read what was written before, from the
                    # segments: their brokers keep no tail cache.
                    with fresh_broker(args.broker_bin, base, enc, "tail_cache_bytes = 0\n", memory) as b:
                        topic = f"bench-{size}-{acks}"
                        before = cpu_ns(b.proc.pid)
                        prod = loadgen(exe, "produce", b.bootstrap, topic, n, size, acks)
                        spent, _ = cpu_spent(before, cpu_ns(b.proc.pid))
                        prod["broker_mb_per_cpu_s"] = n * size / 1e6 / spent
                        prod["broker_cores"] = prod["mb_per_s"] / prod["broker_mb_per_cpu_s"]
                        before = cpu_ns(b.proc.pid)
                        cons = loadgen(exe, "consume", b.bootstrap, topic, n)
                        spent, _ = cpu_spent(before, cpu_ns(b.proc.pid))
                        cons["broker_mb_per_cpu_s"] = n * size / 1e6 / spent
                    rows.setdefault((size, acks, enc), []).append((prod, cons))
    # Tail rounds at 1 KiB, 1 GB at the default --messages: long enough for
    # the consumer's start-up not to count. Default tail cache.
    for r in range(0 if args.no_tail else args.rounds):
        for enc in encs if r % 2 == 0 else encs[::-1]:
            with fresh_broker(args.broker_bin, base, enc, "", memory) as b:
                tail.setdefault(enc, []).append(tail_round(exe, b, "tail", n, 1024))
            add_tail_cache_counts(counts.setdefault(enc, {}), b)

    print("Catch-up: produce, then consume from offset 0 (read from the segments, no tail cache)\n")
    print("| msg size | acks | encryption | produce MB/s | produce msgs/s | p50 ms | p99 ms "
          "| broker MB per CPU-s | broker cores | client cores | consume MB/s | consume msgs/s "
          "| consume MB per broker CPU-s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for (size, acks, enc), runs in rows.items():
        prod = [p for p, _ in runs]
        cons = [c for _, c in runs]
        print(f"| {size} B | {acks} | {enc} | {median(prod, 'mb_per_s'):.1f} "
              f"| {median(prod, 'msgs_per_s'):,.0f} | {median(prod, 'p50_ms'):.1f} "
              f"| {median(prod, 'p99_ms'):.1f} | {median(prod, 'broker_mb_per_cpu_s'):.0f} "
              f"| {median(prod, 'broker_cores'):.2f} | {median(prod, 'client_cores'):.2f} "
              f"| {median(cons, 'mb_per_s'):.1f} | {median(cons, 'msgs_per_s'):,.0f} "
              f"| {median(cons, 'broker_mb_per_cpu_s'):.0f} |")
    if tail:
        print_tail(tail, counts)
    print_targets(rows, tail, dd_mb_s)


def print_tail(tail: dict, counts: dict):
    print("\nTail: a consumer from offset 0 while 1 KiB messages are produced with acks=1 "
          "(default tail cache)\n")
    print("| encryption | produce MB/s | p99 ms | consume MB/s | broker MB (in + out) per CPU-s |")
    print("|---|---|---|---|---|")
    for enc, runs in tail.items():
        print(f"| {enc} | {median(runs, 'mb_per_s'):.1f} | {median(runs, 'p99_ms'):.1f} "
              f"| {median(runs, 'consume_mb_per_s'):.1f} | {median(runs, 'broker_mb_per_cpu_s'):.0f} |")
    for enc, c in counts.items():
        print(f"\n{enc}: {c.get('tail_cache_hits', 0)} fetched batches from the tail cache, "
              f"{c.get('tail_cache_misses', 0)} from the segments, "
              f"{c.get('read_ahead', 0)} read ahead", end="")
    print()


def print_targets(rows: dict, tail: dict, dd_mb_s: float):
    """The issue's two targets, row by row: encryption's cost and acks=1
    produce against dd. The two brokers take turns within a round, so a
    round's ratio compares them under the same machine state; its median
    over rounds is the cost, with a bootstrap 90% interval for that median
    (how far it could move on another run of as many rounds), and the
    ratio of the two medians of the table."""
    pairs = []
    for (size, acks, enc), runs in rows.items():
        if enc == "local" and (size, acks, "none") in rows:
            plain = rows[size, acks, "none"]
            for i, what in [(0, "produce"), (1, "consume")]:
                pairs.append((f"{size} B acks={acks} {what}",
                              [r[i]["mb_per_s"] for r in runs], [r[i]["mb_per_s"] for r in plain]))
    if "local" in tail and "none" in tail:
        for key, what in [("mb_per_s", "produce"), ("consume_mb_per_s", "consume")]:
            pairs.append((f"tail 1024 B acks=1 {what}",
                          [r[key] for r in tail["local"]], [r[key] for r in tail["none"]]))
    if not pairs:
        return
    print("\nAgainst the targets (cost = 1 - encrypted / plain; per round, then the median "
          "with its 90% bootstrap interval; then from the table's medians)\n")
    for label, ours, theirs in pairs:
        per_round = [1 - a / b for a, b in zip(ours, theirs)]
        low, high = median_interval(per_round)
        print(f"- {label}: encryption costs {statistics.median(per_round):.1%} "
              f"({low:.1%} to {high:.1%}; "
              f"{1 - statistics.median(ours) / statistics.median(theirs):.1%}); "
              f"rounds: {', '.join(f'{c:.0%}' for c in per_round)}")
    for (size, acks, enc), runs in rows.items():
        if enc == "local" and acks == "1":
            ours = [r[0]["mb_per_s"] for r in runs]
            print(f"- {size} B acks=1 produce, encrypted: {statistics.median(ours) / dd_mb_s:.0%} "
                  f"of dd's median; rounds (MB/s): {', '.join(f'{x:.0f}' for x in ours)}")


def median_interval(xs: list, resamples: int = 4000) -> tuple:
    """Bootstrap 90% interval of the median of `xs`: the 5th and 95th
    percentiles of the medians of `resamples` resamplings with
    replacement (seeded, so a run's figures are reproducible from it)."""
    rng = random.Random(5)
    meds = sorted(statistics.median(rng.choices(xs, k=len(xs))) for _ in range(resamples))
    return meds[resamples // 20], meds[resamples - 1 - resamples // 20]


def add_tail_cache_counts(into: dict, b):
    """Adds what a stopped broker logged at shutdown about its tail cache."""
    for line in b.log_path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        fields = rec.get("fields", rec)
        if "tail_cache_hits" in fields:
            for key in ["tail_cache_hits", "tail_cache_misses", "read_ahead"]:
                into[key] = into.get(key, 0) + int(fields.get(key, 0))
            return
    sys.exit(f"no tail cache counts in {b.log_path}")


if __name__ == "__main__":
    main()
