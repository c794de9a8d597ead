"""S3 sink: SSE-KMS objects, and a missing bucket reported with an
actionable message while events stay buffered, then delivered once the
bucket exists."""

import time

from shipper_support import Client, Shipper, decode_object, event, s3_client, s3_objects, unique
from test_shipper_s3 import BUCKET, config


def test_sse_kms_objects_carry_the_key(wharf_bin, localstack, kms_key_arn, tmp_path):
    prefix = unique("shipper-sse")
    cfg = config(tmp_path, prefix, encryption="sse-kms", max_age="1s").replace(
        'encryption = "sse-kms"', f'encryption = "sse-kms"\nsse_kms_key_id = "{kms_key_arn}"')
    sh = Shipper(wharf_bin("wharf-shipper"), tmp_path, cfg).start()
    c = Client(sh.socket_path)
    c.send_lines([event(0, n, 1_767_322_800_000, "prod", 1) for n in range(1000)])
    c.wait_acked(1000)
    c.close()
    sh.wait_metric("wharf_shipper_sink_events_delivered_total", 1000, sink="s3")
    assert sh.stop() == 0
    objs = s3_objects(BUCKET, prefix)
    assert objs
    rows = []
    for o in objs:
        head = s3_client().head_object(Bucket=BUCKET, Key=o["key"])
        assert head["ServerSideEncryption"] == "aws:kms"
        assert head["SSEKMSKeyId"].split("/")[-1] == kms_key_arn.split("/")[-1]
        assert o["metadata"]["wharf-encryption"] == "sse-kms"
        rows += decode_object(o["body"], "gzip")
    assert sorted(r["n"] for r in rows) == list(range(1000))


def test_a_missing_bucket_is_named_and_events_wait_for_it(wharf_bin, localstack, tmp_path):
    bucket = unique("wharf-missing")
    prefix = "logs"
    cfg = config(tmp_path, prefix, max_age="1s").replace(f'bucket = "{BUCKET}"', f'bucket = "{bucket}"')
    sh = Shipper(wharf_bin("wharf-shipper"), tmp_path, cfg).start()
    c = Client(sh.socket_path)
    c.send_lines([event(0, n, 1_767_322_800_000, "prod", 1) for n in range(500)])
    c.wait_acked(500)
    deadline = time.time() + 30
    while time.time() < deadline:
        status, body = sh.http("/health")
        if status == 503:
            break
        time.sleep(0.2)
    assert status == 503, body
    assert f"S3 bucket `{bucket}` does not exist" in body and "create it" in body, body
    assert sh.metric("wharf_shipper_sink_events_delivered_total", sink="s3") == 0
    assert f"bucket `{bucket}` does not exist" in sh.logs()
    s3_client().create_bucket(Bucket=bucket)
    try:
        sh.wait_metric("wharf_shipper_sink_events_delivered_total", 500, sink="s3", timeout=90)
        assert sh.http("/health")[0] == 200
        c.close()
        assert sh.stop() == 0
        rows = []
        for o in s3_objects(bucket, prefix):
            rows += decode_object(o["body"], "gzip")
        assert sorted(r["n"] for r in rows) == list(range(500))
    finally:
        s3 = s3_client()
        for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=o["Key"])
        s3.delete_bucket(Bucket=bucket)
