"""S3 unreachable for 30 s in the middle of a stream: the shipper keeps
acking into its buffer, reports the problem, then drains the backlog
exactly once. The outage is a TCP proxy in this test between the shipper
and LocalStack, stopped and restarted: the shared LocalStack keeps
running for everyone else."""

import collections
import os
import socket
import threading
import time
from urllib.parse import urlparse

from shipper_support import Client, Shipper, decode_object, esdk_decrypt_kms, event, s3_objects, unique
from test_shipper_s3 import BUCKET, config


class Proxy:
    """Forwards TCP from a local port to the upstream; `stop()` closes the
    listener and every connection (connections are refused), `start()`
    listens again on the same port."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.port = None
        self.listener = None
        self.conns = []
        self.lock = threading.Lock()

    def start(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port or 0))
        s.listen(64)
        self.port = s.getsockname()[1]
        self.listener = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def _accept(self, s):
        while True:
            try:
                c, _ = s.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(self.upstream)
            except OSError:
                c.close()
                continue
            with self.lock:
                self.conns += [c, u]
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass
        for x in (a, b):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self):
        # shutdown() wakes the thread blocked in accept(); close() alone
        # would leave the socket listening until the next connection.
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        with self.lock:
            for c in self.conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                    c.close()
                except OSError:
                    pass
            self.conns = []


def test_s3_away_for_30s_then_the_backlog_drains(wharf_bin, localstack, kms_key_arn, tmp_path):
    up = urlparse(localstack)
    proxy = Proxy((up.hostname, up.port))
    proxy.start()
    prefix = unique("shipper-outage")
    # Only S3 goes through the proxy; KMS stays reachable (envelope
    # encryption on, as in production).
    cfg = config(tmp_path, prefix, key_arn=kms_key_arn, encryption="envelope",
                 endpoint=f"http://127.0.0.1:{proxy.port}", max_age="1s", max_bytes="4 MiB")
    sh = Shipper(wharf_bin("wharf-shipper"), tmp_path, cfg).start()
    lines = [event(0, n, 1_767_322_800_000 + n, "prod", n % 3) for n in range(30_000)]
    c = Client(sh.socket_path)
    c.send_lines(lines[:10_000])
    c.wait_acked(10_000)
    sh.wait_metric("wharf_shipper_sink_events_delivered_total", 10_000, sink="s3")

    proxy.stop()
    t0 = time.time()
    c.send_lines(lines[10_000:])
    c.wait_acked(30_000, timeout=20)  # acked into the buffer while S3 is away
    time.sleep(5)
    assert sh.metric("wharf_shipper_sink_events_delivered_total", sink="s3") == 10_000
    status, body = sh.http("/health")
    assert status == 503 and "S3" in body, body
    assert sh.metric("wharf_shipper_sink_events_retried_total", sink="s3") > 0
    assert sh.metric("wharf_shipper_sink_oldest_unacked_age_seconds", sink="s3") > 1
    time.sleep(max(0, 30 - (time.time() - t0)))

    proxy.start()
    sh.wait_metric("wharf_shipper_sink_events_delivered_total", 30_000, sink="s3", timeout=90)
    status, _ = sh.http("/health")
    assert status == 200
    c.close()
    assert sh.stop() == 0, sh.logs()
    proxy.stop()

    rows = []
    for obj in s3_objects(BUCKET, prefix):
        plain, _ = esdk_decrypt_kms(obj["body"], kms_key_arn)
        rows += decode_object(plain, obj["metadata"]["wharf-compression"])
    got = collections.Counter(r["n"] for r in rows)
    assert set(got) == set(range(30_000))
    assert max(got.values()) == 1, "a failed request is retried, never duplicated"
