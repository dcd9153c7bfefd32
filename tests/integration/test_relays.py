"""More real senders against a real ``carbyne serve``: carbon-relay 1.1.10 and graphyte.

carbon-relay is Graphite's own relay from PyPI, run from its own venv (its
top-level ``carbon`` package would shadow ours): ``.ci/run`` builds one at
``.ci/cache/carbon-1.1.10`` when it can, the carbon benchmark keeps one under
``~/.cache/carbyne-bench``, or ``CARBYNE_BENCH_CARBON_VENV`` names one. It forwards
to Carbyne with each destination protocol it has (pickle, its default, and
line). graphyte is the small Python client from PyPI (test extra), over TCP
and UDP, with tags. Points are read back from disk with the reference
``whisper`` module; a test skips, naming why, where its client is missing.
"""
from __future__ import annotations

import hashlib
import socket
import subprocess
import time
from pathlib import Path

import pytest
import whisper

from benchmarks.ingest_workload import installed_carbon_venv, start_carbon_program

from .conftest import free_port, wait_for_port

pytestmark = pytest.mark.integration


def values_on_disk(daemon, metric: str) -> dict[int, float]:
    path = daemon.whisper_dir.joinpath(*metric.split(".")).with_suffix(".wsp")
    if not path.exists():
        return {}
    (start, _, step), values = whisper.fetch(str(path), int(time.time()) - 3600)
    return {start + i * step: v for i, v in enumerate(values) if v is not None}


def wait_for_points(daemon, expected: dict[str, dict[int, float]], timeout: float = 30.0) -> dict:
    """What is on disk for each expected metric, once it all is (or at the deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        found = {m: values_on_disk(daemon, m) for m in expected}
        if all(found[m] == v for m, v in expected.items()) or time.monotonic() > deadline:
            return found
        time.sleep(0.3)


def start_relay(venv: Path, root: Path, destination_port: int, protocol: str) -> tuple[subprocess.Popen, int]:
    """carbon-relay 1.1.10 on 127.0.0.1 forwarding everything to ``destination_port``."""
    conf_dir, storage = root / "conf", root / "storage"
    (storage / "log").mkdir(parents=True, exist_ok=True)
    conf_dir.mkdir(parents=True, exist_ok=True)
    line, pickle_port = free_port(), free_port()
    (conf_dir / "storage-schemas.conf").write_text("[default]\npattern = .*\nretentions = 60:1440\n")
    (conf_dir / "carbon.conf").write_text(f"""[relay]
STORAGE_DIR = {storage}
LOG_DIR = {storage}/log
PID_DIR = {storage}
LINE_RECEIVER_INTERFACE = 127.0.0.1
LINE_RECEIVER_PORT = {line}
PICKLE_RECEIVER_INTERFACE = 127.0.0.1
PICKLE_RECEIVER_PORT = {pickle_port}
RELAY_METHOD = consistent-hashing
REPLICATION_FACTOR = 1
DESTINATIONS = 127.0.0.1:{destination_port}:a
DESTINATION_PROTOCOL = {protocol}
MAX_QUEUE_SIZE = 10000
USE_FLOW_CONTROL = True
CARBON_METRIC_INTERVAL = 0
""")
    proc = start_carbon_program(venv, "carbon-relay.py", conf_dir / "carbon.conf", root)
    try:
        wait_for_port(line, proc)
    except Exception:
        proc.kill()
        proc.wait()
        raise
    return proc, line


@pytest.mark.skipif(installed_carbon_venv() is None, reason="no carbon 1.1.10 venv (.ci/run builds one: pip install carbon==1.1.10)")
@pytest.mark.parametrize("protocol", ["pickle", "line"])
def test_carbon_relay_forwards_into_carbyne(carbyne_daemon, tmp_path, protocol):
    port = carbyne_daemon.pickle_port if protocol == "pickle" else carbyne_daemon.line_port
    relay, relay_port = start_relay(installed_carbon_venv(), tmp_path / "relay", port, protocol)
    now = int(time.time()) // 60 * 60
    expected = {
        f"relayed.{protocol}.host{h}.load": {now - 60 * k: float(h * 10 + k) / 4 for k in range(5)}
        for h in range(3)
    }
    try:
        with socket.create_connection(("127.0.0.1", relay_port)) as sock:
            for metric, points in expected.items():
                for ts, value in points.items():
                    sock.sendall(f"{metric} {value} {ts}\n".encode())
        found = wait_for_points(carbyne_daemon, expected)
    finally:
        relay.terminate()
        relay.wait(timeout=30)
    assert found == expected
    assert carbyne_daemon.proc.poll() is None


def _graphyte():
    return pytest.importorskip("graphyte", reason="graphyte not installed (pip install -e '.[test]')")


@pytest.mark.parametrize("protocol", ["tcp", "udp"])
def test_graphyte_sends_plain_and_tagged_metrics(carbyne_daemon, protocol):
    graphyte = _graphyte()
    now = int(time.time()) // 60 * 60
    sender = graphyte.Sender("127.0.0.1", port=carbyne_daemon.line_port, prefix=f"graphyte.{protocol}",
                             protocol=protocol, interval=None)
    sender.send("requests", 12.5, timestamp=now - 60)
    sender.send("requests", 13, timestamp=now)
    sender.send("latency", 0.25, timestamp=now, tags={"region": "eu", "app": "web"})
    found = wait_for_points(carbyne_daemon, {f"graphyte.{protocol}.requests": {now - 60: 12.5, now: 13.0}})
    assert found[f"graphyte.{protocol}.requests"] == {now - 60: 12.5, now: 13.0}
    # carbon's tagged layout (TAG_HASH_FILENAMES): _tagged/h[:3]/h[3:6]/h.wsp, h = sha256 of the
    # name with its tags sorted
    digest = hashlib.sha256(f"graphyte.{protocol}.latency;app=web;region=eu".encode()).hexdigest()
    tagged = carbyne_daemon.whisper_dir / "_tagged" / digest[:3] / digest[3:6] / f"{digest}.wsp"
    deadline = time.monotonic() + 30
    while not tagged.exists() and time.monotonic() < deadline:
        time.sleep(0.3)
    (_, _, _), values = whisper.fetch(str(tagged), now - 600)
    assert 0.25 in values
