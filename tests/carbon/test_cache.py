"""MetricCache: buffers, carbon's last-wins and size rules, drain order, pop/confirm, Sink."""
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carbon.cache import (
    MaxStrategy,
    MetricCache,
    NaiveStrategy,
    RejectLog,
    Sink,
    SortedStrategy,
    TimeSortedStrategy,
    make_strategy,
)
from carbon.filters import MetricFilter
from carbon.instrumentation import Stats
from carbon.names import MetricIndex


def store(cache, points):
    """points: [(id, ts, value), ...] stored as one batch."""
    ids = np.array([p[0] for p in points], dtype=np.int64)
    ts = np.array([p[1] for p in points], dtype=np.float64)
    vals = np.array([p[2] for p in points], dtype=np.float64)
    return cache.store_many(ids, ts, vals)


def test_points_are_kept_per_metric_in_arrival_order():
    cache = MetricCache()
    store(cache, [(1, 10, 1.0), (2, 10, 5.0), (1, 20, 2.0), (1, 30, 3.0)])
    store(cache, [(2, 20, 6.0)])
    assert cache.size == 5
    assert len(cache) == 2
    assert cache.datapoints(1) == [(10.0, 1.0), (20.0, 2.0), (30.0, 3.0)]
    assert cache.datapoints(2) == [(10.0, 5.0), (20.0, 6.0)]
    ts, vals = cache.pop(1)
    assert ts.tolist() == [10.0, 20.0, 30.0] and vals.tolist() == [1.0, 2.0, 3.0]


def test_metrics_enter_the_cache_in_order_of_first_point():
    cache = MetricCache()
    store(cache, [(9, 1, 0.0), (3, 1, 0.0), (9, 2, 0.0), (5, 1, 0.0)])
    assert cache.pending_ids() == [9, 3, 5]


def test_duplicate_timestamp_last_wins_for_queries_and_counts():
    cache = MetricCache()
    store(cache, [(1, 20, 1.0), (1, 10, 2.0), (1, 20, 3.0)])
    assert cache.datapoints(1) == [(10.0, 2.0), (20.0, 3.0)]
    assert cache.counts() == [(1, 2)]
    ts, vals = cache.pop(1)  # the writer gets arrival order; the store resolves last-wins
    assert ts.tolist() == [20.0, 10.0, 20.0] and vals.tolist() == [1.0, 2.0, 3.0]


def test_single_store_and_unknown_metric():
    cache = MetricCache()
    assert cache.store(4, 100.0, 1.5)
    assert cache.datapoints(4) == [(100.0, 1.5)]
    assert cache.datapoints(99) == []


def test_full_cache_refuses_the_tail_of_a_batch_and_calls_back_below_watermark():
    cache = MetricCache(max_size=4, low_watermark=2)
    woken = []
    cache.space_listeners.append(lambda: woken.append(True))
    refused = store(cache, [(1, t, 0.0) for t in range(3)] + [(2, 0, 1.0), (2, 1, 1.0), (2, 2, 1.0)])
    assert refused == 2
    assert cache.size == 4 and cache.too_full
    assert cache.datapoints(2) == [(0.0, 1.0)]
    assert not cache.store(3, 0.0, 0.0)
    cache.pop(1)
    assert cache.size == 4 and not woken  # popped points still count until confirmed
    cache.confirm(1)
    assert cache.size == 1 and woken == [True] and not cache.too_full


def test_popped_points_stay_visible_until_confirmed():
    cache = MetricCache()
    store(cache, [(1, 10, 1.0), (1, 20, 2.0)])
    cache.pop(1)
    assert not cache.has_pending(1)
    assert cache.datapoints(1) == [(10.0, 1.0), (20.0, 2.0)]
    store(cache, [(1, 20, 9.0), (1, 30, 3.0)])
    assert cache.datapoints(1) == [(10.0, 1.0), (20.0, 9.0), (30.0, 3.0)]
    cache.confirm(1)
    assert cache.datapoints(1) == [(20.0, 9.0), (30.0, 3.0)]
    assert cache.size == 2


