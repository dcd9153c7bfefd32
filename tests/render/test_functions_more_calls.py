"""The functions added after the core list, call by call against graphite-web 1.1.10.

Inputs have gaps (None), mixed steps (60/120/180), empty lists, series
without values and tagged names; every call also checks Carbyne left its
inputs untouched (``compare_call``).
"""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle import carbyne_call, compare_call, graphite_call, series_lists

from render.functions import InputError, RequestContext
from render.series import Series

pytestmark = pytest.mark.usefixtures("graphite_web")

CTX = RequestContext(start=0, end=600, now=600)


def fresh() -> RequestContext:
    """A new request (setXFilesFactor changes the request it runs in)."""
    return RequestContext(start=0, end=600, now=600)

A = Series("a.b.c", 60, 720, 60, [1, None, 3, 0.25, 5, None, None, 0.5, 0.99, None, 7], path_expression="a.*.c")
B = Series("a.x.c", 60, 660, 60, [None, 20, None, -40, 50, 1, 1, 2, -1e3, 80], path_expression="a.*.c")
C = Series("a.y.d", 0, 360, 120, [7, None, 9])
D = Series("a.y.c", 0, 360, 120, [2, 0.5, -9])
E = Series("a.e.c", 0, 360, 120, [])
N = Series("a.n.c", 0, 360, 120, [None, None, None])
T = Series("web.d1;dc=east;role=db", 60, 240, 60, [2, 4, 6])
Z = Series("a.z.c", 0, 540, 180, [0, 0, 0])
MIXED = [A, B, C, D, E, N, T, Z]
EXAMPLES = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: (function, arguments after the series list) run over MIXED, over [] and over [A, C].
PER_LIST = [
    ("add", [1.5]), ("add", [-2.7]), ("exp", []), ("log", []), ("log", [2]), ("logit", []),
    ("round", []), ("round", [1]), ("round", [-1]), ("offsetToZero", []),
    ("minMax", []), ("isNonNull", []), ("changed", []), ("interpolate", []), ("interpolate", [1]),
    ("integralByInterval", ["2min"]), ("integralByInterval", ["7min"]), ("compressPeriodicGaps", []),
    ("smartSummarize", ["5min"]), ("smartSummarize", ["3min", "avg"]), ("smartSummarize", ["4min", "last", True]),
    ("smartSummarize", ["3min", "median"]), ("timeSlice", ["120", "300"]), ("timeSlice", ["60", "1200"]),
    ("aggregateLine", []), ("aggregateLine", ["max", True]), ("aggregateLine", ["count"]),
    ("aggregateLine", ["median", True]), ("stdev", [3]), ("stdev", [2, 0.0]), ("stdev", [4, 0.9]),
    ("averageBelow", [5]), ("maximumBelow", [7]), ("minimumAbove", [0.4]), ("minimumBelow", [1]),
    ("filterSeries", ["max", ">", 5]), ("filterSeries", ["last", "!=", 7]), ("filterSeries", ["sum", "<=", 9]),
    ("filterSeries", ["avg", "=", 7]), ("filterSeries", ["min", ">=", -9]), ("filterSeries", ["count", "<", 3]),
    ("highest", [2]), ("highest", [3, "max"]), ("lowest", [2]), ("lowest", [4, "range"]),
    ("mostDeviant", [2]), ("mostDeviant", [10]), ("removeEmptySeries", []), ("removeEmptySeries", [0.8]),
    ("removeAbovePercentile", [50]), ("removeBelowPercentile", [75]), ("removeAbovePercentile", [100]),
    ("sortBy", []), ("sortBy", ["max", True]), ("sortBy", ["last"]), ("sortByMinima", []),
    ("upper", []), ("upper", [0, -1, 99]), ("lower", [1]), ("substr", [1]), ("substr", [0, 2]), ("substr", [-2]),
    ("cactiStyle", []), ("cactiStyle", ["si"]), ("cactiStyle", ["binary", "B"]), ("cactiStyle", [None, "req"]),
    ("alpha", [0.4]), ("cumulative", []), ("setXFilesFactor", [0.5]), ("xFilesFactor", [1]),
    ("aggregateWithWildcards", ["sum", 1]), ("aggregateWithWildcards", ["median", 0, 2]),
    ("sumSeriesWithWildcards", [1]), ("averageSeriesWithWildcards", [2]), ("multiplySeriesWithWildcards", [1]),
    ("aggregateWithWildcards", ["max", -1]),
]


