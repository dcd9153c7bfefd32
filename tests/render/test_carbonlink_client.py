"""CarbonLink client: bulk cache queries against fake, Carbyne and carbon-cache 1.1.10 servers."""
from __future__ import annotations

import logging
import os
import pickle
import socket
import socketserver
import struct
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from render.carbonlink import CarbonLinkClient, CarbonLinkHost, parse_hosts

REPO = Path(__file__).resolve().parents[2]


def _read_frame(sock: socket.socket) -> bytes | None:
    header = b""
    while len(header) < 4:
        chunk = sock.recv(4 - len(header))
        if not chunk:
            return None
        header += chunk
    (size,) = struct.unpack("!L", header)
    body = b""
    while len(body) < size:
        chunk = sock.recv(size - len(body))
        if not chunk:
            return None
        body += chunk
    return body


def frame(payload: bytes) -> bytes:
    return struct.pack("!L", len(payload)) + payload


class FakeCache:
    """A CarbonLink server in a thread; ``respond(request) -> bytes | None`` (None: hang up)."""

    def __init__(self, respond: Callable[[dict], bytes | None]) -> None:
        self.respond = respond
        self.requests: list[dict] = []
        self.connections = 0
        fake = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                fake.connections += 1
                while True:
                    body = _read_frame(self.request)
                    if body is None:
                        return
                    request = pickle.loads(body)
                    fake.requests.append(request)
                    answer = fake.respond(request)
                    if answer is None:
                        return
                    self.request.sendall(answer)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    @property
    def address(self) -> tuple[str, int]:
        return self.server.server_address[:2]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def bulk_answer(points: dict[str, list]) -> Callable[[dict], bytes]:
    def respond(request: dict) -> bytes:
        by_metric = {m: points.get(m, []) for m in request["metrics"]}
        return frame(pickle.dumps({"datapointsByMetric": by_metric}, protocol=2))

    return respond


@pytest.fixture
def fake_cache() -> Iterator[Callable[..., FakeCache]]:
    started: list[FakeCache] = []

    def start(respond: Callable[[dict], bytes | None]) -> FakeCache:
        server = FakeCache(respond)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def test_bulk_query_returns_points_per_metric(fake_cache) -> None:
    server = fake_cache(bulk_answer({"a.b": [(60.0, 1.5), (70, 2)], "c": [(10, 3.0)]}))
    with CarbonLinkClient([server.address]) as client:
        result = client.cache_query_bulk(["a.b", "missing", "c"])
    assert result == {"a.b": [(60.0, 1.5), (70.0, 2.0)], "missing": [], "c": [(10.0, 3.0)]}
    assert server.requests == [{"type": "cache-query-bulk", "metrics": ["a.b", "missing", "c"]}]


def test_connections_are_reused(fake_cache) -> None:
    server = fake_cache(bulk_answer({"x": [(1, 1)]}))
    with CarbonLinkClient([server.address]) as client:
        for _ in range(5):
            assert client.cache_query("x") == [(1.0, 1.0)]
    assert server.connections == 1
    assert len(server.requests) == 5


def test_large_requests_are_split_into_batches(fake_cache) -> None:
    server = fake_cache(bulk_answer({f"m{i}": [(i, i)] for i in range(25)}))
    with CarbonLinkClient([server.address], batch_size=10) as client:
        result = client.cache_query_bulk(f"m{i}" for i in range(25))
    assert [len(r["metrics"]) for r in server.requests] == [10, 10, 5]
    assert result["m24"] == [(24.0, 24.0)]


def test_points_from_every_host_are_merged(fake_cache) -> None:
    one = fake_cache(bulk_answer({"a": [(10, 1)]}))
    two = fake_cache(bulk_answer({"b": [(20, 2)], "a": [(30, 3)]}))
    with CarbonLinkClient([one.address, two.address]) as client:
        assert client.cache_query_bulk(["a", "b"]) == {"a": [(10.0, 1.0), (30.0, 3.0)], "b": [(20.0, 2.0)]}


def test_error_answer_gives_no_points(fake_cache, caplog) -> None:
    server = fake_cache(lambda r: frame(pickle.dumps({"error": "Invalid request type"}, protocol=2)))
    with caplog.at_level(logging.WARNING), CarbonLinkClient([server.address]) as client:
        assert client.cache_query_bulk(["a"]) == {"a": []}
    assert "Invalid request type" in caplog.text


def test_answer_with_a_global_is_refused(fake_cache, caplog) -> None:
    evil = frame(pickle.dumps({"datapointsByMetric": {"a": [(1, os.getpid)]}}, protocol=2))
    server = fake_cache(lambda r: evil)
    with caplog.at_level(logging.WARNING), CarbonLinkClient([server.address]) as client:
        assert client.cache_query_bulk(["a"]) == {"a": []}
    assert "refused" in caplog.text


def test_oversized_answer_is_refused(fake_cache) -> None:
    server = fake_cache(lambda r: struct.pack("!L", 1 << 30))
    with CarbonLinkClient([server.address], max_response_bytes=1 << 20) as client:
        assert client.cache_query_bulk(["a"]) == {"a": []}


def test_hang_up_mid_answer_gives_no_points(fake_cache) -> None:
    server = fake_cache(lambda r: None)
    with CarbonLinkClient([server.address]) as client:
        assert client.cache_query_bulk(["a"]) == {"a": []}