def test_restore_puts_points_back_ahead_of_newer_ones():
    cache = MetricCache()
    store(cache, [(1, 10, 1.0), (1, 20, 2.0)])
    cache.pop(1)
    store(cache, [(1, 20, 7.0)])
    cache.restore(1)
    assert cache.size == 3 and cache.inflight_ids() == []
    ts, vals = cache.pop(1)
    assert ts.tolist() == [10.0, 20.0, 20.0] and vals.tolist() == [1.0, 2.0, 7.0]
    assert cache.datapoints(1) == [(10.0, 1.0), (20.0, 7.0)]


def test_double_pop_is_refused():
    cache = MetricCache()
    cache.store(1, 1.0, 1.0)
    cache.pop(1)
    cache.store(1, 2.0, 1.0)
    with pytest.raises(RuntimeError, match="in flight"):
        cache.pop(1)


def test_buffers_grow_past_their_initial_capacity():
    cache = MetricCache()
    for t in range(100):
        cache.store(1, float(t), float(t))
    store(cache, [(1, 100 + t, 0.0) for t in range(50)])
    assert cache.size == 150
    assert [p[0] for p in cache.datapoints(1)] == [float(t) for t in range(150)]


# --- drain strategies ---------------------------------------------------------


def drain(cache, limit=100):
    order = []
    while len(order) < limit:
        metric_id = cache.choose()
        if metric_id is None:
            break
        order.append(metric_id)
        cache.pop(metric_id)
        cache.confirm(metric_id)
    return order


def test_sorted_writes_largest_first_ties_to_the_latest_arrival():
    cache = MetricCache(SortedStrategy())
    store(cache, [(1, 1, 0), (2, 1, 0), (2, 2, 0), (3, 1, 0), (4, 1, 0), (4, 2, 0), (4, 3, 0)])
    assert drain(cache) == [4, 2, 3, 1]


def test_sorted_writes_each_metric_once_per_pass():
    cache = MetricCache(SortedStrategy())
    store(cache, [(1, 1, 0), (2, 1, 0), (2, 2, 0)])
    first = cache.choose()
    cache.pop(first)
    cache.confirm(first)
    store(cache, [(2, t, 0) for t in range(3, 10)])  # 2 now biggest, but already written this pass
    assert first == 2
    assert cache.choose() == 1


def test_max_always_takes_the_biggest_first_in_cache_order_on_ties():
    cache = MetricCache(MaxStrategy())
    store(cache, [(1, 1, 0), (1, 2, 0), (2, 1, 0), (2, 2, 0), (3, 1, 0)])
    assert cache.choose() == 1
    store(cache, [(3, t, 0) for t in range(2, 6)])
    assert cache.choose() == 3


def test_naive_takes_a_snapshot_from_its_end():
    cache = MetricCache(NaiveStrategy())
    store(cache, [(5, 1, 0), (6, 1, 0), (7, 1, 0)])
    assert drain(cache) == [7, 6, 5]


def test_timesorted_oldest_first_and_min_lag():
    now = [1000.0]
    cache = MetricCache(TimeSortedStrategy(min_lag=100, now=lambda: now[0]))
    store(cache, [(1, 950, 0), (2, 500, 0), (3, 800, 0), (3, 700, 0)])
    assert drain(cache) == [2, 3]  # 1 is only 50 s old
    assert cache.choose() is None
    now[0] = 1100.0
    assert drain(cache) == [1]


def test_make_strategy_by_name():
    assert isinstance(make_strategy("sorted"), SortedStrategy)
    assert isinstance(make_strategy("max"), MaxStrategy)
    assert isinstance(make_strategy("naive"), NaiveStrategy)
    assert isinstance(make_strategy("timesorted", 5), TimeSortedStrategy)
    with pytest.raises(ValueError, match="random"):
        make_strategy("random")


