"""`wharf keys rotate` end to end with the real binary and LocalStack's KMS.

At-rest files made by `wharf encrypt --format at-rest` under a local key are
re-wrapped under a KMS key, then under a second KMS key (the old one found
by discovery), and `wharf decrypt` still returns the same bytes while the
data region of each file stays byte for byte the same. Needs LocalStack
(`eval "$(localstack/localstack.sh env)"`) and the built `wharf` binary;
scripts/test-all.sh provides both.
"""

import os
import struct
import subprocess
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def env(localstack):
    e = dict(os.environ)
    e.setdefault("AWS_ENDPOINT_URL", localstack)
    e.setdefault("AWS_REGION", "us-east-1")
    e.setdefault("AWS_ACCESS_KEY_ID", "test")
    e.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    return e


@pytest.fixture(scope="module")
def kms_key_arn_2(localstack):
    arn = os.environ.get("WHARF_TEST_KMS_KEY_ARN_2")
    if not arn:
        pytest.fail("WHARF_TEST_KMS_KEY_ARN_2 is not set: `eval $(localstack/localstack.sh env)`")
    return arn


def wharf(wharf_bin, env, *args, stdin=None, check=True):
    proc = subprocess.run([wharf_bin("wharf"), *map(str, args)], input=stdin, capture_output=True, env=env, timeout=120)
    if check and proc.returncode != 0:
        pytest.fail(f"wharf {' '.join(map(str, args))} failed ({proc.returncode}): {proc.stderr.decode()}")
    return proc


def data_region(path: Path) -> bytes:
    """The bytes after the header (docs/at-rest-format.md: 32 + 2 * slot_len)."""
    raw = path.read_bytes()
    assert raw[:8] == b"WHARFENC"
    (slot_len,) = struct.unpack(">I", raw[12:16])
    return raw[32 + 2 * slot_len:]


def test_rotate_local_to_kms_to_kms_keeps_data_and_decrypts(wharf_bin, env, kms_key_arn, kms_key_arn_2, tmp_path: Path):
    local_key = tmp_path / "master.key"
    data = tmp_path / "data"
    (data / "topic-0").mkdir(parents=True)
    files = {data / "a.seg": os.urandom(100_000), data / "topic-0" / "b.seg": b"hello at rest"}
    for path, plaintext in files.items():
        wharf(wharf_bin, env, "encrypt", "--format", "at-rest", "--key", local_key, "--out", path, stdin=plaintext)
    (data / "notes.txt").write_text("left alone")
    before = {p: data_region(p) for p in files}

    out = wharf(wharf_bin, env, "keys", "rotate", data, "--from", local_key, "--to", kms_key_arn).stdout.decode()
    assert "2 rotated, 0 already under the new key, 1 other files left alone, 0 failed" in out
    for path, plaintext in files.items():
        assert data_region(path) == before[path], "rotation must not rewrite frames"
        # No --key: the KMS key ARN recorded in the header is used.
        assert wharf(wharf_bin, env, "decrypt", "--in", path).stdout == plaintext
        refused = wharf(wharf_bin, env, "decrypt", "--key", local_key, "--in", path, check=False)
        assert refused.returncode != 0

    # KMS key A to B, the current key found from each header (no --from).
    out = wharf(wharf_bin, env, "keys", "rotate", data, "--to", kms_key_arn_2).stdout.decode()
    assert "2 rotated" in out
    for path, plaintext in files.items():
        assert data_region(path) == before[path]
        assert wharf(wharf_bin, env, "decrypt", "--key", kms_key_arn_2, "--in", path).stdout == plaintext

    # Running it again changes nothing and says so.
    out = wharf(wharf_bin, env, "keys", "rotate", data, "--to", kms_key_arn_2).stdout.decode()
    assert "0 rotated, 2 already under the new key" in out
    assert (data / "notes.txt").read_text() == "left alone"


def test_rotate_without_from_names_the_fix_for_local_files(wharf_bin, env, kms_key_arn, tmp_path: Path):
    local_key = tmp_path / "master.key"
    data = tmp_path / "data"
    data.mkdir()
    wharf(wharf_bin, env, "encrypt", "--format", "at-rest", "--key", local_key, "--out", data / "x", stdin=b"x")
    proc = wharf(wharf_bin, env, "keys", "rotate", data, "--to", kms_key_arn, check=False)
    assert proc.returncode != 0
    err = proc.stderr.decode()
    assert "--from" in err and "wharf-local" in err, err
