"""Helpers for the CloudWatch Logs, CloudWatch metrics and Firehose sink
tests: boto3 clients on LocalStack, reading back what arrived, reading
the S3 dead letters."""

import json
import os
import time

from shipper_support import s3_objects


def aws(service: str):
    import boto3
    return boto3.client(service, endpoint_url=os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"),
                        region_name=os.environ.get("AWS_REGION", "us-east-1"))


def log_events(group: str) -> list[dict]:
    """Every event of every stream of `group` (FilterLogEvents)."""
    logs = aws("logs")
    out = []
    for page in logs.get_paginator("filter_log_events").paginate(logGroupName=group):
        out.extend(page["events"])
    return out


def wait_log_events(groups: list[str], count: int, timeout: float = 60) -> list[dict]:
    deadline = time.time() + timeout
    got = []
    while time.time() < deadline:
        got = []
        for g in groups:
            try:
                got.extend(log_events(g))
            except Exception:  # group not created yet
                pass
        if len(got) >= count:
            return got
        time.sleep(0.5)
    return got


def dead_letters(bucket: str, prefix: str) -> list[dict]:
    rows = []
    for obj in s3_objects(bucket, prefix):
        rows.extend(json.loads(line) for line in obj["body"].splitlines() if line.strip())
    return rows


def sink_config(tmp_path, sink_table: str) -> str:
    return f'''
data_dir = "{tmp_path}/data"
[api]
address = "127.0.0.1:0"
[sources.broker]
type = "socket"
path = "{tmp_path}/s.sock"
max_line_bytes = "4 MiB"
{sink_table}
'''


def create_delivery_stream(name: str, prefix: str, bucket: str = "wharf-firehose") -> None:
    fh = aws("firehose")
    fh.create_delivery_stream(
        DeliveryStreamName=name,
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::000000000000:role/firehose",
            "BucketARN": f"arn:aws:s3:::{bucket}",
            "Prefix": prefix + "/",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
        },
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        st = fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]["DeliveryStreamStatus"]
        if st == "ACTIVE":
            return
        time.sleep(0.5)
    raise AssertionError(f"delivery stream {name} did not become ACTIVE")


def firehose_lines(prefix: str, count: int, bucket: str = "wharf-firehose", timeout: float = 60) -> list[bytes]:
    """The newline-delimited lines Firehose wrote under prefix, once at
    least `count` are there (and a little longer, to catch extras)."""
    deadline = time.time() + timeout
    lines = []
    while time.time() < deadline:
        lines = []
        for obj in s3_objects(bucket, prefix + "/"):
            lines.extend(line for line in obj["body"].split(b"\n") if line.strip())
        if len(lines) >= count:
            time.sleep(3)
            lines = []
            for obj in s3_objects(bucket, prefix + "/"):
                lines.extend(line for line in obj["body"].split(b"\n") if line.strip())
            return lines
        time.sleep(1)
    return lines


LOCAL_NAMESPACE = "wharf-local"


def raw_aes_provider(key: bytes):
    """The AWS Encryption SDK keyring matching a Wharf local master key."""
    import hashlib
    import hmac

    from aws_encryption_sdk.identifiers import EncryptionKeyType, WrappingAlgorithm
    from aws_encryption_sdk.internal.crypto.wrapping_keys import WrappingKey
    from aws_encryption_sdk.key_providers.raw import RawMasterKeyProvider

    class Provider(RawMasterKeyProvider):
        provider_id = LOCAL_NAMESPACE

        def _get_raw_key(self, key_id):
            return WrappingKey(
                wrapping_algorithm=WrappingAlgorithm.AES_256_GCM_IV12_TAG16_NO_PADDING,
                wrapping_key=key,
                wrapping_key_type=EncryptionKeyType.SYMMETRIC,
            )

    p = Provider()
    p.add_master_key(hmac.new(key, b"wharf-local key name v1", hashlib.sha256).hexdigest()[:16].encode())
    return p
