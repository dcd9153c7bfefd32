"""Whisper storage against whisper.py 1.1.10: same process, same files, same clock.

Every row runs each API in its default configuration, named in the row:

- whisper.py: `whisper.create(path, archives, xff, method)` (non-sparse: 3.3 MB of zeros
  written per file), `whisper.update_many`, `whisper.fetch` (module flags off).
- `WhisperStore()`: files it creates are fully allocated (fallocate), so they are mapped;
  handles are trusted for `revalidate_after` = 1 s, descriptors capped at half the
  RLIMIT_NOFILE soft limit, mappings at half of vm.max_map_count.
- `storage.whisper.*`: whisper's module API, stateless like whisper's.

Files use carbon's common retention 10s:6h,1m:7d,10m:5y (3.3 MB each) with xFilesFactor
0, so every write propagates through all three archives (the steady state of a dense
metric). The implementations take turns on the same files; every benchmark reads back what
it wrote (or compares with whisper's answer and bytes) before reporting
`extra_info["ratio"]` = whisper's median / ours.

Disk: the 10,000 update files are fully allocated (33 GB); a create round makes and removes
another 33 GB. The create rows run first, before the update files exist.

Files go to pytest's temporary folder; set CARBYNE_BENCH_DIR to put them elsewhere.
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


def fully_allocated(path) -> bool:
    status = os.stat(path)
    return status.st_blocks * 512 >= status.st_size


# ---------------------------------------------------------------- create

class Folders:
    """A fresh empty folder per round of creates; the previous round's is removed first."""

    def __init__(self, parent: Path) -> None:
        self.parent = parent
        self.parent.mkdir(exist_ok=True)
        self.rounds = 0
        self.current: Path | None = None

    def fresh(self):
        self.remove()
        self.rounds += 1
        self.current = self.parent / f"round{self.rounds}"
        self.current.mkdir()
        return (self.current,), {}

    def remove(self) -> None:
        if self.current is not None:
            shutil.rmtree(self.current, ignore_errors=True)
            self.current = None


CREATE_MODES = {"non-sparse (default)": {}, "sparse": {"sparse": True}}
# rounds of ours (whisper: one fewer, its non-sparse round writes 33 GB); sparse creates are
# bound by the filesystem making inodes and vary most between rounds
CREATE_ROUNDS = {"non-sparse (default)": 2, "sparse": 4}


@pytest.fixture(scope="module")
def whisper_create_times(bench_dir, ratio_table):
    """whisper.create's median for 10,000 files per mode (non-sparse writes 33 GB of zeros:
    one round), and a file of each to compare bytes with."""
    results = {}
    for mode, options in CREATE_MODES.items():
        folders = Folders(bench_dir / f"whisper-create-{mode.split()[0]}")

        def create_all(options=options, folders=folders):
            for i in range(FILES):
                whisper.create(str(folders.current / f"m{i}.wsp"), list(RETENTION), 0.5,
                               "average", **options)

        seconds = ratio_table.time_median(create_all, rounds=CREATE_ROUNDS[mode] - 1,
                                          setup=folders.fresh)
        sample = folders.current / f"m{FILES - 1}.wsp"
        results[mode] = (seconds, sample.read_bytes(), fully_allocated(sample))
        folders.remove()
    return results


@pytest.mark.parametrize("mode", list(CREATE_MODES))
@pytest.mark.parametrize("creator", ["WhisperStore.create", "storage.whisper.create"])
def test_create_10000_files(benchmark, ratio_table, bench_dir, whisper_create_times, creator, mode):
    options = CREATE_MODES[mode]
    folders = Folders(bench_dir / f"{creator}-{mode.split()[0]}")

    def ours_round(directory):
        if creator == "WhisperStore.create":
            with WhisperStore(**options) as store:
                for i in range(FILES):
                    store.create(directory / f"m{i}.wsp", RETENTION, 0.5, "average")
        else:
            for i in range(FILES):
                ours.create(str(directory / f"m{i}.wsp"), RETENTION, 0.5, "average", **options)

    benchmark.pedantic(ours_round, setup=folders.fresh, rounds=CREATE_ROUNDS[mode], iterations=1)
    reference, sample, allocated = whisper_create_times[mode]
    assert len(os.listdir(folders.current)) == FILES
    last = folders.current / f"m{FILES - 1}.wsp"
    assert last.read_bytes() == sample  # whisper's bytes
    assert fully_allocated(last) == allocated  # and its allocation
    folders.remove()
    ratio_table.add(benchmark, f"create 10,000 files, {mode}", creator, reference)


# ---------------------------------------------------------------- update_many

