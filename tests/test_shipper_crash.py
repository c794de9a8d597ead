"""kill -9 of wharf-shipper in the middle of a stream, then a restart:
every acked event reaches S3; the only duplicates are events that were in
flight (sent but unacked by the shipper, so resent by the client; or in a
batch being uploaded, so delivered again under the same wharf_id)."""

import collections
import threading
import time

from shipper_support import Client, Shipper, event, s3_objects, decode_object, open_multipart_uploads, unique
from test_shipper_s3 import BUCKET, config

TOTAL = 60_000


class ResendingWriter:
    """Like the broker's socket writer: keeps what is unacked, resends it
    after a reconnect."""

    def __init__(self, client_id, lines):
        self.id = client_id
        self.lines = lines
        self.base = 0          # lines before this index are acked for good
        self.in_flight = set()  # indices sent but not acked when the shipper died

    def run_until_killed(self, path, stop):
        c = Client(path)
        # Lines up to `sent` were written whole; a chunk the kill cut short
        # may have partly arrived (and been made durable) all the same, so
        # everything up to `attempted` counts as in flight.
        sent = attempted = self.base
        try:
            while sent < len(self.lines) and not stop.is_set():
                chunk = self.lines[sent:sent + 500]
                attempted = sent + len(chunk)
                c.send_lines(chunk)
                sent = attempted
                time.sleep(0.002)
        except OSError:
            pass
        stop.wait(30)
        time.sleep(0.5)
        acked = self.base + c.acked
        self.in_flight = set(range(acked, attempted))
        self.base = acked
        c.close()
        return acked

    def resend_rest(self, path):
        c = Client(path)
        rest = self.lines[self.base:]
        for i in range(0, len(rest), 2000):
            c.send_lines(rest[i:i + 2000])
        c.wait_acked(len(rest), timeout=180)
        c.close()


def test_kill9_mid_stream_loses_no_acked_event(wharf_bin, localstack, tmp_path):
    prefix = unique("shipper-crash")
    cfg = config(tmp_path, prefix, max_age="1s", max_bytes="2 MiB")
    sh = Shipper(wharf_bin("wharf-shipper"), tmp_path, cfg).start()
    writers = [ResendingWriter(c, [event(c, n, 1_767_322_800_000 + n, "prod", n % 3)
                                   for n in range(TOTAL)]) for c in range(2)]
    stop = threading.Event()
    acked_at_kill = {}
    threads = [threading.Thread(target=lambda w=w: acked_at_kill.__setitem__(w.id, w.run_until_killed(sh.socket_path, stop)))
               for w in writers]
    for t in threads:
        t.start()
    # Kill once a good part is acked and some is already delivered.
    sh.wait_metric("wharf_shipper_sink_events_delivered_total", 5_000, sink="s3")
    sh.kill9()
    stop.set()
    for t in threads:
        t.join()
    assert all(0 < a < TOTAL for a in acked_at_kill.values()), acked_at_kill

    # Restart on the same data directory; clients resend what was unacked.
    sh2 = Shipper(wharf_bin("wharf-shipper"), tmp_path, cfg).start()
    for w in writers:
        w.resend_rest(sh2.socket_path)
    assert sh2.stop() == 0, sh2.logs()

    rows = []
    for obj in s3_objects(BUCKET, prefix):
        rows += decode_object(obj["body"], obj["metadata"]["wharf-compression"])
    copies = collections.defaultdict(list)
    for r in rows:
        copies[(r["client"], r["n"])].append(r["wharf_id"])
    for w in writers:
        missing = [n for n in range(TOTAL) if (w.id, n) not in copies]
        assert not missing, f"client {w.id}: {len(missing)} events missing, e.g. {missing[:5]}"
    for (c, n), ids in copies.items():
        if len(ids) > 1:
            w = writers[c]
            same_id = len(set(ids)) == 1
            assert same_id or n in w.in_flight, (
                f"event {(c, n)} doubled under different ids but was acked before the kill")
            # A resend plus a redelivery can give more copies, never of an acked line under new ids.
    assert not open_multipart_uploads(BUCKET, prefix)


def test_a_multipart_upload_cut_by_kill9_is_aborted_at_restart(wharf_bin, localstack, tmp_path):
    import json
    import random
    import string
    prefix = unique("shipper-mpu")
    cfg = config(tmp_path, prefix, compression="none", max_age="10m", max_bytes="64 MiB")
    sh = Shipper(wharf_bin("wharf-shipper"), tmp_path, cfg).start()
    rnd = random.Random(7)
    lines = [json.dumps({"kind": "log", "ts": 1_767_322_800_000, "cluster": "prod", "broker": 1, "client": 0, "n": n,
                         "pad": "".join(rnd.choices(string.ascii_letters, k=400))}) for n in range(30_000)]
    c = Client(sh.socket_path)
    for i in range(0, len(lines), 2000):
        c.send_lines(lines[i:i + 2000])
    c.wait_acked(len(lines))
    c.close()
    # ~13 MiB in one open batch: parts of 5 MiB are already uploaded.
    state = tmp_path / "data" / "sinks" / "s3" / "uploads"
    deadline = time.time() + 60
    while time.time() < deadline:
        files = list(state.glob("*.json"))
        if files and json.loads(files[0].read_text()).get("upload_id"):
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"no multipart upload started:\n{sh.logs()}")
    time.sleep(1)
    sh.kill9()
    assert open_multipart_uploads(BUCKET, prefix), "the cut upload is there before the restart"

    sh2 = Shipper(wharf_bin("wharf-shipper"), tmp_path, cfg).start()
    deadline = time.time() + 30
    while open_multipart_uploads(BUCKET, prefix) and time.time() < deadline:
        time.sleep(0.2)
    assert not open_multipart_uploads(BUCKET, prefix), "aborted at restart, never left dangling"
    assert "aborted an upload" in sh2.logs()
    assert sh2.stop() == 0, sh2.logs()
    rows = []
    objs = s3_objects(BUCKET, prefix)
    for obj in objs:
        rows += decode_object(obj["body"], "none")
    assert sorted(r["n"] for r in rows) == list(range(30_000)), "delivered again, exactly once"
    assert any(len(o["body"]) > 5 << 20 for o in objs), "it went up as a multipart upload"
    assert not open_multipart_uploads(BUCKET, prefix)
