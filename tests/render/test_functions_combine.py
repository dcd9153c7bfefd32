"""Combine functions against graphite-web 1.1.10, on fixed and generated inputs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle import carbyne_call, compare_call, graphite_call, observe_graphite, series_lists

from render.functions import InputError, RequestContext
from render.series import Series

pytestmark = pytest.mark.usefixtures("graphite_web")

CTX = RequestContext(start=0, end=600, now=600)
A = Series("a.b.c", 60, 360, 60, [1, None, 3, 4, 5], path_expression="a.*.c")
B = Series("a.x.c", 60, 360, 60, [10, 20, None, 40, 50], path_expression="a.*.c")
C = Series("a.y.d", 0, 360, 120, [7, None, 9])
T = Series("web.d1;dc=east;role=db", 60, 240, 60, [2, 4, 6])
EXAMPLES = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

AGGREGATORS = ["sumSeries", "averageSeries", "minSeries", "maxSeries", "diffSeries",
               "multiplySeries", "stddevSeries", "rangeOfSeries", "countSeries", "group"]


@pytest.mark.parametrize("name", AGGREGATORS)
@pytest.mark.parametrize("args", [[[A, B]], [[A], [B, C]], [[]], [[C]], [[A, T]], [[B], [B]]])
def test_aggregators_fixed(name: str, args: list) -> None:
    compare_call(name, CTX, args)


@EXAMPLES
@given(series_lists(min_series=1), st.sampled_from(AGGREGATORS))
def test_aggregators_generated(series: list[Series], name: str) -> None:
    compare_call(name, CTX, [series])


@pytest.mark.parametrize(
    "func", ["sum", "avg", "average", "median", "avg_zero", "count", "multiply", "last",
             "current", "diff", "stddev", "range", "rangeOf", "total", "min", "max", "maxSeries"]
)
@pytest.mark.parametrize("xff", [None, 0.5, 1.0])
def test_aggregate_every_function(func: str, xff: float | None) -> None:
    compare_call("aggregate", CTX, [[A, B, C], func, xff])


@EXAMPLES
@given(series_lists(), st.sampled_from(["median", "avg_zero", "multiply", "last", "count"]),
       st.sampled_from([0.0, 0.3, 0.6]))
def test_aggregate_generated(series: list[Series], func: str, xff: float) -> None:
    compare_call("aggregate", CTX, [series, func, xff])


def test_sum_names_tags_and_values() -> None:
    [result] = compare_call("sumSeries", CTX, [[A, B]])
    assert result.name == "sumSeries(a.*.c)"
    assert dict(result.tags) == {"name": "sumSeries(a.*.c)", "aggregatedBy": "sum"}
    assert result.to_list() == [11.0, 20.0, 3.0, 44.0, 55.0]


def test_mixed_steps_consolidate_to_the_lcm() -> None:
    [result] = compare_call("sumSeries", CTX, [[A, C]])
    assert (result.start, result.end, result.step) == (0, 360, 120)
    assert result.to_list() == [8.0, 3.5, 14.0]


def test_request_xfilesfactor_is_the_default() -> None:
    strict = RequestContext(start=0, end=600, now=600, x_files_factor=1.0)
    [result] = compare_call("averageSeries", strict, [[A, B]])
    assert result.to_list() == [5.5, None, None, 22.0, 27.5]


@EXAMPLES
@given(series_lists(min_series=1), st.sampled_from([1, 10, 50, 75, 99.5, 100]), st.booleans())
def test_percentile_of_series_generated(series: list[Series], n: float, interpolate: bool) -> None:
    if n == 100 and interpolate:
        n = 99.5
    compare_call("percentileOfSeries", CTX, [series, n, interpolate])


def test_interpolated_100th_percentile_is_the_maximum() -> None:
    """graphite reads past the sorted values here (IndexError, HTTP 500)."""
    with pytest.raises(IndexError):
        graphite_call("percentileOfSeries", CTX, [[A, B], 100, True])
    [result] = carbyne_call("percentileOfSeries", CTX, [[A, B], 100, True])
    assert result.to_list() == [10.0, 20.0, 3.0, 40.0, 50.0]


def test_percentile_rejects_out_of_range() -> None:
    with pytest.raises(InputError, match="percentileOfSeries n=0"):
        carbyne_call("percentileOfSeries", CTX, [[A], 0])
    with pytest.raises(InputError, match="n=101"):
        carbyne_call("percentileOfSeries", CTX, [[A], 101])


@pytest.mark.parametrize("divisor", [[C], [], [Series("z", 60, 360, 60, [0, 2, 0, None, 5])]])
def test_divide_series(divisor: list[Series]) -> None:
    compare_call("divideSeries", CTX, [[A, B], divisor])


def test_divide_series_needs_one_divisor() -> None:
    with pytest.raises(InputError, match="divisorSeries=2 series"):
        carbyne_call("divideSeries", CTX, [[A], [B, C]])


@EXAMPLES
@given(series_lists(max_series=3), series_lists(max_series=3))
def test_divide_series_lists_generated(dividends: list[Series], divisors: list[Series]) -> None:
    if len(dividends) != len(divisors):
        with pytest.raises(InputError):
            carbyne_call("divideSeriesLists", CTX, [dividends, divisors])
    else:
        compare_call("divideSeriesLists", CTX, [dividends, divisors])


@pytest.mark.parametrize(
    "args",
    [
        [[A, B]],
        [[A, B], 10],
        [[A, B], 0],
        [[A], [C]],
        [[A, B], [C, A]],
        [[A, B, C], None, 1],
        [[A, B, C], None, 0],
        [[A, B], [A, B, Series("a.q.c", 60, 360, 60, [1, 2, 3, 4, 5])], 1],
        [[A, B, T], [A, T], 0, "dc"],
    ],
)
def test_as_percent(args: list) -> None:
    compare_call("asPercent", CTX, args)


@pytest.mark.parametrize("args", [[[A, C]], [[A, B], [C]]])
def test_as_percent_mixed_steps_keeps_the_consolidated_step(args: list) -> None:
    """graphite labels consolidated values with the input's original step (see cases/combine.test)."""
    ours = carbyne_call("asPercent", CTX, args)
    theirs = graphite_call("asPercent", CTX, args)
    assert [s.step for s in ours] == [120] * len(ours)
    assert [observe_graphite(s).step for s in theirs] == [s.step for s in args[0]]
    assert [s.to_list() for s in ours] == [list(observe_graphite(s).values) for s in theirs]


