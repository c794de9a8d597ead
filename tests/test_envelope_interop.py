"""Interop of Wharf's AWS Encryption SDK messages with AWS's own tools.

Wharf's `wharf encrypt` / `wharf decrypt` against the Python
`aws-encryption-sdk` 3.x and `aws-encryption-cli`, with keys in LocalStack's
KMS (the SDK's KMS keyring) and local master key files (the SDK's raw AES
keyring). Needs LocalStack (`eval "$(localstack/localstack.sh env)"`) and the
built `wharf` binary; scripts/test-all.sh provides both.
"""

import hashlib
import hmac
import os
import shutil
import subprocess
import sys
from pathlib import Path

import aws_encryption_sdk
import botocore.session
import pytest
from aws_encryption_sdk.identifiers import (
    Algorithm,
    CommitmentPolicy,
    EncryptionKeyType,
    WrappingAlgorithm,
)
from aws_encryption_sdk.internal.crypto.wrapping_keys import WrappingKey
from aws_encryption_sdk.key_providers.raw import RawMasterKeyProvider

CONTEXT = {"cluster": "interop", "purpose": "test"}


@pytest.fixture(scope="module")
def env(localstack):
    """The environment for subprocesses: LocalStack as every AWS endpoint."""
    e = dict(os.environ)
    e.setdefault("AWS_ENDPOINT_URL", localstack)
    e["AWS_ENDPOINT_URL_KMS"] = e["AWS_ENDPOINT_URL"]
    e.setdefault("AWS_REGION", "us-east-1")
    e.setdefault("AWS_DEFAULT_REGION", e["AWS_REGION"])
    e.setdefault("AWS_ACCESS_KEY_ID", "test")
    e.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    return e


@pytest.fixture(scope="module")
def client():
    return aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    )


@pytest.fixture(scope="module")
def kms_provider(env, kms_key_arn):
    os.environ.setdefault("AWS_ENDPOINT_URL", env["AWS_ENDPOINT_URL"])
    for k in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(k, env[k])
    return aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(
        key_ids=[kms_key_arn], botocore_session=botocore.session.Session()
    )


def payload(n: int) -> bytes:
    return os.urandom(n)


def wharf(wharf_bin, env, *args, stdin=None, check=True):
    proc = subprocess.run(
        [wharf_bin("wharf"), *args], input=stdin, capture_output=True, env=env, timeout=60
    )
    if check and proc.returncode != 0:
        pytest.fail(f"wharf {' '.join(args)} failed ({proc.returncode}): {proc.stderr.decode()}")
    return proc


def encryption_cli() -> str:
    """aws-encryption-cli from this interpreter's venv, or from PATH."""
    cli = shutil.which("aws-encryption-cli", path=str(Path(sys.executable).parent)) or shutil.which(
        "aws-encryption-cli"
    )
    if not cli:
        pytest.fail("aws-encryption-cli is missing: install scripts/requirements-test.txt or run scripts/test-all.sh")
    return cli


def context_args(ctx):
    out = []
    for k, v in ctx.items():
        out += ["--context", f"{k}={v}"]
    return out


@pytest.mark.parametrize("size,frame", [(0, 4096), (1, 4096), (4096, 4096), (100_000, 4096), (1_048_576, 65536)])
def test_wharf_kms_message_decrypts_with_python_sdk(wharf_bin, env, kms_key_arn, client, kms_provider, size, frame):
    plaintext = payload(size)
    ct = wharf(
        wharf_bin, env, "encrypt", "--key", kms_key_arn, "--frame-length", str(frame),
        *context_args(CONTEXT), stdin=plaintext,
    ).stdout
    assert ct[:3] == b"\x02\x04\x78", "Wharf writes version 2, suite 0x0478"
    pt, header = client.decrypt(source=ct, key_provider=kms_provider)
    assert pt == plaintext
    assert header.algorithm == Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY
    assert header.frame_length == frame
    for k, v in CONTEXT.items():
        assert header.encryption_context[k] == v
    [edk] = header.encrypted_data_keys
    assert edk.key_provider.provider_id == "aws-kms"
    assert edk.key_provider.key_info == kms_key_arn.encode()


@pytest.mark.parametrize(
    "suite",
    [Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384, Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY],
    ids=["0x0578", "0x0478"],
)
@pytest.mark.parametrize("discovery", [False, True], ids=["with-key", "discovery"])
def test_python_sdk_message_decrypts_with_wharf(wharf_bin, env, kms_key_arn, client, kms_provider, suite, discovery):
    plaintext = payload(20_000)
    ct, _ = client.encrypt(
        source=plaintext, key_provider=kms_provider, encryption_context=CONTEXT,
        algorithm=suite, frame_length=4096,
    )
    key = [] if discovery else ["--key", kms_key_arn]
    out = wharf(wharf_bin, env, "decrypt", *key, *context_args(CONTEXT), stdin=ct).stdout
    assert out == plaintext


def test_python_sdk_default_suite_is_the_signed_one(client, kms_provider):
    ct, header = client.encrypt(source=b"x", key_provider=kms_provider)
    assert header.algorithm == Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384
    assert ct[1:3] == b"\x05\x78"


def test_wharf_refuses_a_python_message_with_the_wrong_context(wharf_bin, env, client, kms_provider):
    ct, _ = client.encrypt(source=b"secret", key_provider=kms_provider, encryption_context=CONTEXT)
    proc = wharf(wharf_bin, env, "decrypt", "--context", "purpose=other", stdin=ct, check=False)
    assert proc.returncode != 0
    assert proc.stdout == b""
    assert "wrong encryption context: expected `purpose` = `other`" in proc.stderr.decode()


