"""native.carbon_parse.parse_pickle_points against its twin, carbon.parse.parse_pickle_py.

The native decoder either returns exactly what the general screened path
returns (and that path has no reject for the frame), or returns None and
leaves the frame to it.
"""
from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carbon.names import BadMetricName, MetricIndex
from carbon.parse import parse_pickle, parse_pickle_py
from native import carbon_parse  # no fallback: a missing build must fail here

NOW = 1_795_422_700.0

names = st.sampled_from(["a.b", "a.b.c", "x;k=v;a=1", "é.ü", "a b", "", "a" * 40, "m{a=\"1\"}"])
raw_names = st.one_of(names, names.map(str.encode), st.integers(-3, 3))
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(2**70), 2**70),
    st.sampled_from([-1, -1.5, 0, 1_700_000_000, 2**32, "12", " 3", "1_0", "x", b"4.5", "nan", None, True]),
)
entries = st.tuples(raw_names, st.tuples(numbers, numbers))
odd_entries = st.one_of(
    entries,
    st.tuples(raw_names, st.lists(numbers, min_size=2, max_size=2)),
    st.tuples(raw_names, numbers),
    st.tuples(raw_names, st.tuples(numbers)),
)


def both(payload: bytes, max_points: int = 1000):
    native_index, python_index = MetricIndex(), MetricIndex()
    native = carbon_parse.parse_pickle_points(payload, native_index, NOW, max_points, BadMetricName)
    python = parse_pickle_py(payload, python_index, NOW, max_points)
    return native, python, native_index, python_index


def assert_same(native, python, native_index, python_index) -> None:
    ids, timestamps, values = native
    assert python.rejects == []
    assert [native_index.name(i) for i in ids.tolist()] == [python_index.name(i) for i in python.ids.tolist()]
    assert timestamps.tobytes() == python.timestamps.tobytes()
    assert values.tobytes() == python.values.tobytes()
    assert ids.dtype == np.int64 and timestamps.dtype == values.dtype == np.float64


@settings(max_examples=300, deadline=None)
@given(frame=st.lists(odd_entries, max_size=12), protocol=st.integers(0, pickle.HIGHEST_PROTOCOL),
       max_points=st.integers(1, 20))
def test_native_result_is_the_twins_or_none(frame, protocol, max_points) -> None:
    try:
        payload = pickle.dumps(frame, protocol=protocol)
    except (ValueError, OverflowError):
        return
    native, python, native_index, python_index = both(payload, max_points)
    if native is None:
        return
    assert_same(native, python, native_index, python_index)


valid_names = st.sampled_from(["a.b", "a.b.c", "x;k=v;a=1", "é.ü", "srv.disk-1.used"])
valid_numbers = st.one_of(st.floats(0, 2**31), st.integers(0, 2**31), st.just(-1))


@settings(max_examples=200, deadline=None)
@given(frame=st.lists(st.tuples(valid_names, st.tuples(valid_numbers, valid_numbers)), max_size=30),
       protocol=st.integers(2, pickle.HIGHEST_PROTOCOL), shared=st.booleans())
def test_plain_binary_frames_take_the_native_path(frame, protocol, shared) -> None:
    if shared and frame:  # one object referenced many times: the pickler memoizes it
        frame = frame + [frame[0]] * 3
    native, python, native_index, python_index = both(pickle.dumps(frame, protocol=protocol))
    assert native is not None
    assert_same(native, python, native_index, python_index)


def test_carbon_relay_frame_is_decoded_natively() -> None:
    frame = [(f"relay.{n}.value", (1_795_423_180.0 + n, 0.5 * n)) for n in range(500)]
    native, python, native_index, python_index = both(pickle.dumps(frame, protocol=2))
    assert native is not None and len(native[0]) == 500
    assert_same(native, python, native_index, python_index)


@pytest.mark.parametrize("frame", [
    [("a.b", (1, float("nan")))],            # reject: nan_value
    [("a b", (1, 2))],                        # reject: bad_name
    [("a.b", (2**40, 2))],                    # reject: bad_timestamp
    [("a.b", (1, 2)), ("a.b", (1, 2, 3))],    # reject: bad_shape
    [("a.b", [1, 2])],                        # a list point: accepted, by the general path
    (("a.b", (1, 2)),),                       # a tuple at the top
    {"a.b": (1, 2)},                          # reject: bad_pickle
])
def test_anything_but_plain_and_valid_is_left_to_the_general_path(frame) -> None:
    native, python, _, _ = both(pickle.dumps(frame, protocol=2))
    assert native is None


def test_too_many_points_is_left_to_the_general_path() -> None:
    payload = pickle.dumps([("a", (1, 2))] * 5, protocol=2)
    native, python, _, _ = both(payload, max_points=4)
    assert native is None and [r.reason for r in python.rejects] == ["too_many_points"]


def test_parse_pickle_returns_the_same_points_either_way() -> None:
    frame = [("a.b", (1_795_422_600, 1.0)), ("c;z=1;y=2", (-1, "2.5")), ("a.b", (1_795_422_610, 3))]
    payload = pickle.dumps(frame, protocol=4)
    fast_index, slow_index = MetricIndex(), MetricIndex()
    fast = parse_pickle(payload, fast_index, NOW)
    slow = parse_pickle_py(payload, slow_index, NOW)
    assert fast.ids.tolist() == slow.ids.tolist() == [0, 1, 0]
    assert fast.timestamps.tolist() == slow.timestamps.tolist() == [1_795_422_600.0, NOW, 1_795_422_610.0]
    assert fast.values.tolist() == slow.values.tolist() == [1.0, 2.5, 3.0]


def test_hostile_pickles_never_reach_the_native_result() -> None:
    import os

    payload = pickle.dumps([("a", (1, 2))], protocol=2)
    hostile = b"cos\nsystem\n(S'true'\ntR." + payload
    native, python, _, _ = both(hostile)
    assert native is None and python.rejects[0].reason == "bad_pickle"
    reduce_payload = pickle.dumps([(os.getcwd, (1, 2))], protocol=2)
    native, python, _, _ = both(reduce_payload)
    assert native is None and python.rejects[0].reason == "bad_pickle"
