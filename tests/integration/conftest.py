"""Start a real ``carbyne serve`` on free 127.0.0.1 ports for integration tests."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port free for both TCP and UDP, so one number serves the line listener on both."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"carbyne serve exited early with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


@dataclass
class Daemon:
    proc: subprocess.Popen
    data_dir: Path
    line_port: int
    pickle_port: int
    cache_query_port: int
    log_path: Path
    http_port: int | None = None

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def whisper_dir(self) -> Path:
        return self.data_dir / "whisper"

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM: the daemon flushes its whole cache to disk and exits 0."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_daemon(tmp_path: Path, extra_conf: str = "", render: bool = False) -> Daemon:
    data_dir = tmp_path / "data"
    conf = tmp_path / "carbon.conf"
    conf.write_text("[cache]\nENABLE_UDP_LISTENER = True\nCARBON_METRIC_INTERVAL = 0\n" + extra_conf)
    line, pickle_port, query = free_port(), free_port(), free_port()
    http = free_port() if render else None
    render_flags = ["--http-port", str(http), "--workers", "1"] if render else ["--no-render"]
    log_path = tmp_path / "carbyne.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "carbon.cli", "serve", "--config", str(conf),
         "--data-dir", str(data_dir), "--bind", "127.0.0.1",
         "--line-port", str(line), "--udp-port", str(line),
         "--pickle-port", str(pickle_port), "--cache-query-port", str(query), *render_flags],
        stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    log.close()
    daemon = Daemon(proc, data_dir, line, pickle_port, query, log_path, http)
    try:
        for port in (line, pickle_port, query, *([http] if render else [])):
            wait_for_port(port, proc)
    except Exception:
        daemon.stop()
        raise RuntimeError("carbyne serve did not start:\n" + daemon.log()) from None
    return daemon


@pytest.fixture
def carbyne_daemon(tmp_path):
    daemon = start_daemon(tmp_path)
    yield daemon
    daemon.stop()
