"""Alias functions against graphite-web 1.1.10."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle import carbyne_call, compare_call, compare_target, graphite_evaluate, series_lists

from render.functions import InputError, RequestContext
from render.functions.naming import first_path_expression

pytestmark = pytest.mark.usefixtures("graphite_web")

CTX = RequestContext(start=0, end=600, now=600)
EXAMPLES = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DATA = {
    "a.b.c": (0, 60, [float(i) if i % 7 else None for i in range(40)]),
    "a.x.c": (0, 60, [float(i * i % 13) if i % 5 else None for i in range(40)]),
    "a.y.d": (0, 120, [float(i) if i % 4 else None for i in range(20)]),
    "big.v": (0, 60, [1.5e6, 2.5e9, 3.0e3, 1024.0 ** 3] * 10),
    "web.d1;dc=east;role=db": (0, 60, [2.0] * 40),
}

TARGETS = [
    'alias(a.*.c,"foo")',
    'sumSeries(alias(a.*.c,"x"))',
    "aliasByNode(a.*.*,1)",
    "aliasByNode(a.*.*,0,2)",
    "aliasByNode(a.*.*,-1)",
    "aliasByNode(a.*.c,7)",
    "aliasByNode(scale(a.*.c,2),1)",
    "aliasByNode(movingAverage(a.b.c,2),1)",
    "aliasByNode(sumSeries(a.*.c),1)",
    'aliasByNode(summarize(a.b.c,"5min"),1)',
    'aliasByNode(web.*,"dc",1)',
    'aliasByNode(web.*,"nope")',
    "aliasByMetric(a.*.c)",
    "aliasByMetric(scale(a.*.c,2))",
    "aliasByMetric(web.*)",
    'aliasByMetric(alias(a.b.c,"x.y(z)"))',
    r'aliasSub(a.*.c,"a\.(\w+)\.c","\1-x")',
    'aliasSub(a.*.c,"^a","b")',
    r'aliasSub(a.*.c,"(?P<n>x)","\g<n>\g<n>")',
    'legendValue(a.*.*,"avg")',
    'legendValue(a.*.c,"last","max","count","total","median")',
    'legendValue(a.*.c,"avg","sumSeries")',
    'legendValue(big.v,"avg","max","min","si")',
    'legendValue(big.v,"last","binary")',
    'legendValue(a.*.c,"binary")',
    'legendValue(nothing.*,"avg")',
]


@pytest.mark.parametrize("target", TARGETS)
def test_targets(target: str) -> None:
    compare_target(target, 600, 1800, DATA)


@EXAMPLES
@given(series_lists(max_series=3), st.sampled_from([("aliasByNode", [1]), ("aliasByNode", [0, -1]),
                                                    ("aliasByMetric", []), ("aliasSub", ["([a-z])", r"\1\1"]),
                                                    ("alias", ["x"]), ("legendValue", ["avg", "last"])]))
def test_generated_series(series: list, call: tuple[str, list]) -> None:
    name, extra = call
    compare_call(name, CTX, [series, *extra])


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("a.b.c", "a.b.c"),
        ("scale(a.b.c,2)", "a.b.c"),
        ("sumSeries(a.{b,x}.c,d.e)", "a.{b,x}.c"),
        ("divideSeries(movingAverage(x.y,5),z)", "x.y"),
        ('summarize(a.b.c, "1h", "sum")', "a.b.c"),
        ("a.b.c (avg: 5.0)", "a.b.c"),
        ("alias(a\\(b\\).c,2)", "a(b).c"),
        ('alias("x",a.b)', None),
        ("f(5,a.b)", None),
        ("f(true)", None),
        ("countSeries()", None),
    ],
)
def test_first_path_expression(name: str, path: str | None) -> None:
    assert first_path_expression(name) == path


def test_legend_value_refuses_unknown_types() -> None:
    """graphite appends "(nope: (?))" (it only warns about the bad option); Carbyne answers 400."""
    [theirs] = graphite_evaluate('legendValue(a.b.c,"nope")', 600, 1800, DATA)
    assert theirs.name == "a.b.c (nope: (?))"
    with pytest.raises(InputError, match="cannot call legendValue valuesTypes='nope': not one of"):
        carbyne_call("legendValue", CTX, [[], "nope"])


def test_alias_sub_bad_group_is_an_input_error() -> None:
    with pytest.raises(InputError, match="cannot call aliasSub search='a'"):
        carbyne_call("aliasSub", CTX, [[carbyne_call("constantLine", CTX, [1])[0].copy(name="a")], "a", r"\2"])
