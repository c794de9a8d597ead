"""wharf-shipper → Firehose (DirectPut → S3) on LocalStack: the S3 bucket
receives exactly the events sent, packed newline-delimited; with envelope
encryption each line is an AWS Encryption SDK message (base64) that the
Python SDK decrypts, and the data-key cache keeps master-key calls near
zero per record."""

import base64
import json

import pytest

from shipper_support import Client, Shipper, unique
from sinks_support import create_delivery_stream, firehose_lines, raw_aes_provider, sink_config


def table(stream, encryption="none", extra=""):
    return f'''
[sinks.fh]
type = "firehose"
inputs = ["broker"]
delivery_stream = "{stream}"
record_bytes = "16 KiB"
encryption = "{encryption}"
max_age = "300ms"
{extra}
'''


def send(sh, lines):
    c = Client(sh.socket_path)
    for i in range(0, len(lines), 1000):
        c.send_lines(lines[i:i + 1000])
    c.wait_acked(len(lines))
    assert c.errors == []
    c.close()


def events(count, tag):
    return [json.dumps({"kind": "log", "tag": tag, "n": n, "message": f"event {n} " + "z" * (n % 300)})
            for n in range(count)]


def test_firehose_delivers_exactly_the_events_sent(wharf_bin, localstack, tmp_path):
    stream, prefix = unique("wharf-fh"), unique("fh")
    create_delivery_stream(stream, prefix)
    sh = Shipper(wharf_bin("wharf-shipper"), tmp_path, sink_config(tmp_path, table(stream))).start()
    sent = events(5000, prefix)
    send(sh, sent)
    sh.wait_metric("wharf_shipper_sink_events_delivered_total", len(sent), sink="fh")
    assert sh.stop() == 0, sh.logs()
    lines = firehose_lines(prefix, len(sent))
    got = [json.loads(line) for line in lines]
    ns = sorted(g["n"] for g in got)
    assert ns == list(range(len(sent))), f"{len(ns)} lines for {len(sent)} events"
    assert len({g["wharf_id"] for g in got}) == len(sent)
    assert all(g["tag"] == prefix for g in got)


def test_envelope_encrypted_records_decrypt_with_the_python_sdk(wharf_bin, localstack, tmp_path):
    import aws_encryption_sdk
    from aws_encryption_sdk.identifiers import CommitmentPolicy

    stream, prefix = unique("wharf-fh"), unique("fh-enc")
    create_delivery_stream(stream, prefix)
    sh = Shipper(wharf_bin("wharf-shipper"), tmp_path, sink_config(tmp_path, table(stream, "envelope"))).start()
    sent = events(3000, prefix)
    send(sh, sent)
    sh.wait_metric("wharf_shipper_sink_events_delivered_total", len(sent), sink="fh")
    kms_calls = sh.metric("wharf_shipper_kms_calls_total")
    assert sh.stop() == 0, sh.logs()
    key = (sh.data_dir / "master.key").read_bytes()
    client = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
    provider = raw_aes_provider(key)
    records = firehose_lines(prefix, 1)
    got = []
    for line in records:
        pt, header = client.decrypt(source=base64.b64decode(line), key_provider=provider)
        assert header.encryption_context["purpose"] == "wharf-shipper-firehose"
        got.extend(json.loads(x) for x in pt.splitlines())
    assert sorted(g["n"] for g in got) == list(range(len(sent)))
    # Many records, a handful of master-key calls (buffer + records).
    assert len(records) > 50, len(records)
    assert kms_calls <= 10, kms_calls