@pytest.fixture(scope="module")
def files(bench_dir):
    """10,000 files made by WhisperStore() (fully allocated, so mapped); the first 1,000
    hold six hours of 10 s points (the fetch workload)."""
    directory = bench_dir / "metrics"
    directory.mkdir()
    paths = [str(directory / f"m{i:05d}.wsp") for i in range(FILES)]
    stamps = np.arange(NOW - SIX_HOURS, NOW, 10, dtype=np.int64)
    values = np.sin(stamps / 3000.0)
    with WhisperStore() as store:
        for index, path in enumerate(paths):
            store.create(path, RETENTION, 0.0, "average")
            if index < FETCH_FILES:
                store.write(path, stamps, values, now=NOW)
    yield paths
    shutil.rmtree(directory)


@pytest.fixture(scope="module")
def sparse_files(bench_dir):
    """10,000 sparse files (whisper.create(sparse=True)): the store's descriptor path."""
    directory = bench_dir / "sparse-metrics"
    directory.mkdir()
    paths = [str(directory / f"m{i:05d}.wsp") for i in range(FILES)]
    for path in paths:
        whisper.create(path, list(RETENTION), 0.0, "average", sparse=True)
    yield paths
    shutil.rmtree(directory)


@pytest.fixture(scope="module")
def clock():
    return Clock(NOW)


def last_value(path: str, now: int):
    """The 10 s point at `now`, as whisper reads it."""
    return whisper.fetch(path, now - 10, now, now=now)[1][0]


WRITERS = {
    "WhisperStore() defaults (mapped files, stat each file at most once a second)":
        ("files", {}, None),
    "WhisperStore() with a stat of the path before every write (revalidate_after=0)":
        ("files", {}, 0.0),
    "WhisperStore() defaults on sparse files (pread/pwrite, default descriptor cap)":
        ("sparse_files", {}, None),
    "storage.whisper.update_many": ("files", None, None),
}


@pytest.mark.parametrize("writer", list(WRITERS))
def test_update_many_one_point_into_each_of_10000_files(benchmark, ratio_table, request, clock,
                                                         writer):
    fixture, options, revalidate_after = WRITERS[writer]
    paths = request.getfixturevalue(fixture)
    store = None if options is None else WhisperStore(**options)
    if store is not None and revalidate_after is not None:
        store.revalidate_after = revalidate_after
    one = np.array([1.0])

    def ours_round():
        now = clock.tick()
        if store is None:
            for path in paths:
                ours.update_many(path, [(now, 1.0)], now=now)
        else:
            stamp = np.array([now], dtype=np.int64)
            for path in paths:
                store.write(path, stamp, one, now=now)
        return now

    def reference_round():
        now = clock.tick()
        for path in paths:
            whisper.update_many(path, [(now, 2.0)], now=now)
        clock.reference_now = now

    try:
        if store is not None:
            ours_round()  # warm: open (and map) the files once
        now = benchmark.pedantic(ours_round, rounds=5, iterations=1)
        assert all(last_value(path, now) == 1.0 for path in paths[::97])
        reference = ratio_table.time_median(reference_round, rounds=3)
        assert all(last_value(path, clock.reference_now) == 2.0 for path in paths[::97])
        if store is not None:
            mapped = sum(handle.mapped for handle in store._mappings.values())
            assert mapped == (len(paths) if fixture == "files" else 0)
    finally:
        if store is not None:
            store.close()
    ratio_table.add(benchmark, "update_many, 1 point into each of 10,000 files", writer, reference)


@pytest.mark.parametrize("writer", ["WhisperStore() .write (mapped)", "storage.whisper.update_many"])
def test_update_many_360_points_into_one_file(benchmark, ratio_table, files, writer):
    path = files[-1]
    now = NOW + 7200
    stamps = np.arange(now - 3600, now, 10, dtype=np.int64)
    values = np.cos(stamps / 700.0)
    points = list(zip(stamps.tolist(), values.tolist(), strict=True))
    with WhisperStore() as store:
        if writer.startswith("WhisperStore"):
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


# ---------------------------------------------------------------- fetch

def same_answer(ours_result, reference_result) -> bool:
    (info, values), (reference_info, reference_values) = ours_result, reference_result
    values = [None if v is None or math.isnan(v) else v for v in list(values)]
    return info == reference_info and values == reference_values


@pytest.mark.parametrize("reader", ["WhisperStore() .fetch (numpy, mapped)",
                                    "storage.whisper.fetch (lists)"])
def test_fetch_6_hours_from_1000_files(benchmark, ratio_table, files, reader):
    paths = files[:FETCH_FILES]
    from_time = NOW - SIX_HOURS
    with WhisperStore() as store:
        if reader.startswith("WhisperStore"):
            fetch_one = store.fetch
            for path in paths:
                store.fetch(path, from_time, NOW, now=NOW)  # warm: files mapped
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