class CarbonModel:
    """Carbon 1.1.10's cache as described by its source: a dict of {timestamp: value} per
    metric, where a popped metric leaves the dict and a new point re-adds it at the end,
    and the four strategies choosing over that dict."""

    def __init__(self, strategy):
        self.strategy = strategy
        self.cache = {}
        self.queue = []

    def store(self, metric, ts):
        self.cache.setdefault(metric, {})[ts] = 0.0

    def choose(self):
        if not self.cache:
            return None
        if self.strategy == "max":
            return max(self.cache.items(), key=lambda item: len(item[1]))[0]
        if not self.queue:
            if self.strategy == "sorted":
                counts = sorted(((m, len(p)) for m, p in self.cache.items()), key=lambda x: x[1])
                self.queue = [m for m, _ in counts]
            elif self.strategy == "naive":
                self.queue = list(self.cache)
            else:
                marks = sorted(((m, min(p)) for m, p in self.cache.items()), key=lambda x: x[1],
                               reverse=True)
                self.queue = [m for m, _ in marks]
        return self.queue.pop()

    def pop(self, metric):
        del self.cache[metric]


operations = st.lists(
    st.one_of(
        st.tuples(st.just("store"), st.integers(0, 5), st.integers(0, 6)),
        st.tuples(st.just("drain"), st.just(0), st.just(0)),
    ),
    max_size=60,
)


@pytest.mark.parametrize("name", ["sorted", "max", "naive", "timesorted"])
@settings(max_examples=150, deadline=None)
@given(ops=operations)
def test_drain_order_matches_carbons(name, ops):
    cache = MetricCache(make_strategy(name))
    model = CarbonModel(name)
    for op, metric, ts in ops:
        if op == "store":
            cache.store(metric, float(ts), 0.0)
            model.store(metric, float(ts))
        else:
            ours, theirs = cache.choose(), model.choose()
            assert ours == theirs
            if ours is not None:
                cache.pop(ours)
                cache.confirm(ours)
                model.pop(theirs)
    assert cache.pending_ids() == list(model.cache)
    for metric, points in model.cache.items():
        assert [p[0] for p in cache.datapoints(metric)] == sorted(points)


# --- Sink ------------------------------------------------------------------------


@dataclass
class Reject:
    reason: str
    sample: bytes


@dataclass
class Points:
    ids: np.ndarray
    timestamps: np.ndarray
    values: np.ndarray
    rejects: list = field(default_factory=list)


def batch(index, rows, rejects=()):
    return Points(
        np.array([index.id_for(r[0]) for r in rows], dtype=np.int64),
        np.array([r[1] for r in rows], dtype=np.float64),
        np.array([r[2] for r in rows], dtype=np.float64),
        list(rejects),
    )


class FakeTransport:
    def __init__(self):
        self.paused = False

    def pauseProducing(self):  # noqa: N802
        self.paused = True

    def resumeProducing(self):  # noqa: N802
        self.paused = False


def make_sink(**kwargs):
    index = MetricIndex()
    cache = MetricCache(max_size=kwargs.pop("max_size", float("inf")),
                        low_watermark=kwargs.pop("low_watermark", None))
    stats = Stats()
    sink = Sink(cache, index, stats, reject_log=lambda *a: None, **kwargs)
    return index, cache, stats, sink


def test_sink_counts_received_and_rejected_points():
    index, cache, stats, sink = make_sink()
    sink.accept(batch(index, [("a.b", 10, 1.0), ("a.c", 10, float("nan"))],
                      [Reject("malformed_line", b"junk")]), "peer")
    sink.reject("line_too_long", b"x" * 10, "peer")
    counters = stats.counters
    assert counters["metricsReceived"] == 1
    assert counters["rejected.nan_value"] == 1
    assert counters["rejected.malformed_line"] == 1
    assert counters["rejected.line_too_long"] == 1
    assert cache.datapoints(index.id_for("a.b")) == [(10.0, 1.0)]
    assert cache.datapoints(index.id_for("a.c")) == []


def test_sink_truncates_timestamps_to_the_resolution():
    index, cache, stats, sink = make_sink(min_timestamp_resolution=10)
    sink.accept(batch(index, [("a", 1234.9, 1.0)]), "peer")
    assert cache.datapoints(index.id_for("a")) == [(1230.0, 1.0)]


