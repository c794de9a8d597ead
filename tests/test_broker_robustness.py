"""Malformed and oversize frames close that connection (with a log line)
and never crash wharf-broker or harm another connection."""

import os
import socket
import struct

import pytest

from test_broker_harness import Broker


@pytest.fixture
def broker(wharf_bin, tmp_path):
    b = Broker(wharf_bin("wharf-broker"), tmp_path).start()
    yield b
    b.stop()


def api_versions(port, version=3):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    body = struct.pack(">hhih", 18, version, 99, 4) + b"test"
    if version >= 3:
        body += b"\x00"  # flexible header: no tagged fields
        body += b"\x06wharf\x021\x00"  # client software name and version, tagged fields
    s.sendall(struct.pack(">i", len(body)) + body)
    size = struct.unpack(">i", recv_exact(s, 4))[0]
    resp = recv_exact(s, size)
    s.close()
    corr, err = struct.unpack(">ih", resp[:6])
    return corr, err


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def closed_by_broker(s):
    s.settimeout(10)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True


def send_raw(port, data):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(data)
    return s


BAD_FRAMES = {
    "oversize": struct.pack(">i", 200 * 1024 * 1024) + b"\x00" * 16,
    "negative size": struct.pack(">i", -5),
    "tiny": struct.pack(">i", 2) + b"\x00\x03",
    "unknown api": struct.pack(">i", 8) + struct.pack(">hhi", 9999, 0, 1),
    "truncated metadata": struct.pack(">i", 10) + struct.pack(">hhih", 3, 9, 1, 20),
    "2^31 topics": struct.pack(">i", 15) + struct.pack(">hhih", 3, 1, 1, 1) + b"x" + struct.pack(">i", 0x7FFFFFFF),
    "random bytes": struct.pack(">i", 64) + os.urandom(64),
}


@pytest.mark.parametrize("name", sorted(BAD_FRAMES))
def test_bad_frame_closes_only_its_connection(broker, name):
    healthy = socket.create_connection(("127.0.0.1", broker.port), timeout=10)
    s = send_raw(broker.port, BAD_FRAMES[name])
    assert closed_by_broker(s) or name == "random bytes"
    s.close()
    assert broker.alive(), broker.log_path.read_text()[-2000:]
    # Another connection, opened before, still gets answers.
    body = struct.pack(">hhih", 18, 0, 7, 0)
    healthy.sendall(struct.pack(">i", len(body)) + body)
    size = struct.unpack(">i", recv_exact(healthy, 4))[0]
    assert struct.unpack(">i", recv_exact(healthy, size)[:4])[0] == 7
    healthy.close()
    assert api_versions(broker.port) == (99, 0)


def test_unsupported_api_versions_version_is_answered_in_v0_with_error_35(broker):
    s = socket.create_connection(("127.0.0.1", broker.port), timeout=10)
    body = struct.pack(">hhih", 18, 42, 5, 0) + b"\x00"
    s.sendall(struct.pack(">i", len(body)) + body)
    size = struct.unpack(">i", recv_exact(s, 4))[0]
    resp = recv_exact(s, size)
    corr, err, n = struct.unpack(">ihi", resp[:10])
    assert (corr, err) == (5, 35)
    keys = {struct.unpack(">h", resp[10 + 6 * i:12 + 6 * i])[0] for i in range(n)}
    assert {0, 1, 3, 18} <= keys