@pytest.mark.parametrize(("name", "extra"), PER_LIST, ids=[f"{n}{e}" for n, e in PER_LIST])
@pytest.mark.parametrize("series", [MIXED, [], [A, C]], ids=["mixed", "empty", "two"])
def test_per_list_functions(name: str, extra: list, series: list[Series]) -> None:
    compare_call(name, fresh(), [series, *extra])


#: Percentile filters across series: graphite-web fails on missing values, so these inputs have none.
FULL = [Series(f"p.s{i}.v", 60, 420, 60, [i * k % 7 + k for k in range(6)], path_expression="p.*.v")
        for i in range(6)]


@pytest.mark.parametrize("name", ["averageOutsidePercentile", "removeBetweenPercentile"])
@pytest.mark.parametrize("n", [0, 10, 30, 50, 80, 100])
def test_percentile_bands(name: str, n: float) -> None:
    compare_call(name, fresh(), [FULL, n])
    compare_call(name, fresh(), [[], n])


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("aggregateSeriesLists", [[A, B], [C, D], "sum"]),
        ("aggregateSeriesLists", [[A, B], [C, D], "avg", 0.6]),
        ("aggregateSeriesLists", [[], [], "max"]),
        ("sumSeriesLists", [[A, B, N], [C, D, E]]),
        ("diffSeriesLists", [[A, B], [C, D]]),
        ("multiplySeriesLists", [[A, B], [B, A]]),
        ("powSeries", [MIXED]),
        ("powSeries", [[D], [A]]),
        ("powSeries", [[]]),
        ("powSeries", [[Z, D, A]]),
        ("weightedAverage", [[A, B], [C, D], 1]),
        ("weightedAverage", [[A, B], [D, C], 2]),
        ("weightedAverage", [[A, B], [B, A]]),
        ("weightedAverage", [[], []]),
        ("weightedAverage", [[A, T], [T, A], "dc", 0]),
        ("reduceSeries", [[[C, D]], "asPercent", 2, "c", "d"]),
        ("reduceSeries", [[[D, C]], "sumSeries", 2, "d", "c"]),
        ("reduceSeries", [[[A, B, C, D]], "divideSeries", 1, "y", "b"]),
        ("reduceSeries", [[], "sumSeries", 1, "y"]),
        ("unique", [[A, B], [B, C], [A]]),
        ("unique", [[]]),
        ("fallbackSeries", [[], [C]]),
        ("fallbackSeries", [[A], [C]]),
        ("areaBetween", [[A, C]]),
        ("identity", ["id.x"]),
        ("timeFunction", ["t.x"]),
        ("timeFunction", ["t.x", 7]),
        ("time", ["t.x", 120]),
        ("sinFunction", ["s.x", 3, 45]),
        ("sin", ["s.x"]),
    ],
)
def test_other_calls(name: str, args: list) -> None:
    compare_call(name, fresh(), args)


def test_map_series_groups_like_graphite() -> None:
    ours = carbyne_call("mapSeries", CTX, [MIXED, 1])
    theirs = graphite_call("mapSeries", CTX, [MIXED, 1])
    assert [[s.name for s in group] for group in ours] == [[s.name for s in group] for group in theirs]
    assert [[s.name for s in group] for group in carbyne_call("map", CTX, [[A, B, T], "dc", 2])] == [
        ["a.b.c", "a.x.c"], ["web.d1;dc=east;role=db"]]


def test_time_slice_counts_relative_times_from_the_requests_now() -> None:
    ctx = RequestContext(start=0, end=600, now=300)
    [sliced] = carbyne_call("timeSlice", ctx, [[A], "now-3min"])
    assert sliced.name == "timeSlice(a.b.c, 120, 300)"
    assert sliced.to_list() == [None, None, 3.0, 0.25, 5.0, None, None, None, None, None, None]


def test_random_walk_shape() -> None:
    [walk] = carbyne_call("randomWalk", CTX, ["rw.x", 30])
    assert (walk.name, walk.start, walk.end, walk.step, len(walk)) == ("rw.x", 0, 600, 30, 20)
    steps = [b - a for a, b in zip(walk.to_list(), walk.to_list()[1:], strict=False)]
    assert walk.to_list()[0] == 0.0 and all(-0.5 <= s < 0.5 for s in steps)
    [theirs] = graphite_call("randomWalkFunction", CTX, ["rw.x", 30])
    assert (theirs.name, theirs.start, theirs.end, theirs.step, len(theirs)) == ("rw.x", 0, 600, 30, 20)


