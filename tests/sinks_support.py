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