def test_wharf_refuses_a_tampered_python_message(wharf_bin, env, client, kms_provider):
    ct, _ = client.encrypt(source=payload(10_000), key_provider=kms_provider, encryption_context=CONTEXT)
    bad = bytearray(ct)
    bad[-10] ^= 1  # inside the signature
    proc = wharf(wharf_bin, env, "decrypt", stdin=bytes(bad), check=False)
    assert proc.returncode != 0
    assert "signature does not verify" in proc.stderr.decode()


def test_encryption_cli_decrypts_a_wharf_file(wharf_bin, env, kms_key_arn, tmp_path: Path):
    cli = encryption_cli()
    plaintext = payload(300_000)
    (tmp_path / "plain").write_bytes(plaintext)
    wharf(
        wharf_bin, env, "encrypt", "--key", kms_key_arn, *context_args(CONTEXT),
        "--in", str(tmp_path / "plain"), "--out", str(tmp_path / "wharf.msg"),
    )
    proc = subprocess.run(
        [
            cli, "--decrypt", "--input", str(tmp_path / "wharf.msg"), "--output", str(tmp_path / "out"),
            "--wrapping-keys", f"key={kms_key_arn}", "--encryption-context", *[f"{k}={v}" for k, v in CONTEXT.items()],
            "--commitment-policy", "require-encrypt-require-decrypt", "--max-encrypted-data-keys", "1", "-S",
        ],
        capture_output=True, env=env, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert (tmp_path / "out").read_bytes() == plaintext


def test_wharf_decrypts_an_encryption_cli_file(wharf_bin, env, kms_key_arn, tmp_path: Path):
    cli = encryption_cli()
    plaintext = payload(50_000)
    (tmp_path / "plain").write_bytes(plaintext)
    proc = subprocess.run(
        [
            cli, "--encrypt", "--input", str(tmp_path / "plain"), "--output", str(tmp_path / "cli.msg"),
            "--wrapping-keys", f"key={kms_key_arn}", "--encryption-context", "purpose=cli",
            "--commitment-policy", "require-encrypt-require-decrypt", "-S",
        ],
        capture_output=True, env=env, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    wharf(wharf_bin, env, "decrypt", "--context", "purpose=cli", "--in", str(tmp_path / "cli.msg"),
          "--out", str(tmp_path / "out"))
    assert (tmp_path / "out").read_bytes() == plaintext


# --- local master key files: the SDK's raw AES keyring -----------------------

LOCAL_NAMESPACE = "wharf-local"


def local_key_name(key: bytes) -> bytes:
    """The key name Wharf gives a local key (docs/at-rest-format.md)."""
    return hmac.new(key, b"wharf-local key name v1", hashlib.sha256).hexdigest()[:16].encode()


def raw_aes_provider(key: bytes):
    class Provider(RawMasterKeyProvider):
        provider_id = LOCAL_NAMESPACE

        def _get_raw_key(self, key_id):
            return WrappingKey(
                wrapping_algorithm=WrappingAlgorithm.AES_256_GCM_IV12_TAG16_NO_PADDING,
                wrapping_key=key,
                wrapping_key_type=EncryptionKeyType.SYMMETRIC,
            )

    p = Provider()
    p.add_master_key(local_key_name(key))
    return p


@pytest.fixture
def local_key(tmp_path: Path) -> Path:
    path = tmp_path / "master.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, os.urandom(32))
    os.close(fd)
    return path


@pytest.mark.parametrize("size", [0, 5000, 300_000])
def test_wharf_local_key_message_decrypts_with_python_raw_aes(wharf_bin, env, client, local_key, size):
    plaintext = payload(size)
    ct = wharf(wharf_bin, env, "encrypt", "--key", str(local_key), *context_args(CONTEXT), stdin=plaintext).stdout
    pt, header = client.decrypt(source=ct, key_provider=raw_aes_provider(local_key.read_bytes()))
    assert pt == plaintext
    [edk] = header.encrypted_data_keys
    assert edk.key_provider.provider_id == LOCAL_NAMESPACE
    assert edk.key_provider.key_info.startswith(local_key_name(local_key.read_bytes()))


@pytest.mark.parametrize(
    "suite",
    [Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384, Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY],
    ids=["0x0578", "0x0478"],
)
def test_python_raw_aes_message_decrypts_with_wharf_local_key(wharf_bin, env, client, local_key, suite):
    plaintext = payload(20_000)
    ct, _ = client.encrypt(
        source=plaintext, key_provider=raw_aes_provider(local_key.read_bytes()),
        encryption_context=CONTEXT, algorithm=suite,
    )
    out = wharf(wharf_bin, env, "decrypt", "--key", str(local_key), *context_args(CONTEXT), stdin=ct).stdout
    assert out == plaintext


def test_wharf_refuses_another_local_key(wharf_bin, env, client, local_key, tmp_path: Path):
    ct, _ = client.encrypt(source=b"secret", key_provider=raw_aes_provider(local_key.read_bytes()))
    other = tmp_path / "other.key"
    fd = os.open(other, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, os.urandom(32))
    os.close(fd)
    proc = wharf(wharf_bin, env, "decrypt", "--key", str(other), stdin=ct, check=False)
    assert proc.returncode != 0
    assert proc.stdout == b""
    assert "cannot unwrap the data key" in proc.stderr.decode()
