"""Real senders against a real ``carbyne serve``: collectd's write_graphite and Etsy's StatsD.

Each client is the packaged program (Debian ``collectd-core``, npm ``statsd``),
started by the test on 127.0.0.1; points are read back from disk with the
reference ``whisper`` module, so the files are also proven readable by Graphite.
``.ci/run`` installs both clients when it can; a test skips, naming why, where
a client is missing.
"""
from __future__ import annotations

import math
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import whisper

from .conftest import REPO, free_port

pytestmark = pytest.mark.integration

COLLECTD = shutil.which("collectd") or "/usr/sbin/collectd"
STATSD_HOME = Path(os.environ.get("CARBYNE_STATSD_HOME", REPO / ".ci" / "cache" / "node_modules" / "statsd"))


def known_values(path: Path) -> list[float]:
    (_, _, _), values = whisper.fetch(str(path), int(time.time()) - 3600)
    return [v for v in values if v is not None]


def wait_until(predicate, timeout: float = 20.0, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def wsp(daemon, metric: str) -> Path:
    return daemon.whisper_dir.joinpath(*metric.split(".")).with_suffix(".wsp")


def run_collectd(tmp_path: Path, port: int, protocol: str, seconds: float) -> str:
    conf = tmp_path / f"collectd-{protocol}.conf"
    conf.write_text(f"""
Hostname "carbyne-test"
FQDNLookup false
Interval 1
BaseDir "{tmp_path}"
PIDFile "{tmp_path}/collectd-{protocol}.pid"
PluginDir "/usr/lib/collectd"
TypesDB "/usr/share/collectd/types.db"
LoadPlugin load
LoadPlugin memory
LoadPlugin write_graphite
<Plugin write_graphite>
  <Node "carbyne">
    Host "127.0.0.1"
    Port "{port}"
    Protocol "{protocol}"
    Prefix "collectd{protocol}."
    StoreRates true
    AlwaysAppendDS false
  </Node>
</Plugin>
""")
    proc = subprocess.Popen([COLLECTD, "-f", "-C", str(conf)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    time.sleep(seconds)
    proc.terminate()
    out, _ = proc.communicate(timeout=10)
    return out.decode(errors="replace")


@pytest.mark.skipif(not os.access(COLLECTD, os.X_OK), reason="collectd not installed (Debian collectd-core)")
@pytest.mark.parametrize("protocol", ["tcp", "udp"])
def test_collectd_write_graphite_lands_on_disk(carbyne_daemon, tmp_path, protocol):
    log = run_collectd(tmp_path, carbyne_daemon.line_port, protocol, seconds=3.5)
    assert carbyne_daemon.stop() == 0, carbyne_daemon.log()
    base = f"collectd{protocol}.carbyne-test"
    load = wsp(carbyne_daemon, f"{base}.load.load.shortterm")
    used = wsp(carbyne_daemon, f"{base}.memory.memory-used")
    assert load.exists(), f"no {load}; collectd said:\n{log}\ncarbyne said:\n{carbyne_daemon.log()}"
    assert known_values(load), "load arrived but no value reads back"
    values = known_values(used)
    assert values and all(v > 0 for v in values)


def statsd_available() -> str | None:
    if not shutil.which("node"):
        return "node is not installed"
    if not (STATSD_HOME / "stats.js").exists():
        return f"npm statsd not installed at {STATSD_HOME} (.ci/run installs it)"
    return None


@pytest.mark.skipif(statsd_available() is not None, reason=str(statsd_available()))
@pytest.mark.parametrize("protocol", ["text", "pickle"])
def test_statsd_graphite_backend_lands_on_disk(carbyne_daemon, tmp_path, protocol):
    statsd_port = free_port()
    config = tmp_path / f"statsd-{protocol}.js"
    config.write_text(
        "{" + f"""graphiteHost: "127.0.0.1", graphitePort: {carbyne_daemon.line_port},
        graphitePicklePort: {carbyne_daemon.pickle_port}, graphiteProtocol: "{protocol}",
        address: "127.0.0.1", port: {statsd_port}, mgmt_address: "127.0.0.1",
        mgmt_port: {free_port()}, flushInterval: 500, backends: ["./backends/graphite"]""" + "}"
    )
    proc = subprocess.Popen(["node", "stats.js", str(config)], cwd=STATSD_HOME,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        time.sleep(1.0)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for i in range(20):
                sock.sendto(b"drv.counter:1|c\ndrv.timer:%d|ms\ndrv.gauge:42|g" % (10 + i),
                            ("127.0.0.1", statsd_port))
                time.sleep(0.05)
        counts = wsp(carbyne_daemon, "stats_counts.drv.counter")
        gauge = wsp(carbyne_daemon, "stats.gauges.drv.gauge")
        timer = wsp(carbyne_daemon, "stats.timers.drv.timer.upper")
        time.sleep(2.0)  # at least two flushes after the last packet
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert carbyne_daemon.stop() == 0, carbyne_daemon.log()
    assert counts.exists(), f"statsd said:\n{out.decode(errors='replace')}\ncarbyne:\n{carbyne_daemon.log()}"
    # every flush lands in the same 60 s slot (last wins): a gauge keeps its value
    assert known_values(gauge)[-1] == 42.0
    upper = known_values(timer)
    assert upper and not math.isnan(upper[-1])
    assert known_values(counts), "counter file has no value"
