"""Starts and stops wharf-broker for the broker tests (imported by test_broker_*.py).

Each broker gets a free port (listen on port 0, read back from its JSON log)
and its own temporary data directory.
"""

import json
import os
import signal
import subprocess
import time
from pathlib import Path


class Broker:
    def __init__(self, binary: str, workdir: Path, config: str = ""):
        self.binary = binary
        self.workdir = Path(workdir)
        self.data_dir = self.workdir / "data"
        self.config_path = self.workdir / "broker.toml"
        self.config_path.write_text(
            'listen = "127.0.0.1:0"\n'
            f'data_dir = "{self.data_dir}"\n'
            "group_initial_rebalance_delay_ms = 300\n" + config
        )
        self.proc = None
        self.port = None
        self.tls_port = None
        self.starts = 0

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"broker-{self.starts}.log"

    def start(self, timeout: float = 30.0) -> "Broker":
        self.starts += 1
        log = open(self.log_path, "wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith("WHARF_")}
        self.proc = subprocess.Popen(
            [self.binary, "--config", str(self.config_path)], stdout=log, stderr=log, env=env
        )
        deadline = time.time() + timeout
        self.port = self.tls_port = None
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"wharf-broker exited: {self.log_path.read_text()}")
            for line in self.log_path.read_text().splitlines():
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                msg = rec.get("fields", {}).get("message", "")
                listen = rec.get("fields", {}).get("listen", "")
                if msg.startswith("wharf-broker listening (plaintext)"):
                    self.port = int(listen.rsplit(":", 1)[1])
                if msg.startswith("wharf-broker listening (TLS)"):
                    self.tls_port = int(listen.rsplit(":", 1)[1])
            if self.port and ("[tls]" not in self.config_path.read_text() or self.tls_port):
                return self
            time.sleep(0.05)
        raise AssertionError(f"wharf-broker did not start: {self.log_path.read_text()}")

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def data_files(self):
        return [p for p in self.data_dir.rglob("*") if p.is_file()]
