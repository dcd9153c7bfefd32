"""Whisper storage against whisper.py 1.1.10: same process, same files, same clock.

Files use carbon's common retention 10s:6h,1m:7d,10m:5y (3.3 MB each, created sparse so
10,000 of them fit on disk) with xFilesFactor 0, so every write propagates through all three
archives (the steady state of a dense metric). The implementations take turns on the same
files; every benchmark reads back what it wrote (or compares with whisper's answer) before
reporting `extra_info["ratio"]` = whisper's median / ours.

Files go to pytest's temporary folder; set CARBYNE_BENCH_DIR to put them elsewhere (e.g.
/dev/shm, to take the disk out of the measurement and compare the code alone).
Run: ``python3 -m pytest benchmarks/test_bench_whisper.py``.
"""
from __future__ import annotations

import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import whisper

from storage import whisper as ours
from storage.whisper.batch import WhisperStore

RETENTION = [(10, 2160), (60, 10080), (600, 262800)]  # 10s:6h,1m:7d,10m:5y
FILES = 10_000
FETCH_FILES = 1_000
NOW = 1_700_000_000
SIX_HOURS = 6 * 3600


class Clock:
    """The benchmark's `now`: every round of writes happens 10 s after the previous one."""

    def __init__(self, start: int) -> None:
        self.now = start
        self.reference_now = start  # the last round whisper wrote

    def tick(self) -> int:
        self.now += 10
        return self.now


@pytest.fixture(scope="module")
def bench_dir(tmp_path_factory):
    """Where the benchmark's files live (CARBYNE_BENCH_DIR, else pytest's tmp folder)."""
    parent = os.environ.get("CARBYNE_BENCH_DIR")
    directory = Path(tempfile.mkdtemp(prefix="whisper-bench-", dir=parent)) if parent else \
        tmp_path_factory.mktemp("whisper-bench")
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def files(bench_dir):
    """10,000 files; the first 1,000 hold six hours of 10 s points (the fetch workload)."""
    directory = bench_dir / "metrics"
    directory.mkdir()
    paths = [str(directory / f"m{i:05d}.wsp") for i in range(FILES)]
    stamps = np.arange(NOW - SIX_HOURS, NOW, 10, dtype=np.int64)
    values = np.sin(stamps / 3000.0)
    with WhisperStore(sparse=True) as store:
        for index, path in enumerate(paths):
            store.create(path, RETENTION, 0.0, "average")
            if index < FETCH_FILES:
                store.write(path, stamps, values, now=NOW)
    yield paths
    shutil.rmtree(directory)


@pytest.fixture(scope="module")
def clock():
    return Clock(NOW)


def last_value(path: str, now: int):
    """The 10 s point at `now`, as whisper reads it."""
    return whisper.fetch(path, now - 10, now, now=now)[1][0]


WRITERS = ["WhisperStore (all 10,000 open)", "WhisperStore (default 512 open)",
           "storage.whisper.update_many"]


@pytest.mark.parametrize("writer", WRITERS)
def test_update_many_one_point_into_each_of_10000_files(benchmark, ratio_table, files, clock, writer):
    store = {WRITERS[0]: WhisperStore(max_open_files=FILES), WRITERS[1]: WhisperStore()}.get(writer)
    one = np.array([1.0])

    def ours_round():
        now = clock.tick()
        if store is None:
            for path in files:
                ours.update_many(path, [(now, 1.0)], now=now)
        else:
            stamp = np.array([now], dtype=np.int64)
            for path in files:
                store.write(path, stamp, one, now=now)
        return now

    def reference_round():
        now = clock.tick()
        for path in files:
            whisper.update_many(path, [(now, 2.0)], now=now)
        clock.reference_now = now

    try:
        if store is not None:
            ours_round()  # warm: open (and cache) the descriptors once
        now = benchmark.pedantic(ours_round, rounds=5, iterations=1)
        assert all(last_value(path, now) == 1.0 for path in files[::97])
        reference = ratio_table.time_median(reference_round, rounds=3)
        assert all(last_value(path, clock.reference_now) == 2.0 for path in files[::97])
    finally:
        if store is not None:
            store.close()
    ratio_table.add(benchmark, "update_many, 1 point into each of 10,000 files", writer, reference)


