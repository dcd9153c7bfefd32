"""native.carbon_cache.SeriesTable against its twin carbon.cache.SeriesTablePy, and the
batched drain (pop_many) against carbon's one-metric-at-a-time drain, on both tables."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from native.carbon_cache import SeriesTable  # no fallback: a missing build must fail here

from carbon.cache import MetricCache, SeriesTablePy, make_strategy


def test_the_cache_uses_the_native_table_when_built() -> None:
    assert isinstance(MetricCache().table, SeriesTable)
    assert isinstance(MetricCache(native=False).table, SeriesTablePy)


def ids_of(values) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def snapshot(table) -> dict:
    counts_ids, counts = table.counts()
    earliest_ids, marks = table.earliest()
    rows = {}
    for metric_id in range(8):
        block, increasing = table.rows(metric_id)
        rows[metric_id] = (block.tolist(), increasing)
    return {
        "pending": table.pending_ids().tolist(),
        "counts": (counts_ids.tolist(), counts.tolist()),
        "earliest": (earliest_ids.tolist(), marks.tolist()),
        "flying": table.flying_ids(),
        "sizes": (len(table), table.pending_points, table.flying_points, table.flying_metrics),
        "rows": rows,
        "mask": table.pending_mask(ids_of(range(10))).tolist(),
    }


points = st.lists(st.tuples(st.integers(0, 7), st.integers(0, 5), st.integers(-3, 3)), max_size=12)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("append_many"), points),
        st.tuples(st.just("append"), st.tuples(st.integers(0, 7), st.integers(0, 5), st.integers(0, 3))),
        st.tuples(st.just("pop_many"), st.lists(st.integers(0, 7), max_size=4)),
        st.tuples(st.just("confirm_many"), st.lists(st.integers(0, 9), max_size=4)),
        st.tuples(st.just("restore"), st.integers(0, 9)),
    ),
    max_size=40,
)


def apply(table, op, arg):
    if op == "append_many":
        return table.append_many(ids_of([p[0] for p in arg]), np.array([float(p[1]) for p in arg]),
                                 np.array([float(p[2]) for p in arg]))
    if op == "append":
        return table.append(arg[0], float(arg[1]), float(arg[2]))
    if op == "pop_many":
        offsets, timestamps, values = table.pop_many(ids_of(arg))
        return offsets.tolist(), timestamps.tolist(), values.tolist()
    if op == "confirm_many":
        return table.confirm_many(ids_of(arg))
    return table.restore(arg)


@settings(max_examples=300, deadline=None)
@given(ops=operations)
def test_native_table_matches_its_twin(ops) -> None:
    native, twin = SeriesTable(), SeriesTablePy()
    for op, arg in ops:
        outcomes = []
        for table in (native, twin):
            try:
                outcomes.append(("ok", apply(table, op, arg)))
            except (KeyError, RuntimeError) as exc:
                outcomes.append((type(exc).__name__, None))
        assert outcomes[0] == outcomes[1], (op, arg)
        assert snapshot(native) == snapshot(twin)


@pytest.mark.parametrize("table", [SeriesTable, SeriesTablePy])
def test_refusals(table) -> None:
    t = table()
    with pytest.raises(ValueError, match="not negative"):
        t.append_many(ids_of([1, -1]), np.zeros(2), np.zeros(2))
    with pytest.raises(ValueError, match="timestamps"):
        t.append_many(ids_of([1, 2]), np.zeros(1), np.zeros(2))
    t.append(3, 1.0, 1.0)
    with pytest.raises(RuntimeError, match="twice"):
        t.pop_many(ids_of([3, 3]))
    assert t.pending_ids().tolist() == [3]  # nothing moved
    t.pop_many(ids_of([3]))
    t.append(3, 2.0, 1.0)
    with pytest.raises(RuntimeError, match="in flight"):
        t.pop_many(ids_of([3]))
    with pytest.raises(KeyError):
        t.pop_many(ids_of([4]))


def test_many_metrics_and_long_runs_in_c_memory() -> None:
    table = SeriesTable()
    ids = np.repeat(np.arange(5000, dtype=np.int64), 40)
    stamps = np.tile(np.arange(40, dtype=np.float64), 5000)
    table.append_many(ids, stamps, stamps * 2)
    assert len(table) == 5000 and table.pending_points == 200_000
    chosen = ids_of([4999, 7, 0])
    offsets, timestamps, values = table.pop_many(chosen)
    assert offsets.tolist() == [0, 40, 80, 120]
    assert timestamps[40:80].tolist() == list(range(40)) and values[79] == 78.0
    assert table.confirm_many(chosen) == 120 and table.pending_points == 199_880


store_ops = st.lists(
    st.one_of(
        st.tuples(st.just("store"), st.lists(st.tuples(st.integers(0, 9), st.integers(0, 6)), min_size=1,
                                             max_size=6)),
        st.tuples(st.just("drain"), st.integers(1, 6)),
    ),
    max_size=30,
)


@pytest.mark.parametrize("name", ["sorted", "max", "naive", "timesorted"])
@pytest.mark.parametrize("native", [True, False])
@settings(max_examples=120, deadline=None)
@given(ops=store_ops)
def test_pop_many_drains_in_the_order_choose_and_pop_would(name, native, ops) -> None:
    batched = MetricCache(make_strategy(name), native=native)
    single = MetricCache(make_strategy(name), native=native)
    for op, arg in ops:
        if op == "store":
            ids = ids_of([p[0] for p in arg])
            stamps = np.array([float(p[1]) for p in arg])
            for cache in (batched, single):
                cache.store_many(ids, stamps, stamps)
            continue
        ids, offsets, timestamps, _ = batched.pop_many(arg)
        expected = []
        expected_points = []
        while len(expected) < arg:
            metric_id = single.choose()
            if metric_id is None:
                break
            expected.append(metric_id)
            expected_points.append(single.pop(metric_id)[0].tolist())
        assert ids.tolist() == expected
        assert [timestamps[offsets[k]:offsets[k + 1]].tolist() for k in range(len(ids))] == expected_points
        batched.confirm_many(ids)
        single.confirm_many(ids_of(expected))
    assert batched.pending_ids() == single.pending_ids()


def test_points_arriving_in_an_empty_cache_call_the_arrival_listeners() -> None:
    cache = MetricCache()
    calls = []
    cache.arrival_listeners.append(lambda: calls.append(len(cache)))
    cache.store_many(ids_of([1, 2]), np.ones(2), np.ones(2))
    cache.store_many(ids_of([3]), np.ones(1), np.ones(1))
    assert calls == [2]
    cache.pop_many(10)
    cache.store(4, 1.0, 1.0)
    assert calls == [2, 1]
