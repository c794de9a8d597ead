"""Helpers for the telemetry tests: run `wharf up` on free ports in a
temporary directory, read back the file sink as a user would (`wharf
decrypt --key`, then gunzip), and small Kafka load helpers."""

import gzip
import json
import os
import signal
import subprocess
import time
from pathlib import Path


class Up:
    """`wharf up` on port 0 everywhere, in `workdir`."""

    def __init__(self, wharf: str, workdir: Path, *extra: str):
        self.wharf = wharf
        self.dir = Path(workdir) / "wharf-data"
        self.extra = list(extra)
        self.proc = None
        self.info = None

    def start(self, timeout: float = 90) -> "Up":
        env = {k: v for k, v in os.environ.items() if not k.startswith("WHARF_")}
        self.out = open(self.dir.parent / "up.out", "wb")
        self.proc = subprocess.Popen(
            [self.wharf, "up", "--dir", str(self.dir), "--kafka", "127.0.0.1:0",
             "--prometheus", "127.0.0.1:0", "--shipper-api", "127.0.0.1:0",
             "--batch-age", "1s", *self.extra],
            stdout=self.out, stderr=subprocess.STDOUT, env=env)
        up_json = self.dir / "up.json"
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"wharf up exited {self.proc.returncode}:\n{self.output()}")
            if up_json.exists():
                try:
                    self.info = json.loads(up_json.read_text())
                    return self
                except ValueError:
                    pass
            time.sleep(0.1)
        raise AssertionError(f"wharf up did not come up in {timeout}s:\n{self.output()}")

    def output(self) -> str:
        return (self.dir.parent / "up.out").read_text(errors="replace")

    @property
    def kafka(self) -> str:
        return self.info["kafka"]

    def stop(self, sig=signal.SIGINT, timeout: float = 90) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            self.out.close()

    def records(self, prefix: str) -> list[dict]:
        """Every record of every object under objects/prefix, decrypted
        with `wharf decrypt --key master.key` and gunzipped."""
        return read_objects(self.wharf, self.dir / "objects" / prefix, self.dir / "master.key")


def decrypt_local(wharf: str, key: Path, body: bytes) -> bytes:
    r = subprocess.run([wharf, "decrypt", "--key", str(key)], input=body,
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout


def parse_ndjson_gz(plain: bytes) -> list[dict]:
    return [json.loads(line) for line in gzip.decompress(plain).splitlines() if line.strip()]


def read_objects(wharf: str, root: Path, key: Path) -> list[dict]:
    out = []
    if not root.exists():
        return out
    for f in sorted(root.rglob("*")):
        if f.is_file() and not f.name.startswith(".") and ".wharf-tmp" not in str(f):
            out.extend(parse_ndjson_gz(decrypt_local(wharf, key, f.read_bytes())))
    return out


def wait_for(what, predicate, timeout: float = 60, every: float = 0.5):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"{what} did not happen within {timeout}s (last: {last!r})")


def produce(kcat: str, bootstrap: str, topic: str, n: int, prefix: str = "m"):
    lines = "".join(f"{prefix}-{i}\n" for i in range(n)).encode()
    r = subprocess.run([kcat, "-P", "-b", bootstrap, "-t", topic, "-X", "acks=all"],
                       input=lines, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode()


def percentiles(samples_ms: list[float]) -> str:
    if not samples_ms:
        return "no samples"
    s = sorted(samples_ms)
    p = lambda q: s[min(len(s) - 1, int(q * len(s)))]  # noqa: E731
    return f"n={len(s)} p50={p(0.5):.2f} ms p99={p(0.99):.2f} ms max={s[-1]:.2f} ms"