def test_set_x_files_factor_becomes_the_request_default() -> None:
    ctx = fresh()
    carbyne_call("setXFilesFactor", ctx, [[A], 1.0])
    [strict] = carbyne_call("sumSeries", ctx, [[A, B]])
    assert strict.to_list()[:4] == [None, None, None, -39.75]
    [relaxed] = carbyne_call("sumSeries", fresh(), [[A, B]])
    assert relaxed.to_list()[:2] == [1.0, 20.0]


def test_overflow_is_missing_where_graphite_fails() -> None:
    big = Series("big.x", 0, 180, 60, [1000.0, -1000.0, 1.0])
    [e] = carbyne_call("exp", CTX, [[big]])
    assert e.to_list() == [None, 0.0, math.e]
    [s] = carbyne_call("sigmoid", CTX, [[big]])
    assert s.to_list()[:2] == [1.0, 0.0]
    with pytest.raises(OverflowError):
        graphite_call("exp", CTX, [[big]])


@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("aggregateSeriesLists", [[A], [], "sum"], "cannot call aggregateSeriesLists seriesListSecondPos=0 series"),
        ("weightedAverage", [[A], []], "cannot call weightedAverage seriesListWeight=0 series"),
        ("reduceSeries", [[[A]], "sumSeries", 2, "c", "d"], "cannot call reduceSeries reduceMatchers='d'"),
        ("reduceSeries", [[[A]], "sumSeries", 7, "c"], "cannot call reduceSeries reduceNode=7"),
        ("reduceSeries", [[[A]], "nope", 2, "c"], "cannot call function='nope'"),
        ("areaBetween", [[A]], "cannot call areaBetween seriesList=1 series"),
        ("log", [[A], 1], "cannot call log base=1"),
        ("integralByInterval", [[A], "0s"], "cannot call integralByInterval intervalUnit='0s'"),
        ("integralByInterval", [[A], "1x"], "cannot call integralByInterval intervalUnit='1x'"),
        ("smartSummarize", [[A], "1h", "sum", "1d"], "cannot call smartSummarize alignTo='1d'"),
        ("smartSummarize", [[A], "-1h"], "cannot call smartSummarize intervalString='-1h'"),
        ("filterSeries", [[A], "max", "<>", 1], "cannot call filterSeries operator='<>'"),
        ("cactiStyle", [[A], "metric"], "cannot call cactiStyle system='metric'"),
        ("removeAbovePercentile", [[A], 0], "cannot call removeAbovePercentile n=0.0"),
        ("averageOutsidePercentile", [[A], 101], "cannot call averageOutsidePercentile n=101.0"),
        ("stdev", [[A], 0], "cannot call stdev points=0"),
        ("timeSlice", [[A], "yesterdayish"], "cannot call timeSlice startSliceAt='yesterdayish'"),
        ("timeFunction", ["t", 0], "cannot call timeFunction step=0"),
        ("highest", [[A], 1, "sumSeries"], "cannot aggregate func='sumSeries'"),
    ],
)
def test_refusals_name_function_parameter_and_value(name: str, args: list, message: str) -> None:
    with pytest.raises(InputError) as error:
        carbyne_call(name, CTX, args)
    assert str(error.value).startswith(message)


@EXAMPLES
@given(series_lists(min_series=0, max_series=5), st.sampled_from(
    [("interpolate", []), ("changed", []), ("minMax", []), ("offsetToZero", []), ("round", [2]),
     ("integralByInterval", ["3min"]), ("stdev", [3, 0.3]), ("smartSummarize", ["5min", "avg_zero"]),
     ("sortByMinima", []), ("mostDeviant", [3]), ("highest", [2, "median"]), ("removeEmptySeries", [0.5]),
     ("removeBelowPercentile", [40]), ("aggregateWithWildcards", ["stddev", 1]), ("isNonNull", []),
     ("compressPeriodicGaps", []), ("powSeries", []), ("logit", []), ("cactiStyle", ["si", "b"])]))
def test_generated_inputs(series: list[Series], call: tuple[str, list]) -> None:
    name, extra = call
    compare_call(name, fresh(), [series, *extra])


@EXAMPLES
@given(series_lists(min_series=0, max_series=4), series_lists(min_series=0, max_series=4),
       st.sampled_from(["sum", "diff", "multiply", "avg_zero", "last"]))
def test_generated_pairs(first: list[Series], second: list[Series], func: str) -> None:
    second = (second * 4)[: len(first)] if second else first[::-1]
    compare_call("aggregateSeriesLists", CTX, [first, second, func])
    compare_call("weightedAverage", CTX, [first, second, 1])
