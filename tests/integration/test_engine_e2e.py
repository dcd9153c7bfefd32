"""The whole engine from one command: ``carbyne serve`` ingests and serves /render.

A point is queryable the moment it is accepted (the render workers ask the
daemon's cache over CarbonLink), stays queryable once flushed to disk, and
SIGTERM stops both halves: no render process keeps the HTTP port.
"""
from __future__ import annotations

import json
import socket
import time
import urllib.parse
import urllib.request

import pytest

from .conftest import start_daemon

pytestmark = pytest.mark.integration


def render_json(daemon, target: str, **params) -> list[dict]:
    query = urllib.parse.urlencode({"target": target, "format": "json", "from": "-10min", **params})
    with urllib.request.urlopen(f"{daemon.http_url}/render?{query}", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("application/json")
        return json.loads(response.read())


def send_lines(daemon, text: str) -> None:
    with socket.create_connection(("127.0.0.1", daemon.line_port)) as sock:
        sock.sendall(text.encode())


def poll(fn, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while True:
        result = fn()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.1)


@pytest.fixture
def engine(tmp_path):
    daemon = start_daemon(
        tmp_path,
        extra_conf="[render]\n",
        render=True,
    )
    yield daemon
    daemon.stop()


def test_a_point_renders_from_the_cache_then_from_disk(engine):
    now = int(time.time())
    send_lines(engine, f"e2e.web01.requests 42.5 {now}\ne2e.web02.requests 7 {now}\n")

    def both_present():
        series = render_json(engine, "sumSeries(e2e.*.requests)")
        values = [v for v, _ in series[0]["datapoints"] if v is not None] if series else []
        return series if values else None

    series = poll(both_present)
    assert series, engine.log()
    assert series[0]["target"] == "sumSeries(e2e.*.requests)"
    assert [v for v, _ in series[0]["datapoints"] if v is not None] == [49.5]

    find = urllib.request.urlopen(f"{engine.http_url}/metrics/find?query=e2e.*", timeout=10)
    nodes = json.loads(find.read())
    assert sorted(n["text"] for n in nodes) == ["web01", "web02"]

    assert engine.stop() == 0, engine.log()
    # after the stop, the HTTP port is free again: no render worker outlived the daemon
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", engine.http_port)) != 0


def test_a_bad_target_is_a_400_naming_the_problem(engine):
    query = urllib.parse.urlencode({"target": "sumSeries(a.b", "format": "json"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"{engine.http_url}/render?{query}", timeout=10)
    assert info.value.code == 400
    body = info.value.read().decode()
    assert "sumSeries(a.b" in body and "Traceback" not in body
