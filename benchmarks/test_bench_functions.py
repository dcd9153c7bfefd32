"""Render functions: Carbyne's numpy functions vs graphite-web 1.1.10's, over the same series.

1,000 series x 360 points (a gap every 13 points) named ``bench.host<h>.cpu<c>``.
Each case first checks both engines give the same names and values, then
times Carbyne with pytest-benchmark and graphite-web with a plain loop (best
of several rounds, each on fresh copies because graphite mutates its
inputs). ``extra_info["ratio"]`` is ``graphite_s / carbyne_s``: how many
times faster Carbyne is.

graphite's ``movingAverage`` always re-evaluates its argument over the
widened window; its timing therefore includes building the 1,000 widened
``TimeSeries`` from already fetched lists (no storage access), while Carbyne
gets the widened series from its evaluator. That is the work each design does
inside the function call.
Run: ``python3 -m pytest benchmarks/test_bench_functions.py``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import pytest

from benchmarks.graphite_web import setup_graphite_web
from render.functions.registry import RequestContext, default_registry
from render.series import Series

SERIES = 1000
POINTS = 360
STEP = 10
END = 1_700_000_000 - 1_700_000_000 % 3600
START = END - POINTS * STEP
WINDOW = 10
ROUNDS = 3


def _values(rng: np.random.Generator, count: int) -> list[float | None]:
    return [None if k % 13 == 5 else float(v) for k, v in enumerate(rng.random(count) * 100)]


@pytest.fixture(scope="module")
def workload() -> dict:
    """Request-window and widened (WINDOW points earlier) values for every series."""
    setup_graphite_web()
    rng = np.random.default_rng(7)
    names = [f"bench.host{i // 100:02d}.cpu{i % 100:02d}" for i in range(SERIES)]
    widened = {name: _values(rng, POINTS + WINDOW) for name in names}
    return {"names": names, "widened": widened, "request": {n: v[WINDOW:] for n, v in widened.items()}}


def _ours(workload: dict, key: str, start: int) -> list[Series]:
    return [
        Series(name, start + STEP, END + STEP, STEP, values, path_expression="bench.*.*")
        for name, values in workload[key].items()
    ]


def _theirs(workload: dict, key: str, start: int) -> list:
    from graphite.render.datalib import TimeSeries

    result = []
    for name, values in workload[key].items():
        series = TimeSeries(name, start + STEP, END + STEP, STEP, list(values))
        series.pathExpression = "bench.*.*"
        result.append(series)
    return result


def _context() -> dict:
    from graphite.util import epoch_to_dt

    return {"startTime": epoch_to_dt(START), "endTime": epoch_to_dt(END), "now": epoch_to_dt(END),
            "localOnly": False, "template": {}, "tzinfo": epoch_to_dt(0).tzinfo, "forwardHeaders": {},
            "sourceIdHeaders": {}, "data": [], "prefetched": {}, "xFilesFactor": 0.0,
            "maxDataPoints": None, "targets": [], "maxStep": None}


def _prefetched(workload: dict) -> dict:
    """graphite's prefetch cache for the widened window, so re-evaluation reads no storage."""
    from graphite.util import epoch_to_dt, timebounds

    window = _context()
    window["startTime"] = epoch_to_dt(START - WINDOW * STEP)
    rows = [(name, ((START - WINDOW * STEP + STEP, END + STEP, STEP), list(values)))
            for name, values in workload["widened"].items()]
    return {timebounds(window): {"bench.*.*": rows}}


def _graphite_best(run: Callable[[], list], prepare: Callable[[], tuple]) -> tuple[float, list]:
    best, result = math.inf, []
    for _ in range(ROUNDS):
        args = prepare()
        began = time.perf_counter()
        result = run(*args)
        best = min(best, time.perf_counter() - began)
    return best, result


def _check(ours: list[Series], theirs: list) -> None:
    assert [s.name for s in ours] == [s.name for s in theirs]
    for mine, other in zip(ours, theirs, strict=True):
        expected = np.array([math.nan if v is None else v for v in other], dtype=np.float64)
        np.testing.assert_allclose(mine.values, expected, rtol=1e-9, equal_nan=True)


def _report(benchmark, graphite_s: float, result_count: int) -> None:
    carbyne_s = benchmark.stats.stats.min
    benchmark.extra_info.update(
        series=SERIES, points=POINTS, results=result_count,
        carbyne_s=carbyne_s, graphite_s=graphite_s, ratio=graphite_s / carbyne_s,
    )


CTX = RequestContext(start=START, end=END, now=END)


def test_sum_series(benchmark, workload: dict) -> None:
    from graphite.render import functions

    series = _ours(workload, "request", START)
    graphite_s, theirs = _graphite_best(
        lambda s: functions.sumSeries(_context(), s), lambda: (_theirs(workload, "request", START),))
    function = default_registry().get("sumSeries")
    ours = benchmark(function, CTX, series)
    _check(ours, theirs)
    _report(benchmark, graphite_s, len(ours))


def test_moving_average(benchmark, workload: dict) -> None:
    from graphite.render import evaluator, functions
    from graphite.render.grammar import grammar

    series = _ours(workload, "request", START)
    widened = _ours(workload, "widened", START - WINDOW * STEP)
    prefetched = _prefetched(workload)

    def run(context: dict, series_list: list) -> list:
        return functions.movingAverage(context, series_list, WINDOW)

    def prepare() -> tuple:
        context = _context()
        context["prefetched"] = prefetched
        context["args"] = [grammar.parseString("bench.*.*")]
        return context, _theirs(workload, "request", START)

    original = evaluator.prefetchData
    evaluator.prefetchData = lambda *args: None
    try:
        graphite_s, theirs = _graphite_best(run, prepare)
    finally:
        evaluator.prefetchData = original
    registry = default_registry()
    ours = benchmark(registry.call, "movingAverage", CTX, [series, WINDOW], None, widened)
    _check(ours, theirs)
    assert ours[0].start == START + STEP
    _report(benchmark, graphite_s, len(ours))


def test_alias_by_node(benchmark, workload: dict) -> None:
    from graphite.render import functions

    series = _ours(workload, "request", START)
    graphite_s, theirs = _graphite_best(
        lambda s: functions.aliasByNode(_context(), s, 1, 2), lambda: (_theirs(workload, "request", START),))
    function = default_registry().get("aliasByNode")
    ours = benchmark(function, CTX, series, 1, 2)
    _check(ours, theirs)
    assert ours[0].name == "host00.cpu00"
    _report(benchmark, graphite_s, len(ours))