def test_sink_applies_blacklist_and_whitelist(tmp_path):
    (tmp_path / "whitelist.conf").write_text("^servers\\.\n")
    (tmp_path / "blacklist.conf").write_text("secret\n")
    metric_filter = MetricFilter.from_files(tmp_path / "whitelist.conf", tmp_path / "blacklist.conf")
    index, cache, stats, sink = make_sink(metric_filter=metric_filter)
    rows = [("servers.a", 1, 1.0), ("servers.secret", 1, 1.0), ("apps.a", 1, 1.0),
            ("servers.a", 2, 2.0), ("apps.a", 2, 1.0)]
    sink.accept(batch(index, rows), "peer")
    assert stats.counters["blacklistMatches"] == 1
    assert stats.counters["whitelistRejects"] == 2
    assert stats.counters["metricsReceived"] == 2
    assert cache.pending_ids() == [index.id_for("servers.a")]


def test_flow_control_pauses_when_full_and_resumes_below_watermark():
    index, cache, stats, sink = make_sink(max_size=3, low_watermark=2)
    early, late = FakeTransport(), FakeTransport()
    sink.register_producer(early)
    sink.accept(batch(index, [("a", 1, 1.0), ("a", 2, 1.0), ("b", 1, 1.0), ("b", 2, 1.0)]), "p")
    assert stats.counters["cache.overflow"] == 1
    assert early.paused
    sink.register_producer(late)
    assert late.paused
    metric = cache.choose()
    cache.pop(metric)
    cache.confirm(metric)
    assert not early.paused and not late.paused


def test_without_flow_control_points_are_dropped_but_nobody_paused():
    index, cache, stats, sink = make_sink(max_size=1, use_flow_control=False)
    transport = FakeTransport()
    sink.register_producer(transport)
    sink.accept(batch(index, [("a", 1, 1.0), ("a", 2, 1.0)]), "p")
    assert stats.counters["cache.overflow"] == 1 and not transport.paused


def test_stop_receiving_pauses_for_good():
    index, cache, stats, sink = make_sink(max_size=1, low_watermark=1)
    transport = FakeTransport()
    sink.register_producer(transport)
    sink.stop_receiving()
    assert transport.paused
    sink.accept(batch(index, [("a", 1, 1.0), ("a", 2, 1.0)]), "p")
    metric = cache.choose()
    cache.pop(metric)
    cache.confirm(metric)
    assert transport.paused
    late = FakeTransport()
    sink.register_producer(late)
    assert late.paused
    sink.unregister_producer(late)
    assert late not in sink.producers


def test_reject_log_is_rate_limited():
    clock = [0.0]
    reject_log = RejectLog(period=10, burst=2, now=lambda: clock[0])
    lines = []
    import logging

    class Collect(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())

    handler = Collect()
    logger = logging.getLogger("carbon.cache")
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.INFO)
    try:
        for _ in range(5):
            reject_log("bad_name", b"a..b", "1.2.3.4:5")
        clock[0] = 11.0
        reject_log("bad_name", b"a..b", "1.2.3.4:5")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
    assert len(lines) == 3
    assert "3 more not logged" in lines[-1]


@pytest.mark.parametrize("native", [False, True])
@pytest.mark.parametrize("strategy", ["sorted", "max", "naive", "timesorted"])
def test_pop_many_passes_over_metrics_in_flight(native, strategy):
    cache = MetricCache(make_strategy(strategy), native=native)
    for metric_id in range(5):
        cache.store(metric_id, 100.0, float(metric_id))
    first, *_ = cache.pop_many(2)
    for metric_id in first.tolist():
        cache.store(metric_id, 110.0, 9.0)  # newer points of metrics in flight
    second, *_ = cache.pop_many(10)
    assert sorted(second.tolist()) == sorted(set(range(5)) - set(first.tolist()))
    assert cache.pop_many(10)[0].tolist() == []  # only metrics in flight are left
    cache.confirm_many(first)
    third, _, timestamps, _ = cache.pop_many(10)
    assert sorted(third.tolist()) == sorted(first.tolist()) and set(timestamps.tolist()) == {110.0}
