"""Graph and Special functions against graphite-web 1.1.10."""

from __future__ import annotations

import pytest
from oracle import (
    carbyne_evaluate,
    compare_call,
    compare_target,
    graphite_evaluate,
    observe_graphite,
)

from render.functions import InputError, RequestContext
from render.series import Series

pytestmark = pytest.mark.usefixtures("graphite_web")

DATA = {
    "a.b.c": (0, 60, [float(i) if i % 7 else None for i in range(40)]),
    "a.x.c": (0, 60, [float(i * i % 13) if i % 5 else None for i in range(40)]),
    "a.y.d": (0, 120, [float(i) if i % 4 else None for i in range(20)]),
}

TARGETS = [
    'color(a.*.c,"red")',
    "lineWidth(a.*.c,3)",
    "dashed(a.*.c)",
    "dashed(a.*.c,3)",
    "stacked(a.*.*)",
    'stacked(a.*.c,"foo")',
    "drawAsInfinite(a.*.c)",
    "secondYAxis(a.*.c)",
    'sumSeries(drawAsInfinite(a.*.c))',
    "threshold(5)",
    'threshold(5,"limit","red")',
    'threshold(5.5,"limit")',
    'consolidateBy(a.*.c,"sum")',
    'consolidateBy(a.*.c,"avg_zero")',
    "constantLine(3)",
    "constantLine(-2.5)",
    "countSeries()",
    'sumSeries(consolidateBy(a.*.*,"max"))',
    'sumSeries(consolidateBy(a.*.*,"first"))',
    'sumSeries(consolidateBy(a.*.*,"last"))',
    'sumSeries(consolidateBy(a.*.*,"min"))',
    'sumSeries(consolidateBy(a.*.*,"sum"))',
    'sumSeries(consolidateBy(a.*.*,"avg_zero"))',
]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("window", [(600, 1800), (630, 1795)], ids=str)
def test_targets(target: str, window: tuple[int, int]) -> None:
    compare_target(target, *window, DATA)


def test_stacks_are_shared_between_targets_of_one_request() -> None:
    targets = ["stacked(a.b.c)", "stacked(a.x.c)", 'stacked(a.y.d,"other")', 'stacked(a.b.c,"other")']
    result = compare_target(targets, 600, 1800, DATA)
    # t=660: a.b.c is 11 and a.x.c is 121 % 13 = 4, stacked on top of it.
    assert (result[0].to_list()[0], result[1].to_list()[0]) == (11.0, 15.0)
    assert [s.name for s in result] == ["stacked(a.b.c)", "stacked(a.x.c)", "a.y.d", "a.b.c"]


def test_stacked_keeps_other_graph_options() -> None:
    """graphite's copy() drops color and the other options (see cases/graph.test)."""
    [ours] = carbyne_evaluate('stacked(color(a.b.c,"red"))', 600, 1800, DATA)
    [theirs] = graphite_evaluate('stacked(color(a.b.c,"red"))', 600, 1800, DATA)
    assert dict(ours.options) == {"color": "red", "stacked": True}
    assert dict(observe_graphite(theirs).options) == {"stacked": True}


def test_graph_options_leave_values_alone() -> None:
    series = Series("a.b.c", 0, 180, 60, [1, None, 3])
    ctx = RequestContext(start=0, end=180, now=180)
    for name, extra in [("color", ["blue"]), ("lineWidth", [2.0]), ("dashed", [4]), ("secondYAxis", []),
                        ("drawAsInfinite", [])]:
        [result] = compare_call(name, ctx, [[series], *extra])
        assert result.to_list() == [1.0, None, 3.0]


@pytest.mark.parametrize(
    ("target", "caller"),
    [("constantLine(5)", "constantLine"), ("threshold(2.5,'t')", "threshold"), ("countSeries()", "countSeries"),
     ("aggregateLine(a.b.c,'max')", "aggregateLine"), ("scale(constantLine(1),2)", "constantLine")],
)
def test_line_over_a_window_under_two_seconds_is_refused(target: str, caller: str) -> None:
    """graphite-web draws these lines with step int(1 / 2) = 0 (its json then fails, functions over the
    line divide by the step): Carbyne refuses, naming the caller (found by the fuzzer's 1 s windows)."""
    data = {"a.b.c": (0, 1, [float(i) for i in range(2000)])}
    for series in graphite_evaluate(target, 1000, 1001, data):
        assert series.step == 0
    with pytest.raises(InputError, match=f"cannot call {caller} until=1001: .* at least 2 seconds"):
        carbyne_evaluate(target, 1000, 1001, data)
    compare_target(target, 1000, 1002, data)  # 2 s: step 1, as graphite