@pytest.mark.parametrize("writer", ["WhisperStore.write", "storage.whisper.update_many"])
def test_update_many_360_points_into_one_file(benchmark, ratio_table, files, writer):
    path = files[-1]
    now = NOW + 7200
    stamps = np.arange(now - 3600, now, 10, dtype=np.int64)
    values = np.cos(stamps / 700.0)
    points = list(zip(stamps.tolist(), values.tolist(), strict=True))
    with WhisperStore() as store:
        if writer == "WhisperStore.write":
            benchmark.pedantic(store.write, args=(path, stamps, values), kwargs={"now": now},
                               rounds=200, iterations=1, warmup_rounds=1)
        else:
            benchmark.pedantic(ours.update_many, args=(path, points), kwargs={"now": now},
                               rounds=100, iterations=1)
    ours_bytes = Path(path).read_bytes()
    assert whisper.fetch(path, now - 3610, now - 10, now=now)[1] == values.tolist()
    reference = ratio_table.time_median(lambda: whisper.update_many(path, points, now=now), rounds=30)
    assert Path(path).read_bytes() == ours_bytes  # whisper rewrote exactly the same bytes
    ratio_table.add(benchmark, "update_many, 360 points into one file", writer, reference)


def same_answer(ours_result, reference_result) -> bool:
    (info, values), (reference_info, reference_values) = ours_result, reference_result
    values = [None if v is None or math.isnan(v) else v for v in list(values)]
    return info == reference_info and values == reference_values


@pytest.mark.parametrize("reader", ["WhisperStore.fetch (numpy)", "storage.whisper.fetch (lists)"])
def test_fetch_6_hours_from_1000_files(benchmark, ratio_table, files, reader):
    paths = files[:FETCH_FILES]
    from_time = NOW - SIX_HOURS
    with WhisperStore(max_open_files=FETCH_FILES) as store:
        if reader.startswith("WhisperStore"):
            fetch_one = store.fetch
            for path in paths:
                store.fetch(path, from_time, NOW, now=NOW)  # warm: descriptors open
        else:
            fetch_one = ours.fetch

        def ours_round():
            return [fetch_one(path, from_time, NOW, now=NOW) for path in paths]

        results = benchmark.pedantic(ours_round, rounds=10, iterations=1)

    def reference_round():
        return [whisper.fetch(path, from_time, NOW, now=NOW) for path in paths]

    reference = ratio_table.time_median(reference_round, rounds=3)
    expected = reference_round()
    assert all(same_answer(got, want) for got, want in zip(results, expected, strict=True))
    # (NOW-6h, NOW] minus the oldest slots the update benchmark may have overwritten since
    assert sum(v is not None for v in expected[0][1]) > SIX_HOURS // 10 - 100
    ratio_table.add(benchmark, "fetch 6 h from 1,000 files", reader, reference)


class Folders:
    """A fresh empty folder per round of creates; the previous round's is removed first."""

    def __init__(self, parent: Path) -> None:
        self.parent = parent
        self.rounds = 0
        self.current: Path | None = None

    def fresh(self):
        if self.current is not None:
            shutil.rmtree(self.current, ignore_errors=True)
        self.rounds += 1
        self.current = self.parent / f"round{self.rounds}"
        self.current.mkdir()
        return (self.current,), {}


def create_with_whisper(directory: Path) -> None:
    for i in range(FILES):
        whisper.create(str(directory / f"m{i}.wsp"), list(RETENTION), 0.5, "average", sparse=True)


@pytest.fixture(scope="module")
def whisper_create_time(bench_dir, ratio_table):
    """whisper.create's median for 10,000 files, measured once for both of our creators,
    and a file it created to compare bytes with."""
    folders = Folders(bench_dir)
    seconds = ratio_table.time_median(lambda: create_with_whisper(folders.current), rounds=2,
                                      setup=folders.fresh)
    sample = (folders.current / f"m{FILES - 1}.wsp").read_bytes()
    shutil.rmtree(folders.current)
    return seconds, sample


@pytest.mark.parametrize("creator", ["WhisperStore.create", "storage.whisper.create"])
def test_create_10000_files(benchmark, ratio_table, bench_dir, whisper_create_time, creator):
    folders = Folders(bench_dir / creator)
    folders.parent.mkdir()

    def ours_round(directory):
        if creator == "WhisperStore.create":
            with WhisperStore(sparse=True) as store:
                for i in range(FILES):
                    store.create(directory / f"m{i}.wsp", RETENTION, 0.5, "average")
        else:
            for i in range(FILES):
                ours.create(str(directory / f"m{i}.wsp"), RETENTION, 0.5, "average", sparse=True)

    benchmark.pedantic(ours_round, setup=folders.fresh, rounds=2, iterations=1)
    reference, sample = whisper_create_time
    assert len(os.listdir(folders.current)) == FILES
    assert (folders.current / f"m{FILES - 1}.wsp").read_bytes() == sample  # whisper's bytes
    shutil.rmtree(folders.parent)
    ratio_table.add(benchmark, "create 10,000 files (sparse)", creator, reference)
