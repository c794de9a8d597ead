"""wharf-broker's TLS listener: kcat over TLS with a CA made in the test,
TLS 1.2 accepted, TLS 1.1 refused."""

import subprocess

import pytest

from test_broker_harness import Broker


def openssl(*args, cwd):
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode()


@pytest.fixture
def certs(tmp_path):
    d = tmp_path / "pki"
    d.mkdir()
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=wharf-test-ca", cwd=d)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=127.0.0.1", cwd=d)
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf", cwd=d)
    return d


@pytest.fixture
def broker(wharf_bin, tmp_path, certs):
    cfg = (f'[tls]\nlisten = "127.0.0.1:0"\ncert = "{certs / "server.pem"}"\n'
           f'key = "{certs / "server.key"}"\n')
    b = Broker(wharf_bin("wharf-broker"), tmp_path, cfg).start()
    assert b.tls_port
    yield b
    b.stop()


def kcat_tls(kcat, broker, certs, *args, input=None):
    r = subprocess.run([kcat, "-b", f"127.0.0.1:{broker.tls_port}", "-X", "security.protocol=ssl",
                        "-X", f"ssl.ca.location={certs / 'ca.pem'}", *args],
                       input=input, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout.decode()


def test_kcat_produces_and_consumes_over_tls(kcat, broker, certs):
    lines = [f"tls-{i}" for i in range(500)]
    kcat_tls(kcat, broker, certs, "-P", "-t", "tls-topic", "-z", "zstd", input="\n".join(lines).encode() + b"\n")
    out = kcat_tls(kcat, broker, certs, "-C", "-t", "tls-topic", "-o", "beginning", "-e", "-f", "%s\\n")
    assert out.split() == lines
    meta = kcat_tls(kcat, broker, certs, "-L")
    assert f"127.0.0.1:{broker.tls_port}" in meta, "Metadata advertises the TLS listener to TLS clients"


def s_client(port, version, certs):
    return subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", version,
                           "-cipher", "DEFAULT:@SECLEVEL=0", "-CAfile", str(certs / "ca.pem")],
                          input=b"", capture_output=True, timeout=30)


def test_tls_1_2_is_accepted_and_tls_1_1_refused(broker, certs):
    ok = s_client(broker.tls_port, "-tls1_2", certs)
    assert ok.returncode == 0 and b"Verify return code: 0 (ok)" in ok.stdout, ok.stderr.decode()
    old = s_client(broker.tls_port, "-tls1_1", certs)
    assert old.returncode != 0
    assert b"Cipher is (NONE)" in old.stdout or b"alert" in old.stderr, old.stdout.decode()
    assert broker.alive()
