"""The socket source and the file sink with real clients: bad lines,
oversize lines and a client vanishing mid-line leave other clients'
events intact; the socket is created safely; SIGTERM flushes and exits 0;
`validate` names bad keys."""

import collections
import json
import os
import socket
import stat
import subprocess
import threading
from pathlib import Path

from shipper_support import Client, Shipper, event

ROOT = Path(__file__).resolve().parent.parent


def file_config(tmp, max_age="5m", extra=""):
    return f'''
data_dir = "{tmp}/data"
[api]
address = "127.0.0.1:0"
[sources.broker]
type = "socket"
path = "{tmp}/s.sock"
max_line_bytes = "1 MiB"
[sinks.local]
type = "file"
inputs = ["broker"]
directory = "{tmp}/out"
key = "{{kind}}/cluster={{cluster}}/dt=%Y-%m-%d/{{uuid}}.{{ext}}"
compression = "none"
encryption = "none"
batch = {{ max_age = "{max_age}" }}
{extra}
'''


def read_out(tmp):
    rows = []
    for p in (Path(tmp) / "out").rglob("*.ndjson"):
        rows += [json.loads(line) for line in p.read_text().splitlines()]
    return rows


def test_bad_lines_oversize_and_a_vanishing_client_leave_others_intact(wharf_bin, tmp_path):
    sh = Shipper(wharf_bin("wharf-shipper"), tmp_path, file_config(tmp_path)).start()
    good = {c: [event(c, n, 1_767_322_800_000, "prod", 1) for n in range(5000)] for c in (1, 2)}
    threads = []
    for c, lines in good.items():
        def send(c=c, lines=lines):
            cl = Client(sh.socket_path)
            for i in range(0, len(lines), 250):
                cl.send_lines(lines[i:i + 250])
            cl.wait_acked(len(lines))
            assert cl.errors == []
            cl.close()
        threads.append(threading.Thread(target=send))
    for t in threads:
        t.start()

    # A client mixing bad lines with good ones, on one connection.
    bad = Client(sh.socket_path)
    bad.send(b'{"kind":"log","cluster":"prod","client":9,"n":1}\n')      # 1 good
    bad.send(b'this is not json\n')                                       # 2
    bad.send(b'{"message":"no kind","cluster":"prod"}\n')                # 3
    bad.send(b'{"kind":"trace","cluster":"prod"}\n')                     # 4
    bad.send(b'{"kind":"log","ts":"yesterday","cluster":"prod"}\n')      # 5
    big = b'{"kind":"log","cluster":"prod","pad":"' + b"x" * (2 << 20) + b'"}\n'
    for i in range(0, len(big), 1 << 16):                                 # 6: 2 MiB
        bad.send(big[i:i + (1 << 16)])
    bad.send(b'[1,2,3]\n')                                                # 7
    bad.send(b'\n')                                                       # 8 blank
    bad.send(b'{"kind":"log","cluster":"prod","client":9,"n":2}\n')      # 9 good
    bad.wait_acked(9)
    errors = {e["line"]: e["error"] for e in bad.errors}
    assert set(errors) == {2, 3, 4, 5, 6, 7}, errors
    assert "not valid JSON" in errors[2] and errors[2].startswith("line 2:")
    assert "no \"kind\"" in errors[3]
    assert "\"trace\"" in errors[4]
    assert "yesterday" in errors[5]
    assert "maximum of 1048576 bytes" in errors[6]
    assert "not a JSON object" in errors[7]
    bad.close()

    # A client that disconnects in the middle of a line.
    s = socket.socket(socket.AF_UNIX)
    s.connect(str(sh.socket_path))
    s.sendall(b'{"kind":"log","cluster":"prod","client":8,"n":1}\n{"kind":"log","clus')
    s.close()

    for t in threads:
        t.join()
    # The shipper sees the cut connection's end in its own time.
    sh.wait_metric("wharf_shipper_events_dead_lettered_total", 1, timeout=30, reason="incomplete")
    m = sh.metrics
    reasons = {k: v for k, v in m().items() if k.startswith("wharf_shipper_events_dead_lettered_total")}
    assert sh.stop() == 0, sh.logs()
    want = {"not_json": 1, "missing_kind": 1, "bad_kind": 1, "bad_ts": 1, "too_long": 1, "not_object": 1, "incomplete": 1}
    for reason, n in want.items():
        assert reasons.get(f'wharf_shipper_events_dead_lettered_total{{source="broker",reason="{reason}"}}') == n, reasons

    rows = read_out(tmp_path)
    got = collections.Counter((r["client"], r["n"]) for r in rows)
    for c, lines in good.items():
        assert all(got[(c, n)] == 1 for n in range(len(lines))), f"client {c} lost or doubled events"
    assert got[(9, 1)] == 1 and got[(9, 2)] == 1, "good lines around bad ones are kept"
    assert got[(8, 1)] == 1, "the complete line before the cut is kept"
    assert len(rows) == 10_000 + 3
    assert list((tmp_path / "data" / "dead-letter").glob("broker-*.dl")), "refused lines are dead-lettered"