def test_as_percent_unmatched_node_without_earlier_match() -> None:
    """graphite builds the MISSING series from variables never set (UnboundLocalError, HTTP 500)."""
    args = [[A, B], [B, C], 1]
    with pytest.raises(UnboundLocalError):
        graphite_call("asPercent", CTX, args)
    result = carbyne_call("asPercent", CTX, args)
    assert [s.name for s in result] == [
        "asPercent(a.b.c,MISSING)", "asPercent(a.x.c,a.x.c)", "asPercent(MISSING,a.y.d)"
    ]
    assert result[0].to_list() == [None] * 5
    assert result[1].to_list() == [100.0, 100.0, None, 100.0, 100.0]
    assert (result[2].step, len(result[2])) == (120, 3)


def test_as_percent_unmatched_total_keeps_its_own_time() -> None:
    """graphite reuses start/step left over from the previous pair (here C's 0/120)."""
    args = [[B, C], [A, B, C], 1]
    [*_, theirs] = graphite_call("asPercent", CTX, args)
    [*_, ours] = carbyne_call("asPercent", CTX, args)
    assert ours.name == theirs.name == "asPercent(MISSING,a.b.c)"
    assert (theirs.start, theirs.step) == (0, 120)
    assert (ours.start, ours.end, ours.step, ours.to_list()) == (60, 360, 60, [None] * 5)


def test_as_percent_rejects_bad_totals() -> None:
    with pytest.raises(InputError, match="total='x'"):
        carbyne_call("asPercent", CTX, [[A], "x"])
    with pytest.raises(InputError, match="total=2 series"):
        carbyne_call("asPercent", CTX, [[A, B, C], [A, B]])


@pytest.mark.parametrize("callback", ["sum", "average", "avg", "sumSeries", "median", "countSeries",
                                      "maxSeries", "medianSeries", "multiply", "diffSeries"])
@pytest.mark.parametrize("nodes", [[1], [0, 2], [-1], ["dc"], [5]])
def test_group_by_nodes(callback: str, nodes: list) -> None:
    compare_call("groupByNodes", CTX, [[A, B, C, T], callback, *nodes])
    compare_call("groupByNode", CTX, [[A, B, C, T], nodes[0], callback])


def test_group_by_node_reads_nodes_inside_function_names() -> None:
    wrapped = [s.copy(name=f"scale({s.name},2)") for s in (A, B)]
    result = compare_call("groupByNode", CTX, [wrapped, 1, "sum"])
    assert [s.name for s in result] == ["b", "x"]


def test_inputs_are_never_mutated() -> None:
    before = A.values.copy()
    carbyne_call("sumSeries", CTX, [[A, C]])
    assert np.array_equal(A.values, before, equal_nan=True)
    with pytest.raises(ValueError):
        A.values[0] = 3.0
