"""Shared fixtures for the real-client tests (run by scripts/test-all.sh).

These tests drive Wharf's built binaries with real clients (kcat,
confluent-kafka, kafka-python, boto3, the AWS Encryption SDK, DuckDB,
Prometheus). They need the services that scripts/test-all.sh starts; run on
their own, they fail with a message saying how to start them.
"""

import os
import shutil
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _bin_dir() -> Path:
    target = os.environ.get("CARGO_TARGET_DIR", str(Path.home() / ".cache/wharf-target"))
    return Path(os.environ.get("WHARF_BIN_DIR", Path(target) / "debug"))


@pytest.fixture(scope="session")
def bin_dir() -> Path:
    return _bin_dir()


@pytest.fixture(scope="session")
def wharf_bin(bin_dir):
    """Path of a built Wharf binary, e.g. wharf_bin("wharf")."""

    def find(name: str) -> str:
        path = bin_dir / name
        if not path.exists():
            pytest.fail(f"{path} is missing: build with `cargo build --workspace` "
                        f"or run scripts/test-all.sh")
        return str(path)

    return find


@pytest.fixture(scope="session")
def localstack():
    """The LocalStack endpoint; fails (never skips) when it is not up."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    try:
        with urllib.request.urlopen(f"{endpoint}/_localstack/health", timeout=3) as r:
            r.read()
    except OSError as e:
        pytest.fail(f"LocalStack is not reachable at {endpoint} ({e}): start it with "
                    f"`localstack/localstack.sh start` and `eval $(localstack/localstack.sh env)`, "
                    f"or run scripts/test-all.sh")
    return endpoint


@pytest.fixture(scope="session")
def kms_key_arn(localstack):
    arn = os.environ.get("WHARF_TEST_KMS_KEY_ARN")
    if not arn:
        pytest.fail("WHARF_TEST_KMS_KEY_ARN is not set: `eval $(localstack/localstack.sh env)`")
    return arn


@pytest.fixture(scope="session")
def kcat():
    path = shutil.which("kcat")
    if not path:
        pytest.fail("kcat is not installed: `apt-get install kcat`, or run scripts/test-all.sh")
    return path
