"""The writer enters tagged series in the tag index before creating their files, survives index
failures, closes the index from its own thread; a tagged metric sent to ``carbyne serve`` is
rendered by its own render API through seriesByTag."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from twisted.internet import defer
from twisted.internet.task import Clock

from carbon.cache import MetricCache, make_strategy
from carbon.instrumentation import Stats
from carbon.names import MetricIndex
from carbon.writer import ReloadingRules, Writer, WriterService, WriterSettings
from render.tagquery import TagQueryError
from storage.paths import metric_path
from storage.schemas import StorageRules
from storage.tagindex import TagIndex
from storage.whisper.batch import WhisperStore

REPO = Path(__file__).resolve().parents[2]
NOW = 1_700_000_040


class RecordingIndex:
    """A tag index that records calls, whether the file existed then, and can fail."""

    def __init__(self, data_dir: Path, fail: BaseException | None = None) -> None:
        self.data_dir = data_dir
        self.fail = fail
        self.calls: list[tuple[str, bool]] = []
        self.closed_in: list[str] = []

    def index_tagged_metric(self, name: str) -> bool:
        self.calls.append((name, metric_path(self.data_dir, name).exists()))
        if self.fail is not None:
            raise self.fail
        return True

    def close(self) -> None:
        self.closed_in.append(threading.current_thread().name)


def make_writer(tmp_path: Path, tag_index) -> tuple[Writer, MetricIndex, MetricCache, Clock]:
    clock = Clock()
    clock.advance(NOW)
    names = MetricIndex()
    cache = MetricCache(make_strategy("sorted", now=clock.seconds))
    rules = ReloadingRules(None, None, StorageRules.load)
    writer = Writer(cache, names, WhisperStore(), rules, WriterSettings(data_dir=tmp_path / "whisper"),
                    clock, defer.maybeDeferred, Stats(), lambda *_: None, tag_index)
    return writer, names, cache, clock


def put(names: MetricIndex, cache: MetricCache, name: str, value: float) -> None:
    cache.store(names.id_for(name), float(NOW - 60), value)


def drain(writer: Writer, clock: Clock) -> None:
    writer.start()
    clock.advance(1)
    writer.stop()


def test_new_tagged_files_are_indexed_before_they_are_created(tmp_path) -> None:
    index = TagIndex.in_data_dir(tmp_path)
    writer, names, cache, clock = make_writer(tmp_path, index)
    put(names, cache, "cpu.load;host=h1;dc=east", 1.0)  # canonical: cpu.load;dc=east;host=h1
    put(names, cache, "cpu.load;dc=west;host=h2", 2.0)
    put(names, cache, "plain.metric", 3.0)
    drain(writer, clock)
    assert index.find_series(["name=cpu.load"]) == ["cpu.load;dc=east;host=h1", "cpu.load;dc=west;host=h2"]
    assert index.series_count() == 2  # untagged names are not indexed
    assert metric_path(tmp_path / "whisper", "cpu.load;dc=east;host=h1").is_file()
    index.close()

    recording = RecordingIndex(tmp_path / "whisper")
    writer, names, cache, clock = make_writer(tmp_path, recording)
    put(names, cache, "mem;host=h1", 1.0)
    put(names, cache, "cpu.load;dc=east;host=h1", 5.0)  # its file exists: not indexed again
    drain(writer, clock)
    assert recording.calls == [("mem;host=h1", False)]


@pytest.mark.parametrize("failure", [TagQueryError("cannot parse path='x': bad"), sqlite3.OperationalError("locked")])
def test_index_failures_are_logged_and_the_points_written(tmp_path, caplog, failure) -> None:
    recording = RecordingIndex(tmp_path / "whisper", fail=failure)
    writer, names, cache, clock = make_writer(tmp_path, recording)
    put(names, cache, "disk;host=h1", 7.0)
    with caplog.at_level(logging.WARNING, logger="carbon.writer"):
        drain(writer, clock)
    assert metric_path(tmp_path / "whisper", "disk;host=h1").is_file()
    assert not cache and not cache.inflight_ids()
    assert "cannot index tags of metric=disk;host=h1" in caplog.text


def test_stopping_closes_the_index_on_the_writer_thread(tmp_path) -> None:
    from twisted.python.threadpool import ThreadPool

    recording = RecordingIndex(tmp_path / "whisper")
    clock = Clock()
    pool = ThreadPool(minthreads=1, maxthreads=1, name="test-writer")

    def on_pool(fn, *args):
        # run on the pool thread, wait for it here (the test has no running reactor)
        done = threading.Event()
        outcome: list = []
        pool.callInThread(lambda: (outcome.append(defer.maybeDeferred(fn, *args)), done.set()))
        done.wait(10)
        return outcome[0]

    names = MetricIndex()
    cache = MetricCache(make_strategy("sorted", now=clock.seconds))
    writer = Writer(cache, names, WhisperStore(), ReloadingRules(None, None, StorageRules.load),
                    WriterSettings(data_dir=tmp_path / "whisper"), clock, on_pool, Stats(),
                    lambda *_: None, recording)
    service = WriterService(writer, clock, pool)
    service.startService()
    try:
        stopped = service.stopService()
        clock.advance(1)
        assert stopped.called
    finally:
        if pool.started:
            pool.stop()
    [thread] = recording.closed_in
    assert "test-writer" in thread and thread != threading.main_thread().name


def free_port() -> int:
    while True:
        with socket.socket() as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port


def wait_listening(proc: subprocess.Popen, port: int, log: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise AssertionError("carbyne serve exited early:\n" + log.read_text())
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError("carbyne serve did not listen:\n" + log.read_text()) from None
            time.sleep(0.05)


@pytest.mark.integration
def test_tagged_metric_sent_to_carbyne_serve_is_rendered_by_series_by_tag(tmp_path) -> None:
    data = tmp_path / "data"
    line, http = free_port(), free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "carbon.cli", "serve", "--data-dir", str(data), "--bind", "127.0.0.1",
             "--line-port", str(line), "--pickle-port", "0", "--cache-query-port", "0",
             "--http-interface", "127.0.0.1", "--http-port", str(http), "--workers", "1"],
            stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)},
        )
    try:
        wait_listening(proc, line, log)
        when = int(time.time()) // 60 * 60 - 120
        with socket.create_connection(("127.0.0.1", line)) as conn:
            conn.sendall(f"app.rps;host=web1;dc=east 42 {when}\napp.rps;dc=west;host=web2 7 {when}\n"
                         f"app.plain 1 {when}\n".encode())
        index = TagIndex(data / "tags.db")  # STORAGE_DIR/tags.db, shared with the render API
        deadline = time.monotonic() + 20
        while index.find_series(["name=app.rps"]) != ["app.rps;dc=east;host=web1", "app.rps;dc=west;host=web2"]:
            assert time.monotonic() < deadline, "never indexed:\n" + log.read_text()
            time.sleep(0.1)
        assert index.series_count() == 2
        index.close()
        wait_listening(proc, http, log)
        query = urllib.parse.urlencode({"target": "seriesByTag('dc=east')", "from": "-10min", "format": "json"})
        while True:  # until the writer has put the point on disk
            with urllib.request.urlopen(f"http://127.0.0.1:{http}/render?{query}", timeout=10) as answer:
                body = json.load(answer)
            if body and [42.0, when] in body[0]["datapoints"]:
                break
            assert time.monotonic() < deadline + 20, f"never rendered: {body}\n" + log.read_text()
            time.sleep(0.2)
        assert [s["target"] for s in body] == ["app.rps;dc=east;host=web1"]
        assert body[0]["tags"] == {"dc": "east", "host": "web1", "name": "app.rps"}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
