"""native.render_json against its twin and against ``repr``: the JSON datapoints bytes must not move.

The compiled module is imported without a fallback, so a broken build fails
here instead of passing on the slow path.
"""
from __future__ import annotations

import json
import math
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from native import render_json
from render.formats import csv as csv_format
from render.formats import json as json_format
from render.formats import raw as raw_format

SETTINGS = settings(max_examples=400, deadline=None)

FIRST_POWER = -292  # the table holds g for 10**-292 .. 10**324


def _g(power: int) -> int:
    """floor(10**power / 2**r) + 1 with r such that 2**125 < g <= 2**126, in exact integers."""
    if power >= 0:
        log2 = (10**power).bit_length() - 1
    else:
        log2 = -(10**-power).bit_length()
    shift = log2 - 125
    if power >= 0:
        scaled = 10**power >> shift if shift >= 0 else 10**power << -shift
    else:
        scaled = (1 << -shift) // 10**-power
    return scaled + 1


def test_the_json_format_uses_the_compiled_kernel() -> None:
    assert json_format.series_json is render_json.series_json


def test_every_power_of_ten_in_the_table_is_exact() -> None:
    table = render_json.power_of_ten_table()
    assert len(table) == 617
    for index, (high, low) in enumerate(table):
        g = _g(index + FIRST_POWER)
        assert (high, low) == (g >> 63, g & ((1 << 63) - 1)), index + FIRST_POWER


@SETTINGS
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_any_float_is_written_as_repr(value: float) -> None:
    assert render_json.format_float(value) == repr(value)


@SETTINGS
@given(st.integers(0, (1 << 64) - 1))
def test_any_bit_pattern_is_written_as_repr(bits: int) -> None:
    value = struct.unpack("<d", struct.pack("<Q", bits))[0]
    assert render_json.format_float(value) == json_format.value_text(value)


def test_edges_of_the_format_are_written_as_repr() -> None:
    values = [0.0, -0.0, 5e-324, 1e-323, 2.2250738585072014e-308, 2.225073858507201e-308,
              1.7976931348623157e308, 9007199254740991.0, 9007199254740992.0, 9007199254740993.0,
              1e15, 1e16, 1e17, 1e23, 0.1, 0.0001, 0.00001, 123456.789, 1e100, 1.5e-7]
    values += [c * 5e-324 for c in range(1, 2000)]  # subnormals with few digits
    values += [math.ldexp(m, e) for e in range(-1074, 1023) for m in (1.0, 1.5, 0.75)]
    for power in range(-323, 309):  # around every power of ten: the choice between lengths
        exact = float(f"1e{power}")
        values += [exact, math.nextafter(exact, 0.0), math.nextafter(exact, math.inf)]
    values += [i / 100 for i in range(20000)] + [float(i) for i in range(0, 10**7, 997)]
    for value in values:
        for signed in (value, -value):
            assert render_json.format_float(signed) == repr(signed), signed.hex()


def test_missing_and_infinite_values_take_graphites_patched_spelling() -> None:
    assert [render_json.format_float(v) for v in (math.nan, math.inf, -math.inf)] == [
        "null", "1e9999", "-1e9999"]


points_st = st.lists(
    st.one_of(
        st.floats(width=64),
        st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0, 1.0, 1e16, 1e-5]),
    ),
    max_size=60,
)


def _one_series(values: np.ndarray, start: int, step: int, count: int, skip: bool = False) -> bytes:
    """The datapoints text of one series, as series_json writes it (with an empty head)."""
    body = render_json.series_json([b""], [values], np.array([start]), np.array([step]), np.array([count]), skip)
    return body[1:-2] if body != b"[]" else b""


@SETTINGS
@given(points_st, st.integers(-10**12, 10**12), st.sampled_from([1, 10, 60, 86400, 7]),
       st.booleans(), st.integers(0, 10))
def test_datapoints_match_the_twin(values: list[float], start: int, step: int, skip: bool,
                                   short_by: int) -> None:
    array = np.array(values, dtype=np.float64)
    count = max(len(values) - short_by, 0)
    text, written = json_format.datapoints_text_py(array, start, step, count, skip)
    assert _one_series(array, start, step, count, skip) == (text if written or not skip else b"")


@SETTINGS
@given(points_st, st.integers(0, 2**31), st.sampled_from([1, 10, 60]))
def test_datapoints_are_what_graphites_json_dumps_writes(values: list[float], start: int, step: int) -> None:
    array = np.array(values, dtype=np.float64)
    pairs = list(zip(array.tolist(), range(start, start + step * len(values), step), strict=True))
    expected = json.dumps(pairs).replace("NaN,", "null,").replace("Infinity,", "1e9999,")
    assert _one_series(array, start, step, len(values)).decode() == expected


def test_a_count_past_the_values_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot write count=3"):
        json_format.datapoints_text_py(np.zeros(2), 0, 10, 3)


