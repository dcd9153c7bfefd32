"""Corrupt and truncated files raise CorruptWhisperFile naming the path, and never crash."""
import math
import os
import struct

import numpy as np
import pytest
import whisper as reference
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage import whisper as ours
from storage.whisper.batch import WhisperStore

NOW = 1_600_000_000
ARCHIVES = [(60, 10), (300, 10)]  # header 40 bytes, archives at 40 and 160, file 280 bytes


@pytest.fixture
def valid_bytes(tmp_path):
    path = str(tmp_path / "valid.wsp")
    reference.create(path, list(ARCHIVES), 0.5, "average")
    reference.update_many(path, [(NOW - 60 * i, float(i)) for i in range(12)], now=NOW)
    with open(path, "rb") as handle:
        return handle.read()


def calls(path, store):
    """Every way of touching a file, path-level and through the store."""
    return {
        "info": lambda: ours.info(path),
        "fetch": lambda: ours.fetch(path, NOW - 600, now=NOW),
        "update": lambda: ours.update(path, 1.0, NOW - 30, now=NOW),
        "update_many": lambda: ours.update_many(path, [(NOW - 30, 1.0), (NOW - 900, 2.0)], now=NOW),
        "setXFilesFactor": lambda: ours.setXFilesFactor(path, 0.1),
        "setAggregationMethod": lambda: ours.setAggregationMethod(path, "sum"),
        "diff": lambda: ours.diff(path, path, now=NOW),
        "merge": lambda: ours.merge(path, path, now=NOW),
        "store.write": lambda: store.write(path, np.array([NOW - 30]), np.array([1.0]), now=NOW),
        "store.fetch": lambda: store.fetch(path, NOW - 600, now=NOW),
        "store.info": lambda: store.info(path),
    }


def metadata(aggregation=1, max_retention=3000, xff=0.5, count=2):
    return struct.pack("!2LfL", aggregation, max_retention, xff, count)


def archive_info(offset, step, points):
    return struct.pack("!3L", offset, step, points)


def corruptions(valid):
    body = valid[40:]
    return {
        "empty file": b"",
        "truncated metadata": valid[:15],
        "truncated archive table": valid[:30],
        "truncated data": valid[:200],
        "aggregation type 0": metadata(aggregation=0) + valid[16:],
        "aggregation type 9": metadata(aggregation=9) + valid[16:],
        "xff above 1": metadata(xff=1.5) + valid[16:],
        "xff below 0": metadata(xff=-0.25) + valid[16:],
        "xff NaN": metadata(xff=math.nan) + valid[16:],
        "no archives": metadata(count=0) + valid[16:],
        "absurd archive count": metadata(count=2**32 - 1) + valid[16:],
        "offset past EOF": metadata() + archive_info(40, 60, 10) + archive_info(10**9, 300, 10) + body,
        "archive running past EOF": metadata() + archive_info(40, 60, 10) + archive_info(170, 300, 10) + body,
        "archive inside the header": metadata() + archive_info(4, 60, 10) + archive_info(160, 300, 10) + body,
        "zero seconds per point": metadata() + archive_info(40, 0, 10) + archive_info(160, 300, 10) + body,
        "zero points": metadata() + archive_info(40, 60, 0) + archive_info(160, 300, 10) + body,
        "maxRetention no archive has": metadata(max_retention=10**9) + valid[16:],
    }


CASES = list(corruptions(b"\x00" * 280))


@pytest.mark.parametrize("case", CASES)
def test_each_corruption_raises_corrupt_whisper_file(tmp_path, valid_bytes, case):
    path = str(tmp_path / "bad.wsp")
    with open(path, "wb") as handle:
        handle.write(corruptions(valid_bytes)[case])
    with WhisperStore() as store:
        for name, call in calls(path, store).items():
            with pytest.raises(ours.CorruptWhisperFile) as caught:
                call()
            assert caught.value.path == path, name
            assert path in str(caught.value)


def test_the_valid_file_itself_is_fine(tmp_path, valid_bytes):
    path = str(tmp_path / "good.wsp")
    with open(path, "wb") as handle:
        handle.write(valid_bytes)
    with WhisperStore() as store:
        for call in calls(path, store).values():
            call()


def test_missing_files_raise_os_errors_and_info_returns_none(tmp_path):
    path = str(tmp_path / "missing.wsp")
    assert ours.info(path) is None
    for call in (lambda: ours.fetch(path, 0), lambda: ours.update(path, 1.0),
                 lambda: ours.update_many(path, [(NOW, 1.0)])):
        with pytest.raises(FileNotFoundError):
            call()


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_mangled_file_fails_cleanly(tmp_path, valid_bytes, data):
    """Random byte edits, cuts and extensions: each call succeeds or raises a WhisperException
    (a corrupt header, or a timestamp the mangled file does not cover). Nothing else escapes."""
    content = bytearray(valid_bytes)
    for _ in range(data.draw(st.integers(1, 6))):
        position = data.draw(st.integers(0, len(content) - 1))
        content[position] = data.draw(st.integers(0, 255))
    content = content[:data.draw(st.integers(0, len(content)))] + data.draw(st.binary(max_size=40))
    path = str(tmp_path / "mangled.wsp")
    with open(path, "wb") as handle:
        handle.write(content)
    with WhisperStore() as store:
        for call in calls(path, store).values():
            try:
                call()
            except ours.WhisperException:
                pass
    if os.path.exists(path):
        os.unlink(path)
