"""Helpers for the wharf-shipper tests: run the binary on a config, talk
to its socket like the broker's writer does (keep unacked lines, resend
after a reconnect), read its metrics, and read back what reached S3 or a
directory (decrypting and decompressing as a user would)."""

import atexit
import gzip
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class Shipper:
    """One wharf-shipper process on a config written to `workdir`."""

    def __init__(self, binary: str, workdir: Path, config: str, env: dict | None = None):
        self.binary = binary
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.workdir / "shipper.toml"
        self.config_path.write_text(config)
        self.env = dict(os.environ)
        self.env.setdefault("RUST_LOG", "info")
        self.env.update(env or {})
        self.proc = None
        self.log_path = self.workdir / "shipper.log"
        self.data_dir = Path(re.search(r'^data_dir\s*=\s*"([^"]+)"', config, re.M).group(1))
        self.socket_path = Path(re.search(r'^path\s*=\s*"([^"]+\.sock)"', config, re.M).group(1))

    def start(self, timeout: float = 30) -> "Shipper":
        addr = self.data_dir / "api.addr"
        if addr.exists():
            addr.unlink()
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([self.binary, "--config", str(self.config_path)],
                                     env=self.env, stdout=self.log, stderr=self.log)
        # A failing test must not leave its shipper running.
        atexit.register(lambda p=self.proc: p.poll() is None and p.kill())
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"wharf-shipper exited with {self.proc.returncode}:\n{self.logs()}")
            if addr.exists() and self.socket_path.exists():
                # The socket exists once bound; make sure it accepts.
                try:
                    s = socket.socket(socket.AF_UNIX)
                    s.connect(str(self.socket_path))
                    s.close()
                    self.api = addr.read_text().strip()
                    return self
                except OSError:
                    pass
            time.sleep(0.05)
        raise AssertionError(f"wharf-shipper did not start in {timeout}s:\n{self.logs()}")

    def logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-5000:]
        except OSError:
            return ""

    def stop(self, timeout: float = 90) -> int:
        """SIGTERM and wait; returns the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self.log.close()

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.log.close()

    def http(self, path: str) -> tuple[int, str]:
        import urllib.error
        import urllib.request
        try:
            with urllib.request.urlopen(f"http://{self.api}{path}", timeout=30) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def metrics(self) -> dict:
        status, text = self.http("/metrics")
        assert status == 200, text
        out = {}
        for line in text.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
        return out

    def metric(self, name: str, **labels) -> float:
        want = [f'{k}="{v}"' for k, v in labels.items()]
        total = 0.0
        for key, value in self.metrics().items():
            base = key.split("{", 1)[0]
            if base == name and all(w in key for w in want):
                total += value
        return total

    def wait_metric(self, name: str, at_least: float, timeout: float = 120, **labels) -> float:
        deadline = time.time() + timeout
        v = 0.0
        while time.time() < deadline:
            v = self.metric(name, **labels)
            if v >= at_least:
                return v
            time.sleep(0.2)
        raise AssertionError(f"{name}{labels} stayed at {v} < {at_least} for {timeout}s:\n{self.logs()}")


class Client:
    """A socket client: sends lines, collects acks and error lines."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(str(path))
        self.acked = 0
        self.errors = []
        self.closed = False
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        buf = b""
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                with self._cond:
                    self.closed = True
                    self._cond.notify_all()
                return
            buf += data
            *lines, buf = buf.split(b"\n")
            with self._cond:
                for line in lines:
                    msg = json.loads(line)
                    if "ack" in msg:
                        assert msg["ack"] >= self.acked, f"acks went backwards: {msg} after {self.acked}"
                        self.acked = msg["ack"]
                    else:
                        self.errors.append(msg)
                self._cond.notify_all()

    def send(self, data: bytes):
        self.sock.sendall(data)

    def send_lines(self, lines):
        self.send(("\n".join(lines) + "\n").encode())

    def wait_acked(self, n: int, timeout: float = 60):
        deadline = time.time() + timeout
        with self._cond:
            while self.acked < n:
                left = deadline - time.time()
                if left <= 0 or self.closed:
                    raise AssertionError(f"acked {self.acked} of {n} (closed={self.closed})")
                self._cond.wait(min(left, 0.5))

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def event(client: int, n: int, ts_ms: int, cluster: str, broker: int) -> str:
    """A broker-log-shaped event of about 250 bytes."""
    return json.dumps({
        "kind": "log", "ts": ts_ms, "level": "INFO", "cluster": cluster, "broker": broker,
        "logger": "kafka.server.ReplicaFetcherThread", "client": client, "n": n,
        "message": f"[ReplicaFetcher replicaId={broker}, leaderId=2, fetcherId=0] "
                   f"Truncating partition orders-{n % 12} to offset {n * 17}",
    }, separators=(",", ":"))


# ---- reading back ---------------------------------------------------------

def esdk_decrypt_kms(body: bytes, key_arn: str) -> tuple[bytes, dict]:
    """Decrypts an object with AWS's Python Encryption SDK (KMS keyring on
    LocalStack); returns the plaintext and the encryption context."""
    import aws_encryption_sdk
    import botocore.session
    from aws_encryption_sdk.identifiers import CommitmentPolicy
    global _esdk
    if "_esdk" not in globals():
        client = aws_encryption_sdk.EncryptionSDKClient(
            commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
        provider = aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(
            key_ids=[key_arn], botocore_session=botocore.session.Session())
        _esdk = (client, provider)
    client, provider = _esdk
    pt, header = client.decrypt(source=body, key_provider=provider)
    return pt, dict(header.encryption_context)


def wharf_decrypt(wharf: str, body: bytes) -> bytes:
    """Decrypts an object with `wharf decrypt` (KMS discovery)."""
    r = subprocess.run([wharf, "decrypt"], input=body, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout


def decode_object(body: bytes, compression: str) -> list[dict]:
    if compression == "gzip":
        body = gzip.decompress(body)
    elif compression == "zstd":
        import duckdb  # noqa: F401  (zstd via DuckDB is not needed here)
        raise AssertionError("zstd objects are read with DuckDB in these tests")
    return [json.loads(line) for line in body.splitlines() if line.strip()]


def s3_client():
    import boto3
    return boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"),
                        region_name=os.environ.get("AWS_REGION", "us-east-1"))


def s3_objects(bucket: str, prefix: str) -> list[dict]:
    """Every object under prefix: key, metadata and body."""
    s3 = s3_client()
    out = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            got = s3.get_object(Bucket=bucket, Key=o["Key"])
            out.append({"key": o["Key"], "metadata": got.get("Metadata", {}), "body": got["Body"].read()})
    return out


def open_multipart_uploads(bucket: str, prefix: str) -> list:
    return s3_client().list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads", [])
