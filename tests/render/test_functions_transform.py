"""Transform functions against graphite-web 1.1.10, on fixed and generated inputs."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle import (
    carbyne_call,
    carbyne_evaluate,
    compare_call,
    compare_target,
    graphite_evaluate,
    series_lists,
    stored_data,
)

from render.functions import InputError, RequestContext
from render.series import Series

pytestmark = pytest.mark.usefixtures("graphite_web")

CTX = RequestContext(start=0, end=600, now=600)
EXAMPLES = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DATA = {
    "a.b.c": (0, 60, [float(i) if i % 7 else None for i in range(40)]),
    "a.x.c": (0, 60, [float(i * i % 13) if i % 5 else None for i in range(40)]),
    "a.y.d": (0, 120, [float(i) if i % 4 else None for i in range(20)]),
    "cnt.a": (0, 60, [0, 5, 10, 3, 8, None, 20, 25, 2, 40, 50, 60, 61, 62, None, None, 70, 80, 90, 100]
              + [100.0 + i for i in range(20)]),
    "cnt.b": (0, 60, [float(v % 97) for v in range(0, 200, 5)]),
}
WINDOWS = [(600, 1800), (630, 1795)]

POINTWISE = [
    ("scale", [2.5]), ("scale", [-1]), ("scaleToSeconds", [1]), ("scaleToSeconds", [7.5]),
    ("offset", [-3.5]), ("absolute", []), ("invert", []), ("pow", [2]), ("pow", [0.5]), ("pow", [-1.5]),
    ("squareRoot", []), ("derivative", []), ("nonNegativeDerivative", []), ("perSecond", []),
    ("integral", []), ("delay", [2]), ("delay", [-3]), ("delay", [50]), ("delay", [-50]),
    ("summarize", ["5min"]), ("summarize", ["5min", "avg"]), ("summarize", ["7min", "max", True]),
    ("summarize", ["90s", "avg_zero"]), ("summarize", ["4min", "multiply"]), ("summarize", ["2min", "count", True]),
    ("summarize", ["1h", "median"]), ("hitcount", ["5min"]), ("hitcount", ["90s"]), ("hitcount", ["7min"]),
    ("keepLastValue", []), ("keepLastValue", [1]), ("keepLastValue", [2]),
    ("transformNull", []), ("transformNull", [-1.0]),
]


@pytest.mark.parametrize(("name", "extra"), POINTWISE, ids=lambda x: str(x))
@pytest.mark.parametrize("window", WINDOWS, ids=str)
def test_fixed_targets(name: str, extra: list, window: tuple[int, int]) -> None:
    args = ",".join(["a.*.c", *(f'"{a}"' if isinstance(a, str) else str(a).lower() for a in extra)])
    compare_target(f"{name}({args})", *window, DATA)


@EXAMPLES
@given(series_lists(min_series=1), st.sampled_from(POINTWISE))
def test_generated_series(series: list[Series], call: tuple[str, list]) -> None:
    name, extra = call
    compare_call(name, CTX, [series, *extra])


@pytest.mark.parametrize(
    "target",
    [
        "nonNegativeDerivative(cnt.b,65)",
        "nonNegativeDerivative(cnt.b,100,5)",
        "nonNegativeDerivative(cnt.b,None,5)",
        "perSecond(cnt.b,95)",
        "perSecond(cnt.b,None,3)",
        "nonNegativeDerivative(cnt.a)",
        "perSecond(scale(cnt.a,3))",
        "transformNull(a.*.c,-1,a.x.c)",
        "transformNull(a.*.c,-1,a.y.d)",
        "transformNull(a.*.c,5,nothing.*)",
        "summarize(a.y.d,\"5min\",\"last\")",
        "hitcount(a.y.d,\"5min\",true)",
        "hitcount(a.*.c,\"1h\",true)",
        "hitcount(a.*.c,\"90s\",true)",
        "timeShift(a.*.c,\"2min\")",
        "timeShift(a.*.c,\"+2min\")",
        "timeShift(a.*.c,\"-1min\",false)",
        "timeShift(a.*.c,\"90s\")",
        "timeShift(sumSeries(a.*.c),\"3min\")",
        "timeShift(summarize(a.b.c,\"5min\"),\"10min\")",
        "timeShift(nothing.*,\"1min\")",
        "timeShift(a.b.c,\"1min\",true,true)",
        "sumSeries(timeShift(a.*.c,\"1min\"))",
    ],
)
@pytest.mark.parametrize("window", WINDOWS, ids=str)
def test_targets_with_options(target: str, window: tuple[int, int]) -> None:
    compare_target(target, *window, DATA)


@EXAMPLES
@given(stored_data(), st.sampled_from(["timeShift(a.*.*,\"3min\")", "hitcount(a.*.*,\"5min\",true)",
                                       "hitcount(a.*.*,\"2min\")", "summarize(a.*.*,\"5min\",\"avg\",true)",
                                       "timeShift(a.*.*,\"+2min\",false)"]),
       st.integers(0, 600), st.integers(60, 1800))
def test_generated_stores(data: dict, target: str, start: int, length: int) -> None:
    compare_target(target, start, start + length, data)


@pytest.mark.parametrize("target", ["nonNegativeDerivative(cnt.a,65)", "perSecond(cnt.a,None,5)"])
def test_wrap_limits_with_missing_values(target: str) -> None:
    """graphite 1.1.10 compares None with the limit (TypeError, HTTP 500); a missing value stays missing."""
    with pytest.raises(TypeError):
        graphite_evaluate(target, 600, 1800, DATA)
    [result] = carbyne_evaluate(target, 600, 1800, DATA)
    assert result.to_list()[3:6] == [None, None, None]


def test_delay_zero_keeps_the_series() -> None:
    """graphite 1.1.10 slices ``values[:-0]`` and returns an empty series (see cases/transform.test)."""
    [ours] = carbyne_evaluate("delay(a.b.c,0)", 600, 1800, DATA)
    [theirs] = graphite_evaluate("delay(a.b.c,0)", 600, 1800, DATA)
    assert list(theirs) == []
    assert ours.to_list() == [float(i) if i % 7 else None for i in range(11, 31)]


@pytest.mark.parametrize("interval", ["0s", "-5min"])
def test_intervals_must_be_positive(interval: str) -> None:
    for name in ("summarize", "hitcount"):
        with pytest.raises(InputError, match=f"cannot call {name} intervalString='{interval}'"):
            carbyne_call(name, CTX, [[], interval])


def test_time_shift_window_is_planned() -> None:
    from render.functions import default_registry

    registry = default_registry()
    assert registry.window("timeShift", [None, "1d"], {}, CTX, 60) == (86400, -86400)
    assert registry.window("timeShift", [None, "+1h"], {}, CTX, 60) == (-3600, 3600)
    assert registry.window("hitcount", [None, "1h"], {}, CTX, 60) == (0, 0)
    late = RequestContext(start=7260, end=9000, now=9000)
    assert registry.window("hitcount", [None, "1h", True], {}, late, 60) == (60, 0)
    assert registry.window("summarize", [None, "1h"], {}, CTX, 60) is None


def test_hitcount_aligns_in_the_request_time_zone() -> None:
    from zoneinfo import ZoneInfo

    from render.functions import default_registry

    berlin = RequestContext(start=1_700_000_000, end=1_700_090_000, now=1_700_090_000, tz=ZoneInfo("Europe/Berlin"))
    before, _ = default_registry().window("hitcount", [None, "1d", True], {}, berlin, 60)
    # 2023-11-14 22:13:20 UTC is 23:13:20 in Berlin; local midnight is 23:00 UTC the day before.
    assert before == 1_700_000_000 - 1_699_916_400


#: Values until 480, none in the windows below: a filter keeps no series over them, but graphite
#: re-evaluates smartSummarize's and hitcount's argument over the aligned window regardless.
EARLY = {"a.b.c": (0, 60, [9.0, 2.0, 5.0] * 3 + [None] * 20),
         "b.one.e": (0, 60, [-90.804, 0.0, None, 23.0, 45.1, None, None, None, 14.1, None])}


@pytest.mark.parametrize(
    ("target", "window"),
    [
        ("smartSummarize(removeEmptySeries(a.b.c),'2min','sum','hours')", (700, 730)),
        ("smartSummarize(maximumAbove(a.b.c,6),'5min','max','days')", (700, 730)),
        ("hitcount(removeEmptySeries(a.b.c),'1h',true)", (700, 730)),
        # the fuzzer's case: one value over the request window, no line; two over the aligned one
        ("smartSummarize(linearRegression(b.one.e),'1h','min','hours')", (60, 180)),
    ],
)
def test_aligned_argument_evaluated_even_when_empty_over_the_request(target: str, window: tuple[int, int]) -> None:
    assert compare_target(target, *window, EARLY)