def test_clients_that_never_pause_hear_acks_while_they_send(wharf_bin, tmp_path):
    """Two clients stream flat out: each must get acks while it is still
    sending (the broker's writer holds every unacked line for a resend),
    not only once it pauses. Acks used to go out only when a connection's
    queue of appended reads was empty, which steady traffic seldom left."""
    sh = Shipper(wharf_bin("wharf-shipper"), tmp_path, file_config(tmp_path)).start()
    n = 100_000
    seen, failures = {}, []

    def stream(c):
        try:
            send_all(c)
        except Exception as e:  # noqa: BLE001 - reported by the test thread below
            failures.append(f"client {c}: {e!r}")

    def send_all(c):
        cl = Client(sh.socket_path)
        data = ("\n".join(event(c, i, 1_767_322_800_000, "prod", 1) for i in range(n)) + "\n").encode()
        chunk = 256 << 10
        # The acks heard by the time nine tenths had been sent.
        for at in range(0, len(data), chunk):
            cl.send(data[at:at + chunk])
            if at < len(data) * 9 // 10:
                seen[c] = cl.acked
        cl.wait_acked(n, timeout=120)
        assert cl.errors == []
        cl.close()

    threads = [threading.Thread(target=stream, args=(c,)) for c in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures
    assert sh.stop() == 0, sh.logs()
    assert len(seen) == 2 and all(a > 0 for a in seen.values()), seen
    assert len(read_out(tmp_path)) == 2 * n


def test_socket_mode_stale_and_live_sockets(wharf_bin, tmp_path):
    sock = tmp_path / "s.sock"
    # A stale socket (nobody listening) is replaced.
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(sock))
    stale.close()
    sh = Shipper(wharf_bin("wharf-shipper"), tmp_path, file_config(tmp_path)).start()
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o660
    # A live one is refused, naming the path.
    other = tmp_path / "other"
    other.mkdir()
    cfg = file_config(tmp_path).replace(f'"{tmp_path}/data"', f'"{other}/data"')
    (other / "c.toml").write_text(cfg)
    r = subprocess.run([wharf_bin("wharf-shipper"), "--config", str(other / "c.toml")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "already listening" in r.stderr and str(sock) in r.stderr, r.stderr
    assert Client(sh.socket_path) is not None
    assert sh.stop() == 0
    # A regular file in the way is never replaced.
    sock.write_text("precious")
    r = subprocess.run([wharf_bin("wharf-shipper"), "--config", str(sh.config_path)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "not a socket" in r.stderr, r.stderr
    assert sock.read_text() == "precious"


def test_sigterm_flushes_open_batches_and_exits_0_then_restart_resumes(wharf_bin, tmp_path):
    sh = Shipper(wharf_bin("wharf-shipper"), tmp_path, file_config(tmp_path, max_age="10m")).start()
    c = Client(sh.socket_path)
    c.send_lines([event(1, n, 1_767_322_800_000, "prod", 1) for n in range(1000)])
    c.wait_acked(1000)
    c.close()
    assert read_out(tmp_path) == [], "a 10-minute batch is still open"
    assert sh.stop() == 0, sh.logs()
    assert len(read_out(tmp_path)) == 1000, "SIGTERM delivered the open batch"
    assert not any((tmp_path / "out" / ".wharf-tmp").iterdir()), "no partial files left"
    # A restart delivers nothing twice and takes new events.
    sh = Shipper(wharf_bin("wharf-shipper"), tmp_path, file_config(tmp_path, max_age="10m")).start()
    c = Client(sh.socket_path)
    c.send_lines([event(2, n, 1_767_322_800_000, "prod", 1) for n in range(10)])
    c.wait_acked(10)
    c.close()
    assert sh.stop() == 0
    rows = read_out(tmp_path)
    assert len(rows) == 1010 and len({r["wharf_id"] for r in rows}) == 1010


def test_validate_names_the_bad_key(wharf_bin, tmp_path):
    exe = wharf_bin("wharf-shipper")
    for f in ("shipper-embedded.toml", "shipper-localstack.toml", "shipper-aws-sinks.toml",
              "shipper-telemetry-aws.toml"):
        r = subprocess.run([exe, "validate", str(ROOT / "examples" / f)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    cases = {
        'max_line_bytes = "1 MiB"': ('max_line_byte = "1 MiB"', "sources.broker.max_line_byte"),
        'compression = "none"': ('compression = "lz5"', "lz5"),
        'max_age = "5m"': ('max_age = "5 fortnights"', "fortnights"),
        'inputs = ["broker"]': ('inputs = ["brokr"]', "sinks.local.inputs"),
    }
    for old, (new, needle) in cases.items():
        p = tmp_path / "bad.toml"
        p.write_text(file_config(tmp_path).replace(old, new))
        r = subprocess.run([exe, "validate", str(p)], capture_output=True, text=True)
        assert r.returncode == 1 and needle in r.stderr, (new, r.stderr)
    # WHARF_* variables override the file and are checked the same way.
    p = tmp_path / "good.toml"
    p.write_text(file_config(tmp_path))
    env = dict(os.environ, WHARF_BUFFER__MAX_BYTES="1 KiB")
    r = subprocess.run([exe, "validate", str(p)], capture_output=True, text=True, env=env)
    assert r.returncode == 1 and "buffer.max_bytes" in r.stderr, r.stderr


def test_file_sink_objects_are_encrypted_zstd_that_wharf_decrypts_and_duckdb_reads(wharf_bin, tmp_path):
    import duckdb
    cfg = file_config(tmp_path, max_age="1s").replace('compression = "none"', 'compression = "zstd"') \
        .replace('encryption = "none"', 'encryption = "envelope"')
    sh = Shipper(wharf_bin("wharf-shipper"), tmp_path, cfg).start()
    c = Client(sh.socket_path)
    c.send_lines([event(1, n, 1_767_322_800_000, ["a", "b"][n % 2], 1) for n in range(3000)])
    c.wait_acked(3000)
    c.close()
    sh.wait_metric("wharf_shipper_sink_events_delivered_total", 3000, sink="local")
    assert sh.stop() == 0
    key = tmp_path / "data" / "master.key"
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    files = list((tmp_path / "out").rglob("*.ndjson.zst"))
    assert files
    plain_root = tmp_path / "plain"
    for f in files:
        body = f.read_bytes()
        assert body[:3] == b"\x02\x04\x78" and b"ReplicaFetcher" not in body
        r = subprocess.run([wharf_bin("wharf"), "decrypt", "--key", str(key), "--in", str(f)],
                           capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr.decode()
        out = plain_root / f.relative_to(tmp_path / "out")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(r.stdout)
    got = duckdb.sql(
        f"""select cluster, count(*), count(distinct wharf_id)
            from read_json_auto('{plain_root}/**/*.ndjson.zst', hive_partitioning = true, compression = 'zstd')
            group by cluster order by cluster""").fetchall()
    assert got == [("a", 1500, 1500), ("b", 1500, 1500)]
