"""Filter Series / Filter Data / Sorting functions against graphite-web 1.1.10."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle import carbyne_call, compare_call, compare_target, series_lists

from render.functions import InputError, RequestContext

pytestmark = pytest.mark.usefixtures("graphite_web")

CTX = RequestContext(start=0, end=600, now=600)
EXAMPLES = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DATA = {
    "a.b.c": (0, 60, [float(i) if i % 7 else None for i in range(40)]),
    "a.x.c": (0, 60, [float(i * i % 13) if i % 5 else None for i in range(40)]),
    "a.y.d": (0, 120, [float(i) if i % 4 else None for i in range(20)]),
    "a.z.c": (0, 60, [None] * 40),
    "srv.host10.cpu": (0, 60, [5.0] * 40),
    "srv.host2.cpu": (0, 60, [7.0] * 40),
    "srv.host1.cpu": (0, 60, [7.0] * 40),
}

CALLS = [
    ("highestCurrent", [2]), ("highestMax", [1]), ("highestAverage", [3]), ("highestAverage", [-1]),
    ("lowestCurrent", [2]), ("lowestAverage", [4]), ("currentAbove", [10]), ("currentBelow", [10]),
    ("averageAbove", [5]), ("maximumAbove", [30]), ("limit", [2]), ("limit", [0]),
    ("exclude", ["x|y"]), ("grep", ["[bz]"]), ("removeBelowValue", [10]), ("removeAboveValue", [10.5]),
    ("sortByName", []), ("sortByName", [True]), ("sortByName", [True, True]), ("sortByMaxima", []),
    ("sortByTotal", []),
]


def _target(name: str, pattern: str, extra: list) -> str:
    args = [pattern, *(f'"{a}"' if isinstance(a, str) else str(a).lower() for a in extra)]
    return f"{name}({','.join(args)})"


@pytest.mark.parametrize(("name", "extra"), CALLS, ids=str)
@pytest.mark.parametrize("pattern", ["a.*.*", "srv.*.cpu", "nothing.*"])
def test_fixed_targets(name: str, extra: list, pattern: str) -> None:
    compare_target(_target(name, pattern, extra), 600, 1800, DATA)


@EXAMPLES
@given(series_lists(max_series=6), st.sampled_from(CALLS))
def test_generated_series(series: list, call: tuple[str, list]) -> None:
    name, extra = call
    compare_call(name, CTX, [series, *extra])


def test_highest_keeps_input_order_between_ties() -> None:
    result = compare_target("highestAverage(srv.*.cpu,2)", 600, 1800, DATA)
    assert [s.name for s in result] == ["srv.host1.cpu", "srv.host2.cpu"]


def test_natural_sort() -> None:
    result = compare_target("sortByName(srv.*.cpu,true)", 600, 1800, DATA)
    assert [s.name for s in result] == ["srv.host1.cpu", "srv.host2.cpu", "srv.host10.cpu"]


@pytest.mark.parametrize("name", ["exclude", "grep"])
def test_bad_regex_is_an_input_error(name: str) -> None:
    """graphite raises re.error (HTTP 500)."""
    with pytest.raises(InputError, match=rf"cannot call {name} pattern='\('"):
        carbyne_call(name, CTX, [[], "("])
