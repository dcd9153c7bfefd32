"""Calculate functions (moving windows, EMA, nPercentile) against graphite-web 1.1.10."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle import (
    carbyne_call,
    carbyne_evaluate,
    compare_call,
    compare_target,
    graphite_call,
    graphite_evaluate,
    series_lists,
    stored_data,
)

from render.functions import InputError, RequestContext, default_registry
from render.series import Series

pytestmark = pytest.mark.usefixtures("graphite_web")

CTX = RequestContext(start=0, end=600, now=600)
EXAMPLES = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DATA = {
    "a.b.c": (0, 60, [float(i) if i % 7 else None for i in range(40)]),
    "a.x.c": (0, 60, [float(i * i % 13) if i % 5 else None for i in range(40)]),
    "a.y.d": (0, 120, [float(i) if i % 4 else None for i in range(20)]),
}
WINDOWS = [(600, 1800), (630, 1795), (0, 600)]

TARGETS = [
    "movingAverage(a.*.c,3)",
    'movingAverage(a.*.c,"5min")',
    "movingAverage(a.*.c,4,0.5)",
    "movingSum(a.*.c,4)",
    "movingMin(a.*.c,2)",
    'movingMax(a.y.d,"7min")',
    "movingMedian(a.*.c,4)",
    "movingAverage(a.*.c,0)",
    "movingAverage(a.*.c,100)",
    "movingAverage(a.*.c,1)",
    'movingAverage(group(a.*.c,a.y.d),"3min")',
    "movingAverage(group(a.*.c,a.y.d),2)",
    'movingWindow(a.*.c,4,"median")',
    'movingWindow(a.*.c,3,"multiply")',
    'movingWindow(a.*.c,3,"avg_zero")',
    'movingWindow(a.*.c,3,"diff")',
    'movingWindow(a.*.c,3,"count")',
    'movingWindow(a.*.c,3,"rangeOf")',
    'movingWindow(a.*.c,3,"stddev",0.6)',
    'movingWindow(a.*.c,"4min","last")',
    "movingAverage(nothing.*,3)",
    "exponentialMovingAverage(a.*.c,3)",
    'exponentialMovingAverage(a.*.c,"3min")',
    "exponentialMovingAverage(a.y.d,1)",
    "exponentialMovingAverage(nothing.*,3)",
    "nPercentile(a.*.c,50)",
    "nPercentile(a.*.c,95)",
    "nPercentile(a.y.d,100)",
    'movingAverage(timeShift(a.b.c,"5min"),3)',
    'timeShift(movingAverage(a.b.c,3),"5min")',
    "movingAverage(movingSum(a.b.c,2),3)",
    "sumSeries(movingAverage(a.*.c,2))",
    "movingAverage(sumSeries(a.*.c),2)",
]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("window", WINDOWS, ids=str)
def test_targets(target: str, window: tuple[int, int]) -> None:
    compare_target(target, *window, DATA)


@EXAMPLES
@given(stored_data(), st.sampled_from(['movingAverage(a.*.*,3)', 'movingMax(a.*.*,"5min")',
                                       'movingWindow(a.*.*,4,"median",0.5)', 'exponentialMovingAverage(a.*.*,4)',
                                       'exponentialMovingAverage(a.*.*,"5min")', 'movingSum(a.*.*,2)']),
       st.integers(0, 1200), st.integers(60, 1800))
def test_generated_stores(data: dict, target: str, start: int, length: int) -> None:
    compare_target(target, start, start + length, data)


@EXAMPLES
@given(series_lists(min_series=1), st.sampled_from([1, 25, 50, 99.9, 100]))
def test_n_percentile_generated(series: list[Series], n: float) -> None:
    compare_call("nPercentile", CTX, [series, n])


def test_windows_are_planned_from_the_largest_step() -> None:
    registry = default_registry()
    assert registry.window("movingAverage", [None, 5], {}, CTX, 60) == (300, 0)
    assert registry.window("movingAverage", [None, "1h"], {}, CTX, 60) == (3600, 0)
    assert registry.window("movingWindow", [None, "-10min", "max"], {}, CTX, 60) == (600, 0)
    assert registry.window("exponentialMovingAverage", [None, 3], {}, CTX, 120) == (360, 0)
    assert registry.window("nPercentile", [None, 50], {}, CTX, 60) is None


def test_without_widened_data_the_request_window_is_used() -> None:
    series = Series("a.b.c", 60, 660, 60, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    [result] = carbyne_call("movingAverage", CTX, [[series], 2])
    assert (result.start, result.to_list()) == (180, [2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.5, 9.5])
    [widened] = carbyne_call("movingAverage", CTX, [[series], 2], widened=[series.copy(start=-60)])
    assert widened.start == 60


def test_moving_window_rejects_deprecated_function_names() -> None:
    with pytest.raises(InputError, match="sumSeries"):
        carbyne_call("movingWindow", CTX, [[], 3, "sumSeries"])


def test_bad_window_size_is_an_input_error() -> None:
    with pytest.raises(InputError, match="cannot call movingAverage windowSize='abc': not an integer or interval"):
        carbyne_call("movingAverage", CTX, [[], "abc"])


@pytest.mark.parametrize("n", [0, -5, 101])
def test_n_percentile_range(n: float) -> None:
    """graphite asserts n != 0 (HTTP 500) and reads out of range beyond 100."""
    with pytest.raises(InputError, match=f"cannot call nPercentile n={float(n)!r}"):
        carbyne_call("nPercentile", CTX, [[Series("a", 0, 60, 60, [1])], n])
    if n == 0:
        with pytest.raises(AssertionError):
            graphite_call("nPercentile", CTX, [[Series("a", 0, 60, 60, [1])], n])


@pytest.mark.parametrize(
    "target",
    [
        "holtWintersForecast(removeEmptySeries(a.b.c),'10min','2min')",
        "holtWintersConfidenceBands(removeEmptySeries(a.b.c),3,'10min','2min')",
        "holtWintersConfidenceArea(removeEmptySeries(a.b.c),3,'10min','2min')",
    ],
)
def test_bootstrap_evaluated_even_when_empty_over_the_request(target: str) -> None:
    """graphite forecasts every series its re-evaluation over the bootstrap window gives, whether or
    not the argument had series over the request window (found by the differential fuzzer)."""
    data = {"a.b.c": (0, 60, [9.0, 2.0, 5.0] * 3 + [None] * 20)}
    assert compare_target(target, 700, 730, data)


#: Values near the largest float: their squares, sums and legends overflow.
HUGE = {"a.b.c": (0, 60, [None, 1e300, 2.0, -1e300, 5.0, 3.0]),
        "a.x.c": (0, 60, [None, 1.7976931348623157e308, 1.0, 1.7976931348623157e308, 3.0, 4.0])}


@pytest.mark.parametrize(
    "target",
    ["stdev(a.b.c,3)", "mostDeviant(a.*.c,1)", "cactiStyle(sumSeries(a.*.c))", "legendValue(sumSeries(a.*.c),'max','si')",
     "scale(stdev(a.*.c,2),2)"],
)
def test_float_overflow_is_refused_where_graphite_fails(target: str) -> None:
    """graphite-web raises OverflowError (HTTP 500) where Python's float arithmetic overflows
    (``x ** 2``, ``int(inf)``): Carbyne refuses the call with an InputError naming it (found by
    the differential fuzzer with values near 1e300)."""
    with pytest.raises(OverflowError):
        graphite_evaluate(target, 0, 300, HUGE)
    with pytest.raises(InputError, match=r"cannot call \w+ seriesList=.*: a value overflows a float"):
        carbyne_evaluate(target, 0, 300, HUGE)


@pytest.mark.parametrize(
    "target",
    ["movingMedian(a.*.c,4)", "movingWindow(a.*.c,5,'stddev')", "movingWindow(a.*.*,'5min','diff')",
     "movingWindow(a.*.c,3,'multiply')", "movingWindow(a.*.c,4,'range')", "movingWindow(a.y.d,3,'last')",
     "movingMedian(isNonNull(a.*.c),3)", "movingSum(isNonNull(a.*.*),4)", "movingMax(transformNull(a.*.c),5)",
     # windows shorter than a step hold no values (a ZeroDivisionError in the block size, found by the fuzzer)
     "movingSum(isNonNull(a.y.d),'1min')", "movingWindow(isNonNull(a.y.d),'90s','count')"],
)
def test_moving_windows_in_blocks_like_graphite(target: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows reduced a few at a time (a tiny WINDOW_CELLS) give graphite's values and ints."""
    from render.functions import calculate

    monkeypatch.setattr(calculate, "WINDOW_CELLS", 7)
    for window in WINDOWS:
        compare_target(target, *window, DATA)


def test_long_moving_median_memory_is_bounded() -> None:
    """movingMedian over a 6 h window of 10 s data copied 2160 values per point at once (a week
    with "1d" wanted GiBs: MemoryError where graphite answers); now a block of windows at a time."""
    import tracemalloc

    day = 8640
    data = {"a.b.c": (0, 10, [float(i % 17) if i % 5 else None for i in range(day + 2200)])}
    tracemalloc.start()
    try:
        [series] = carbyne_evaluate("movingMedian(a.b.c,'6h')", 21600, 21600 + 86400 - 3600, data)
        [ints] = carbyne_evaluate("movingSum(isNonNull(a.b.c),'6h')", 21600, 21600 + 86400 - 3600, data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(series.values) == len(ints.values) > 8000
    assert peak < 100 * 2**20, f"{peak / 2**20:.0f} MiB"
