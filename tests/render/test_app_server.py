"""The render API as a real server: gunicorn workers, ``start_render_server``, ``carbyne render``.

Every server binds 127.0.0.1 on a free port and is stopped by the test that
started it. A tiny CarbonLink cache stands in for the ingest daemon's
cache-query port to show cached points reach ``/render``.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import pickle
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from app_support import write_metric

from render.config import RenderConfig, from_carbon_config, load_render_config
from render.limits import Limits
from render.wsgi import GC_YOUNG_THRESHOLD, ServerUnavailable, app_from_environ, start_render_server

STEP = 60


def get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def wait_until_up(url: str, process: subprocess.Popen, deadline: float = 30.0) -> None:
    """Poll ``url`` until the server answers (gunicorn boots workers after binding)."""
    give_up = time.monotonic() + deadline
    while time.monotonic() < give_up:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}")
        try:
            get(url, timeout=1.0)
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
    raise AssertionError(f"{url} never answered")


class FakeCarbonCache:
    """A cache-query port answering ``cache-query-bulk`` with fixed points (4-byte length + pickle)."""

    def __init__(self, points: dict[str, list[tuple[int, float]]]) -> None:
        self.points = points
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.requests: list[dict] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            while True:
                header = conn.recv(4, socket.MSG_WAITALL)
                if len(header) < 4:
                    return
                (length,) = struct.unpack("!L", header)
                request = pickle.loads(conn.recv(length, socket.MSG_WAITALL))
                self.requests.append(request)
                found = {m: self.points.get(m, []) for m in request.get("metrics", [])}
                body = pickle.dumps({"datapointsByMetric": found}, protocol=2)
                conn.sendall(struct.pack("!L", len(body)) + body)

    def close(self) -> None:
        self.server.close()


@pytest.fixture()
def whisper_dir(tmp_path: Path) -> Path:
    now = int(time.time())
    base = now - now % STEP - 10 * STEP
    write_metric(tmp_path, "srv.load", base, STEP, [1.0] * 5, points=1000, now=now)
    return tmp_path


def _children_soon(pid: int, count: int, timeout: float = 15.0) -> list[str]:
    """The child pids of ``pid`` once there are ``count`` (gunicorn forks its workers one by one)."""
    deadline = time.monotonic() + timeout
    while True:
        children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
        if len(children) >= count or time.monotonic() > deadline:
            return children
        time.sleep(0.1)


def test_start_render_server_serves_with_workers_and_carbonlink(whisper_dir: Path) -> None:
    now = int(time.time())
    cached_at = now - now % STEP - STEP
    cache = FakeCarbonCache({"srv.load": [(cached_at, 42.0)]})
    config = RenderConfig(
        data_dir=whisper_dir, carbonlink_hosts=(f"127.0.0.1:{cache.port}",),
        http_interface="127.0.0.1", http_port=0, workers=2,
    )
    server = start_render_server(config)
    try:
        assert server.port != 0 and server.running()
        wait_until_up(server.url + "/version", server.process)
        status, body = get(server.url + "/render?target=srv.load&from=-15min&format=json")
        assert status == 200
        (series,) = json.loads(body)
        values = {ts: v for v, ts in series["datapoints"]}
        assert values[cached_at] == 42.0
        assert [v for v in values.values() if v == 1.0]
        assert cache.requests and cache.requests[0]["type"] == "cache-query-bulk"
        status, body = get(server.url + "/render?target=sum(&format=json")
        assert status == 400 and "target=sum(" in json.loads(body)["error"]
        assert len(_children_soon(server.process.pid, 2)) >= 2  # the gunicorn workers
    finally:
        assert server.stop() == 0
        cache.close()
    assert not server.running()


def test_start_render_server_fails_at_once_on_a_busy_port(whisper_dir: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        config = RenderConfig(data_dir=whisper_dir, http_interface="127.0.0.1", http_port=port)
        with pytest.raises(ServerUnavailable, match=f"HTTP_PORT={port}"):
            start_render_server(config)


def test_missing_gunicorn_is_a_clear_error(whisper_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gunicorn.app.base", None)
    with pytest.raises(ServerUnavailable, match="gunicorn is not installed"):
        start_render_server(RenderConfig(data_dir=whisper_dir, http_interface="127.0.0.1", http_port=0))


def test_carbyne_render_command_serves_until_sigterm(tmp_path: Path) -> None:
    now = int(time.time())
    write_metric(tmp_path / "storage" / "whisper", "srv.load", now - now % STEP - 600, STEP, [1.0] * 5,
                 points=1000, now=now)
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    command = [
        sys.executable, "-m", "carbon.cli", "render", "--data-dir", str(tmp_path / "storage"),
        "--http-interface", "127.0.0.1", "--http-port", str(port), "--workers", "1", "--no-carbonlink",
    ]
    environment = {**os.environ, "CARBYNE_EVENTS_TOKEN": "s3cret"}
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=environment)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/version", process)
        status, body = get(f"http://127.0.0.1:{port}/metrics/find?query=srv.*")
        assert status == 200 and json.loads(body)[0]["id"] == "srv.load"
        event = json.dumps({"what": "deploy", "tags": ["deploy"]}).encode()
        denied = urllib.request.Request(f"http://127.0.0.1:{port}/events/", data=event, method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(denied, timeout=5)
        assert refused.value.code == 401
        allowed = urllib.request.Request(f"http://127.0.0.1:{port}/events/", data=event, method="POST",
                                         headers={"Authorization": "Bearer s3cret"})
        assert urllib.request.urlopen(allowed, timeout=5).status == 200
        assert (tmp_path / "storage" / "events.db").is_file()
        assert b"s3cret" not in subprocess.run(["ps", "-eo", "args"], capture_output=True).stdout
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr.decode()


def test_carbyne_render_reports_bad_configuration(tmp_path: Path) -> None:
    conf = tmp_path / "carbon.conf"
    conf.write_text("[render]\nHTTP_PORT = not-a-port\n")
    result = subprocess.run(
        [sys.executable, "-m", "carbon.cli", "render", "--config", str(conf)],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "HTTP_PORT" in result.stderr and "Traceback" not in result.stderr


# --- configuration ---------------------------------------------------------------------


def test_render_config_follows_carbon_conf(tmp_path: Path) -> None:
    conf = tmp_path / "carbon.conf"
    conf.write_text(
        f"[cache]\nSTORAGE_DIR = {tmp_path}/storage\nCACHE_QUERY_INTERFACE = 0.0.0.0\nCACHE_QUERY_PORT = 7102\n"
        "[render]\nHTTP_INTERFACE = 127.0.0.1\nHTTP_PORT = 8181\n"
    )
    config = load_render_config(conf)
    assert config.data_dir == tmp_path / "storage" / "whisper"
    assert config.carbonlink_hosts == ("127.0.0.1:7102",)
    assert (config.http_interface, config.http_port) == ("127.0.0.1", 8181)
    assert (config.events_db, config.tags_db) == (tmp_path / "storage" / "events.db", tmp_path / "storage" / "tags.db")


def test_render_config_defaults_and_json_round_trip(tmp_path: Path) -> None:
    from carbon.config import load_config

    config = from_carbon_config(load_config(None, environ={}))
    assert (config.http_interface, config.http_port) == ("0.0.0.0", 8080)
    assert config.carbonlink_hosts == ("127.0.0.1:7002",)
    off = from_carbon_config(dataclasses.replace(load_config(None, environ={}), cache_query_port=0))
    assert off.carbonlink_hosts == ()
    custom = RenderConfig(data_dir=tmp_path, limits=Limits(max_data_points=500), workers=3, time_zone="Europe/Paris",
                          events_db=tmp_path / "e.db", tags_db=tmp_path / "t.db", events_token="s3cret")
    assert RenderConfig.from_json(custom.to_json()) == custom


@pytest.mark.parametrize(
    "changes,needle",
    [
        ({"workers": 0}, "workers=0"),
        ({"http_port": 70000}, "HTTP_PORT=70000"),
        ({"carbonlink_hosts": ("nohost",)}, "CARBONLINK_HOSTS"),
        ({"time_zone": "Mars/Base"}, "TIME_ZONE"),
        ({"max_find_nodes": 0}, "max_find_nodes=0"),
    ],
)
def test_render_config_refuses_bad_values(tmp_path: Path, changes, needle) -> None:
    with pytest.raises(ValueError, match=needle):
        RenderConfig(data_dir=tmp_path, **changes)


def test_app_from_environ(whisper_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CARBYNE_RENDER_CONFIG", raising=False)
    with pytest.raises(ServerUnavailable, match="CARBYNE_RENDER_CONFIG"):
        app_from_environ()
    monkeypatch.setenv("CARBYNE_RENDER_CONFIG", RenderConfig(data_dir=whisper_dir).to_json())
    thresholds = gc.get_threshold()
    try:
        answer = app_from_environ().test_client().get("/metrics/index.json")
        assert answer.get_json() == ["srv.load"]
        # a worker's app collects garbage rarely and leaves what existed at start-up unscanned
        assert gc.get_threshold()[0] == GC_YOUNG_THRESHOLD > thresholds[0]
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


# --- a graphite-web front end with Carbyne in CLUSTER_SERVERS ----------------------------


@pytest.fixture()
def cluster_data(tmp_path: Path) -> Path:
    from app_support import NOW

    base = NOW - 1800
    for i, host in enumerate(("web01", "web02", "db01")):
        values = [None if j % (5 + i) == 0 else 1.5 * j + i for j in range(30)]
        write_metric(tmp_path, f"ref.{host}.cpu.user", base, STEP, values, points=500)
    return tmp_path


def test_graphite_web_front_end_reads_carbyne_as_a_cluster_server(cluster_data: Path, graphite_web) -> None:
    """graphite-web with only a RemoteFinder pointed at Carbyne answers exactly like
    graphite-web reading the same whisper files itself."""
    from app_support import NOW, graphite_http
    from graphite.finders.remote import RemoteFinder
    from graphite.storage import STORE

    server = start_render_server(RenderConfig(data_dir=cluster_data, http_interface="127.0.0.1", http_port=0, workers=1))
    try:
        wait_until_up(server.url + "/version", server.process)
        requests = [
            ("/render", {"target": ["ref.*.cpu.user", "sumSeries(ref.web*.cpu.user)"], "format": "json",
                         "from": str(NOW - 1800), "until": str(NOW), "now": str(NOW), "maxDataPoints": "10"}),
            ("/render", {"target": "ref.db01.cpu.*", "format": "raw",
                         "from": str(NOW - 900), "until": str(NOW), "now": str(NOW)}),
            ("/metrics/find", {"query": "ref.*"}),
            ("/metrics/find", {"query": "ref.web0", "format": "completer"}),
            ("/metrics/expand", {"query": "ref.*.cpu.user"}),
        ]
        with graphite_http(cluster_data) as direct:
            expected = [direct.get(path, params) for path, params in requests]
            STORE.finders = [RemoteFinder(f"127.0.0.1:{server.port}")]
            via_carbyne = [direct.get(path, params) for path, params in requests]
        for (path, params), want, got in zip(requests, expected, via_carbyne, strict=True):
            assert (got.status_code, got.content) == (want.status_code, want.content), (path, params)
            assert want.status_code == 200 and len(want.content) > 20
    finally:
        server.stop()


def test_render_server_stops_when_its_starter_is_killed(whisper_dir: Path, tmp_path: Path) -> None:
    """A render server started by a process that dies (even SIGKILL) frees its port."""
    script = tmp_path / "starter.py"
    script.write_text(
        "import sys, time\n"
        "from render.config import RenderConfig\n"
        "from render.wsgi import start_render_server\n"
        f"server = start_render_server(RenderConfig(data_dir={str(whisper_dir)!r}, "
        "http_interface='127.0.0.1', http_port=0, workers=1))\n"
        "print(server.port, server.process.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    starter = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        port, server_pid = map(int, starter.stdout.readline().split())
        wait_until_up(f"http://127.0.0.1:{port}/version", starter)
    finally:
        starter.kill()
        starter.wait()
    give_up = time.monotonic() + 30
    while time.monotonic() < give_up:
        try:
            os.kill(server_pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        os.kill(server_pid, signal.SIGKILL)
        raise AssertionError("the render server outlived its starter")
    with socket.create_server(("127.0.0.1", port)):
        pass  # the port is free again