def test_read_only_arrays_are_accepted() -> None:
    array = np.array([1.5, math.nan])
    array.flags.writeable = False
    assert _one_series(array, 10, 10, 2, True) == b"[[1.5, 10]]"


series_st = st.lists(
    st.tuples(st.sampled_from([b'{"target": "a", "tags": {}, "datapoints": ', b"{", b""]), points_st,
              st.integers(-10**6, 10**6), st.sampled_from([1, 60]), st.integers(0, 5)),
    max_size=6,
)


@SETTINGS
@given(series_st, st.booleans())
def test_whole_lists_match_the_twin(series: list, skip: bool) -> None:
    heads = [head for head, *_ in series]
    columns = [np.array(values, dtype=np.float64) for _, values, *_ in series]
    starts = np.array([start for _, _, start, _, _ in series], dtype=np.int64)
    steps = np.array([step for *_, step, _ in series], dtype=np.int64)
    counts = np.array([max(len(c) - short, 0) for c, (*_, short) in zip(columns, series, strict=True)],
                      dtype=np.int64)
    assert render_json.series_json(heads, columns, starts, steps, counts, skip) == \
        json_format.series_json_py(heads, columns, starts, steps, counts, skip)


def test_a_large_list_is_written_whole() -> None:
    """Past the size where the buffer asks for huge pages, nothing changes in the bytes."""
    columns = [np.linspace(0.0, 1.0, 25_000) for _ in range(4)]
    args = ([b"{"] * 4, columns, np.zeros(4, np.int64), np.ones(4, np.int64), np.full(4, 25_000, np.int64))
    assert render_json.series_json(*args) == json_format.series_json_py(*args)


def test_bad_series_lists_are_refused() -> None:
    one = (np.zeros(1, np.int64), np.ones(1, np.int64), np.ones(1, np.int64))
    for kernel in (render_json.series_json, json_format.series_json_py):
        with pytest.raises(ValueError, match="cannot write series=2"):
            kernel([b"{", b"{"], [np.zeros(1)], *one)
        with pytest.raises(ValueError, match="cannot write count=1"):
            kernel([b"{"], [np.zeros(0)], *one)
    with pytest.raises(TypeError, match="contiguous float64"):
        render_json.series_json([b"{"], [np.zeros(4)[::2]], *one)
    with pytest.raises(TypeError, match="not bytes"):
        render_json.series_json(["{"], [np.zeros(1)], *one)


@pytest.mark.parametrize("threads", [2, 3, 8])
def test_lists_written_by_several_threads_are_the_same_bytes(threads: int) -> None:
    """Long enough to be cut into runs; series left empty by noNullPoints at every run's edge."""
    rng = np.random.default_rng(threads)
    columns = [rng.random(rng.integers(1, 3000)) * 10.0 ** rng.integers(-5, 20) for _ in range(60)]
    for index in (0, 1, 2, 29, 30, 31, 58, 59):
        columns[index] = np.full(len(columns[index]), math.nan)
    heads = [f'{{"target": "s{i}", "datapoints": '.encode() for i in range(60)]
    starts = rng.integers(0, 2**31, 60)
    steps = rng.integers(1, 100, 60)
    counts = np.array([len(c) for c in columns], dtype=np.int64)
    for skip in (False, True):
        args = (heads, columns, starts, steps, counts, skip)
        assert render_json.series_json(*args, threads) == json_format.series_json_py(*args)
    assert render_json.series_json(heads[:1], columns[:1], starts[:1], steps[:1], counts[:1], True,
                                   threads) == b"[]"


@SETTINGS
@given(points_st)
def test_raw_values_match_the_twin_and_graphites_repr(values: list[float]) -> None:
    array = np.array(values, dtype=np.float64)
    expected = ",".join(repr(None if math.isnan(v) else v) for v in values).encode()
    assert render_json.raw_values(array) == raw_format.raw_values_py(array) == expected


def test_the_raw_format_uses_the_compiled_kernel() -> None:
    assert raw_format.raw_values is render_json.raw_values


@SETTINGS
@given(points_st, st.sampled_from([b"a.b", b'"a,b""c"', b""]))
def test_csv_rows_match_the_twin(values: list[float], name: bytes) -> None:
    array = np.array(values, dtype=np.float64)
    times = b"".join(b"2024-01-02 03:04:%02d" % (i % 60) for i in range(len(values)))
    assert render_json.csv_rows(name, array, times) == csv_format.csv_rows_py(name, array, times)


def test_csv_rows_need_a_wall_time_per_value() -> None:
    for kernel in (render_json.csv_rows, csv_format.csv_rows_py):
        with pytest.raises(ValueError, match="cannot write count=2"):
            kernel(b"a", np.zeros(2), b"2024-01-02 03:04:05")


def test_the_csv_format_uses_the_compiled_kernel() -> None:
    assert csv_format.csv_rows is render_json.csv_rows
