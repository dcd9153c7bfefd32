"""The file_* functions on file objects (raw, buffered, BytesIO, GzipFile) and the module flags."""
import fcntl
import gzip
import io
import os
from pathlib import Path

import pytest
import whisper as reference

from storage import whisper as ours
from storage.whisper import file as whisper_file

NOW = 1_600_000_000
ARCHIVES = [(10, 30), (60, 20), (600, 10)]
POINTS = [(NOW - 7 * i, float(i % 13) - 4) for i in range(0, 200, 3)]


def make(path, module=reference, points=POINTS):
    module.create(str(path), list(ARCHIVES), 0.3, "avg_zero")
    module.update_many(str(path), points, now=NOW)


def opener(kind):
    """Open a path for read+write the way a caller of file_* might."""
    if kind == "raw":
        return lambda path: open(path, "r+b", buffering=0)
    return lambda path: open(path, "r+b")


@pytest.mark.parametrize("kind", ["raw", "buffered"])
def test_file_functions_on_real_files_match(tmp_path, kind):
    open_file = opener(kind)
    paths = {}
    for module in (reference, ours):
        target = tmp_path / f"{module.__name__}.wsp"
        source = tmp_path / f"{module.__name__}-source.wsp"
        make(target)
        make(source, points=[(t - 3, v * 2) for t, v in POINTS])
        with open_file(target) as fh:
            module.file_update(fh, 5.0, NOW - 15, now=NOW)
            # unsorted points: file_update_many keeps whatever order it is given
            module.file_update_many(fh, [(NOW - 40, 1.0), (NOW - 2000, 2.0), (NOW - 30, 3.0)], now=NOW)
            fetched = module.file_fetch(fh, NOW - 3000, NOW, now=NOW)
        with open_file(source) as fh_from, open_file(target) as fh_to:
            differences = module.file_diff(fh_from, fh_to, now=NOW)
            module.file_merge(fh_from, fh_to, now=NOW)
        paths[module] = (target.read_bytes(), fetched, differences)
    assert paths[reference] == paths[ours]


def test_file_functions_on_bytesio_match(tmp_path):
    path = tmp_path / "seed.wsp"
    make(path)
    results = []
    for module in (reference, ours):
        buffer = io.BytesIO(path.read_bytes())
        module.file_update(buffer, 9.0, NOW - 5, now=NOW)
        module.file_update_many(buffer, [(NOW - 100, 4.0), (NOW - 50, 3.0)], now=NOW)
        results.append((buffer.getvalue(), module.file_fetch(buffer, NOW - 300, NOW, now=NOW)))
    assert results[0] == results[1]


def test_file_fetch_reads_gzipped_files_as_graphite_web_does(tmp_path):
    path = tmp_path / "m.wsp"
    make(path)
    gzipped = tmp_path / "m.wsp.gz"
    gzipped.write_bytes(gzip.compress(path.read_bytes()))
    answers = []
    for module in (reference, ours):
        with gzip.GzipFile(gzipped, "rb") as fh:
            answers.append(module.file_fetch(fh, NOW - 5000, NOW, now=NOW))
    assert answers[0] == answers[1]
    assert any(value is not None for value in answers[0][1])


@pytest.fixture
def recorded(monkeypatch):
    """Record flock, fsync and fadvise calls made by storage.whisper."""
    calls = []
    real_flock, real_fsync = fcntl.flock, os.fsync
    monkeypatch.setattr(whisper_file.fcntl, "flock",
                        lambda fd, op: (calls.append(("flock", op)), real_flock(fd, op)))
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(("fsync",)), real_fsync(fd)))
    monkeypatch.setattr(os, "posix_fadvise", lambda fd, off, length, advice: calls.append(("fadvise", advice)))
    return calls


def exercise(path):
    ours.create(str(path), list(ARCHIVES))
    ours.update(str(path), 1.0, NOW - 5, now=NOW)
    ours.update_many(str(path), [(NOW - 15, 2.0)], now=NOW)
    ours.setXFilesFactor(str(path), 0.2)
    ours.fetch(str(path), NOW - 100, now=NOW)
    ours.info(str(path))


def test_flags_off_by_default_do_nothing(tmp_path, recorded):
    exercise(tmp_path / "m.wsp")
    assert recorded == []


def test_lock_flag_locks_every_write(tmp_path, recorded, monkeypatch):
    monkeypatch.setattr(ours, "LOCK", True)
    exercise(tmp_path / "m.wsp")
    assert recorded == [("flock", fcntl.LOCK_EX)] * 4  # create, update, update_many, set


def test_autoflush_flag_fsyncs_every_write(tmp_path, recorded, monkeypatch):
    monkeypatch.setattr(ours, "AUTOFLUSH", True)
    exercise(tmp_path / "m.wsp")
    assert recorded == [("fsync",)] * 4


def test_fadvise_flag_advises_random_access_where_whisper_does(tmp_path, recorded, monkeypatch):
    monkeypatch.setattr(ours, "FADVISE_RANDOM", True)
    exercise(tmp_path / "m.wsp")
    assert recorded == [("fadvise", os.POSIX_FADV_RANDOM)] * 3  # create, update, update_many


def test_cache_headers_flag_reuses_headers_until_they_change(tmp_path, monkeypatch):
    reads = []
    real_read_header = whisper_file.read_header
    monkeypatch.setattr(whisper_file, "read_header",
                        lambda fd, name: (reads.append(name), real_read_header(fd, name))[1])
    path = tmp_path / "m.wsp"
    ours.create(str(path), list(ARCHIVES))
    monkeypatch.setattr(ours, "CACHE_HEADERS", True)
    for _ in range(3):
        ours.fetch(str(path), NOW - 100, now=NOW)
        ours.update(str(path), 1.0, NOW - 5, now=NOW)
    assert len(reads) == 1
    assert ours.setAggregationMethod(str(path), "max") == "average"
    assert ours.info(str(path))["aggregationMethod"] == "max"
    replacement = tmp_path / "new.wsp"
    reference.create(str(replacement), [(60, 5)])
    os.replace(replacement, path)
    assert ours.info(str(path))["archives"][0]["points"] == 5
    monkeypatch.setattr(ours, "CACHE_HEADERS", False)
    ours.info(str(path))
    assert len(reads) == 4


def test_create_options_give_whisper_bytes(tmp_path):
    for sparse, fallocate in [(False, False), (True, False), (False, True)]:
        theirs, mine = tmp_path / f"a{sparse}{fallocate}", tmp_path / f"b{sparse}{fallocate}"
        reference.create(str(theirs), [(1, 50_000), (60, 1440)], 0.7, "last", sparse, fallocate)
        ours.create(str(mine), [(1, 50_000), (60, 1440)], 0.7, "last", sparse, fallocate)
        assert Path(theirs).read_bytes() == Path(mine).read_bytes()
        if sparse:
            assert os.stat(mine).st_blocks * 512 < os.stat(mine).st_size