def test_silent_server_times_out(fake_cache) -> None:
    release = threading.Event()

    def never(request: dict) -> bytes:
        release.wait(5)
        return b""

    server = fake_cache(never)
    try:
        with CarbonLinkClient([server.address], timeout=0.2) as client:
            assert client.cache_query_bulk(["a"]) == {"a": []}
    finally:
        release.set()


def test_failed_host_is_skipped_until_retry_delay(fake_cache) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()  # bound, not listening: connections are refused
        now = [100.0]
        live = fake_cache(bulk_answer({"a": [(1, 1)]}))
        client = CarbonLinkClient([dead, live.address], retry_delay=15, clock=lambda: now[0])
        attempts = []
        original = client._connection

        def counting(pool, deadline):
            attempts.append(pool.host.port)
            return original(pool, deadline)

        client._connection = counting
        assert client.cache_query_bulk(["a"]) == {"a": [(1.0, 1.0)]}
        assert client.cache_query_bulk(["a"]) == {"a": [(1.0, 1.0)]}
        assert attempts.count(dead[1]) == 1
        now[0] += 15
        client.cache_query_bulk(["a"])
        assert attempts.count(dead[1]) == 2
        client.close()


def test_no_hosts_means_no_points() -> None:
    assert CarbonLinkClient([]).cache_query_bulk(["a", "a"]) == {"a": []}


def test_malformed_points_are_dropped(fake_cache) -> None:
    server = fake_cache(bulk_answer({"a": [(1, 2), "junk", (3,), (4, None), (5.5, 6)]}))
    with CarbonLinkClient([server.address]) as client:
        assert client.cache_query("a") == [(1.0, 2.0), (5.5, 6.0)]


def test_parse_hosts() -> None:
    assert parse_hosts(["127.0.0.1:7002", "cache2:7102:b"]) == [
        CarbonLinkHost("127.0.0.1", 7002),
        CarbonLinkHost("cache2", 7102, "b"),
    ]
    for bad in ("nohost", "h:", "h:x", "h:70000", ":1"):
        with pytest.raises(ValueError, match="cannot parse CARBONLINK_HOSTS entry"):
            parse_hosts([bad])


# --- against real servers -------------------------------------------------------------

CARBYNE_CACHE_SERVER = textwrap.dedent(
    """
    import json, sys
    from twisted.internet import reactor
    from carbon.cache import MetricCache
    from carbon.cachequery import CacheQueryFactory, CacheQueryHandler
    from carbon.instrumentation import Stats
    from carbon.names import MetricIndex

    index, cache = MetricIndex(), MetricCache()
    for name, points in json.loads(sys.argv[1]).items():
        metric_id = index.id_for(name)
        for ts, value in points:
            cache.store(metric_id, float(ts), float(value))
    port = reactor.listenTCP(0, CacheQueryFactory(CacheQueryHandler(cache, index, Stats())),
                             interface="127.0.0.1")
    print(port.getHost().port, flush=True)
    reactor.run()
    """
)


def test_against_carbyne_cache_query_server() -> None:
    import json

    points = {"a.b.c": [[60, 1.5], [70, 2.5]], "x;k=v": [[10, 7.0]]}
    proc = subprocess.Popen(
        [sys.executable, "-c", CARBYNE_CACHE_SERVER, json.dumps(points)],
        stdout=subprocess.PIPE, text=True, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        port = int(proc.stdout.readline())
        with CarbonLinkClient([("127.0.0.1", port)], timeout=5) as client:
            result = client.cache_query_bulk(["a.b.c", "x;k=v", "nope"])
        assert sorted(result["a.b.c"]) == [(60.0, 1.5), (70.0, 2.5)]
        assert result["x;k=v"] == [(10.0, 7.0)]
        assert result["nope"] == []
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.integration
def test_against_carbon_cache_1_1_10(tmp_path) -> None:
    from benchmarks import ingest_workload as workload

    venv = workload.installed_carbon_venv()
    if venv is None:
        pytest.skip("no carbon 1.1.10 venv (.ci/run builds one: pip install carbon==1.1.10)")
    # timesorted + a huge MIN_TIMESTAMP_LAG: the writer never takes these points, so they stay cached.
    carbon = workload.start_carbon_cache(
        tmp_path, venv=venv,
        settings="CACHE_WRITE_STRATEGY = timesorted\nMIN_TIMESTAMP_LAG = 100000\n")
    proc, line, query = carbon.proc, carbon.line_port, carbon.cache_query_port
    try:
        now = int(time.time())
        with socket.create_connection(("127.0.0.1", line)) as conn:
            conn.sendall(f"real.a 1.5 {now - 20}\nreal.a 2.5 {now - 10}\nreal.b 4 {now}\n".encode())
        with CarbonLinkClient([("127.0.0.1", query)], timeout=5) as client:
            deadline = time.monotonic() + 20
            while True:
                result = client.cache_query_bulk(["real.a", "real.b", "real.none"])
                if len(result["real.a"]) == 2 or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
        assert sorted(result["real.a"]) == [(now - 20.0, 1.5), (now - 10.0, 2.5)]
        assert result["real.b"] == [(float(now), 4.0)]
        assert result["real.none"] == []
    finally:
        proc.terminate()
        proc.wait(30)
