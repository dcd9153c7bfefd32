"""WhisperStore: the daemon's writer gives whisper.update_many's bytes and whisper.fetch's answers."""
import math
import os
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest
import whisper as reference
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_whisper_strategies import BASE_NOW, METHODS, archive_lists, point_batches

from storage.whisper import CorruptWhisperFile, InvalidConfiguration
from storage.whisper.batch import WhisperStore

SETTINGS = settings(max_examples=100, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def last_arrival_wins(points):
    """What carbon's cache hands whisper: one point per timestamp as received (a float
    stays a float), the latest arrival, sorted by timestamp (carbon.cache's pop)."""
    latest = {}
    for timestamp, value in points:
        latest[timestamp] = value
    return sorted(latest.items(), key=lambda point: point[0])


def fetched(fetch, path, from_time, now):
    """A fetch's answer in comparable form: NaN and None both become None."""
    try:
        result = fetch(path, from_time, now=now)
    except Exception as error:  # noqa: BLE001 - the exception's kind is the answer
        return type(error).__name__
    if result is None:
        return None
    time_info, values = result
    values = list(values.tolist() if isinstance(values, np.ndarray) else values)
    return time_info, repr([None if v is None or math.isnan(v) else v for v in values])


@st.composite
def store_runs(draw):
    archives = draw(archive_lists())
    max_retention = max(s * p for s, p in archives)
    return (archives, draw(st.sampled_from(METHODS)), draw(st.floats(0, 1)),
            draw(st.lists(st.tuples(point_batches(max_retention), st.integers(0, max_retention),
                                    st.booleans()), min_size=1, max_size=5)),
            draw(st.booleans()), draw(st.booleans()))


@SETTINGS
@given(store_runs())
def test_writes_match_whisper_update_many_and_fetches_match(run):
    archives, method, xff, batches, sparse, fallocate = run
    with tempfile.TemporaryDirectory() as directory, WhisperStore(
            max_open_files=2, sparse=sparse, fallocate=fallocate) as store:
        theirs = os.path.join(directory, "reference.wsp")
        mine = os.path.join(directory, "deep", "er", "ours.wsp")
        reference.create(theirs, list(archives), xff, method, sparse, fallocate)
        store.create(mine, tuple(archives), xff, method)
        assert Path(theirs).read_bytes() == Path(mine).read_bytes()
        assert os.path.exists(mine) and store.info(mine) == reference.info(theirs)
        now = BASE_NOW
        for batch, advance, as_float in batches:
            points = [(now - age - fraction, value) for age, value, fraction in batch]
            stamps = np.array([t for t, _ in points], dtype=np.float64 if as_float else np.int64)
            if not as_float:
                points = [(int(t), v) for t, v in points]
            written = store.write(mine, stamps, np.array([v for _, v in points]), now=now)
            deduplicated = last_arrival_wins(points)
            reference.update_many(theirs, deduplicated, now=now)
            assert Path(theirs).read_bytes() == Path(mine).read_bytes()
            max_retention = max(s * p for s, p in archives)
            seconds = {int(t) for t, _ in deduplicated}  # whisper keeps one point per second
            assert written == sum(1 for t in seconds if now - t <= max_retention)
            for from_age in (max_retention * 2, max_retention, max_retention // 2, 0, -5):
                assert fetched(store.fetch, mine, now - from_age, now) == fetched(
                    reference.fetch, theirs, now - from_age, now)
            now += advance


def test_without_duplicates_it_is_exactly_update_many(tmp_path):
    now = BASE_NOW
    points = [(now - 7 * i, float(i)) for i in (5, 3, 40, 1, 2, 90, 4)]
    theirs, mine = str(tmp_path / "a.wsp"), str(tmp_path / "b.wsp")
    reference.create(theirs, [(5, 12), (30, 10), (300, 5)], 0.3, "max")
    with WhisperStore() as store:
        store.create(mine, [(5, 12), (30, 10), (300, 5)], 0.3, "max")
        reference.update_many(theirs, points, now=now)
        assert store.write(mine, np.array([t for t, _ in points]),
                           np.array([v for _, v in points]), now=now) == len(points)
    assert Path(theirs).read_bytes() == Path(mine).read_bytes()


def test_of_equal_timestamps_the_last_arrival_wins(tmp_path):
    with WhisperStore() as store:
        path = tmp_path / "m.wsp"
        store.create(path, [(60, 10)], 0.5, "average")
        store.write(path, np.array([BASE_NOW - 60, BASE_NOW - 60, BASE_NOW - 60.5]),
                    np.array([1.0, 2.0, 3.0]), now=BASE_NOW)
        (_, _, step), values = store.fetch(path, BASE_NOW - 600, now=BASE_NOW)
        assert step == 60
        assert values[-2] == 2.0  # the last arrival for that second; 60.5 truncates to 61


def test_bad_arguments_are_refused(tmp_path):
    with WhisperStore() as store:
        path = tmp_path / "m.wsp"
        store.create(path, [(60, 10)], 0.5, "average")
        with pytest.raises(ValueError, match="not all finite"):
            store.write(path, np.array([math.nan]), np.array([1.0]))
        with pytest.raises(ValueError, match="timestamps for"):
            store.write(path, np.array([1, 2]), np.array([1.0]))
        assert store.write(path, np.array([], dtype=np.int64), np.array([])) == 0
        with pytest.raises(InvalidConfiguration, match="file exists"):
            store.create(path, [(60, 10)], 0.5, "average")
        with pytest.raises(InvalidConfiguration):
            store.create(tmp_path / "x.wsp", [(60, 10), (90, 10)], 0.5, "average")
        assert not (tmp_path / "x.wsp").exists()
        with pytest.raises(ValueError, match="max_open_files=0"):
            WhisperStore(max_open_files=0)


def test_create_makes_missing_folders_again_after_they_are_removed(tmp_path):
    """create() remembers the folders it made (one mkdir each, no failed open first) but
    still works when one is removed behind its back, at any depth."""
    with WhisperStore() as store:
        for round_ in range(2):
            for name in ("a/b/one.wsp", "a/b/two.wsp", "a/c/d/e/three.wsp", "top.wsp"):
                store.create(tmp_path / name, [(60, 10)], 0.5, "sum")
                store.write(tmp_path / name, np.array([BASE_NOW]), np.array([float(round_)]),
                            now=BASE_NOW)
                assert reference.fetch(str(tmp_path / name), BASE_NOW - 60, now=BASE_NOW)[1][-1] == round_
            if round_ == 0:
                store.close()
                shutil.rmtree(tmp_path / "a")
                os.unlink(tmp_path / "top.wsp")
        (tmp_path / "f").write_bytes(b"")  # a file where a folder should be
        with pytest.raises(NotADirectoryError):
            store.create(tmp_path / "f" / "x.wsp", [(60, 10)], 0.5, "sum")


def open_descriptors():
    return len(os.listdir("/proc/self/fd"))


def test_open_descriptors_stay_bounded(tmp_path):
    before = open_descriptors()
    with WhisperStore(max_open_files=3, max_mapped_files=0) as store:  # descriptors only
        for i in range(10):
            store.create(tmp_path / f"{i}.wsp", [(60, 10)], 0.5, "sum")
            store.write(tmp_path / f"{i}.wsp", np.array([BASE_NOW]), np.array([1.0]), now=BASE_NOW)
        for i in range(10):
            assert store.fetch(tmp_path / f"{i}.wsp", BASE_NOW - 120, now=BASE_NOW)[1][-1] == 1.0
            assert open_descriptors() <= before + 3
    assert open_descriptors() == before


def test_a_replaced_file_is_reopened_and_a_removed_one_is_an_error(tmp_path):
    path = tmp_path / "m.wsp"
    with WhisperStore() as store:
        store.revalidate_after = 0
        store.create(path, [(60, 10)], 0.5, "sum")
        store.write(path, np.array([BASE_NOW]), np.array([1.0]), now=BASE_NOW)
        replacement = tmp_path / "m.wsp.new"
        reference.create(str(replacement), [(60, 20)], 0.5, "sum")
        os.replace(replacement, path)  # what whisper-resize does
        store.write(path, np.array([BASE_NOW]), np.array([2.0]), now=BASE_NOW)
        assert store.info(path)["archives"][0]["points"] == 20
        assert reference.fetch(str(path), BASE_NOW - 60, now=BASE_NOW)[1][-1] == 2.0
        os.unlink(path)
        assert not os.path.exists(path)
        with pytest.raises(FileNotFoundError):
            store.write(path, np.array([BASE_NOW]), np.array([3.0]), now=BASE_NOW)


def test_handles_are_trusted_for_revalidate_after_seconds(tmp_path):
    path = tmp_path / "m.wsp"
    with WhisperStore() as store:
        store.revalidate_after = 3600
        store.create(path, [(60, 10)], 0.5, "sum")
        os.replace(reference.create(str(tmp_path / "new.wsp"), [(60, 20)]) or tmp_path / "new.wsp", path)
        assert store.info(path)["archives"][0]["points"] == 10  # still the cached handle
        store.revalidate_after = 0
        assert store.info(path)["archives"][0]["points"] == 20


def test_metadata_changed_in_place_is_noticed(tmp_path):
    theirs, mine = str(tmp_path / "a.wsp"), str(tmp_path / "b.wsp")
    reference.create(theirs, [(60, 10), (300, 10)], 0.5, "average")
    with WhisperStore() as store:
        store.revalidate_after = 0
        store.create(mine, [(60, 10), (300, 10)], 0.5, "average")
        store.write(mine, np.array([BASE_NOW - 60]), np.array([1.0]), now=BASE_NOW)
        reference.update_many(theirs, [(BASE_NOW - 60, 1.0)], now=BASE_NOW)
        for path in (theirs, mine):
            reference.setAggregationMethod(path, "sum", 0.1)
        assert store.info(mine)["aggregationMethod"] == "sum"
        points = [(BASE_NOW - 120, 5.0), (BASE_NOW - 180, 7.0)]
        store.write(mine, np.array([t for t, _ in points]), np.array([v for _, v in points]),
                    now=BASE_NOW)
        reference.update_many(theirs, points, now=BASE_NOW)
    assert Path(theirs).read_bytes() == Path(mine).read_bytes()


def test_corrupt_files_raise_naming_the_path(tmp_path):
    path = tmp_path / "bad.wsp"
    path.write_bytes(b"\x00\x00\x00\x09" + bytes(40))
    with WhisperStore() as store:
        for call in (lambda: store.write(path, np.array([BASE_NOW]), np.array([1.0])),
                     lambda: store.fetch(path, BASE_NOW - 60),
                     lambda: store.info(path)):
            with pytest.raises(CorruptWhisperFile) as caught:
                call()
            assert caught.value.path == str(path)


@pytest.mark.parametrize("caps", [{"max_open_files": 2, "max_mapped_files": 0},
                                  {"max_mapped_files": 2}], ids=["descriptors", "mappings"])
def test_one_writer_and_readers_share_the_store(tmp_path, caps):
    names = [tmp_path / f"m{i}.wsp" for i in range(6)]
    failures = []
    store = WhisperStore(**caps)  # constant eviction while readers hold descriptors or mappings
    for name in names:
        store.create(name, [(1, 120), (10, 60)], 0.0, "sum")
        reference.create(str(name) + ".ref", [(1, 120), (10, 60)], 0.0, "sum")
    stop = threading.Event()

    def read():
        try:
            while not stop.is_set():
                for name in names:
                    result = store.fetch(name, BASE_NOW - 100, now=BASE_NOW)
                    assert result[0][2] == 1 and len(result[1]) == 100
        except Exception as error:  # noqa: BLE001 - reported by the main thread
            failures.append(error)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for reader in readers:
        reader.start()
    try:
        for second in range(100):
            for index, name in enumerate(names):
                stamp = BASE_NOW - 100 + second
                store.write(name, np.array([stamp]), np.array([float(index + second)]), now=BASE_NOW)
                reference.update_many(str(name) + ".ref", [(stamp, float(index + second))], now=BASE_NOW)
    finally:
        stop.set()
        for reader in readers:
            reader.join()
        store.close()
    assert not failures
    for name in names:
        assert name.read_bytes() == Path(str(name) + ".ref").read_bytes()
