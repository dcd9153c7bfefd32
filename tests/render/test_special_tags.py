"""groupByTags and aliasByTags called directly, against graphite-web 1.1.10's functions on the same
generated tagged series (inputs left untouched), plus their declarations."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle import compare_call

from render.functions.params import InputError
from render.functions.registry import RequestContext, default_registry
from render.series import Series

pytestmark = [
    pytest.mark.usefixtures("graphite_web"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::PendingDeprecationWarning"),
]

CTX = RequestContext(start=0, end=600, now=600)
EXAMPLES = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def tagged_series(draw) -> list[Series]:
    """Series named ``name;dc=..;host=..`` (every series has every tag), steps 60 or 120."""
    count = draw(st.integers(0, 5))
    result = []
    for i in range(count):
        metric = draw(st.sampled_from(["cpu.load", "cpu.user", "mem"]))
        dc = draw(st.sampled_from(["east", "west"]))
        step = draw(st.sampled_from([60, 120]))
        values = draw(st.lists(st.one_of(st.none(), st.integers(-5, 20).map(float)), min_size=1, max_size=6))
        name = f"{metric};dc={dc};host=h{i}"
        result.append(Series(name, 0, step * len(values), step, values, path_expression="seriesByTag('dc=~.')"))
    return result


@EXAMPLES
@given(
    series=tagged_series(),
    callback=st.sampled_from(["sum", "average", "max", "last", "sumSeries", "averageSeries", "median"]),
    tags=st.sampled_from([("dc",), ("host",), ("name",), ("dc", "name"), ("host", "dc")]),
)
def test_group_by_tags_matches_graphite(series, callback, tags) -> None:
    result = compare_call("groupByTags", CTX, [series, callback, *tags])
    assert all(s.path_expression == s.name for s in result)


@EXAMPLES
@given(
    series=tagged_series(),
    nodes=st.lists(st.sampled_from(["dc", "host", "name", 0, 1, -1, 5, "absent"]), min_size=1, max_size=3),
)
def test_alias_by_tags_matches_graphite(series, nodes) -> None:
    compare_call("aliasByTags", CTX, [series, *nodes])


def test_group_by_tags_names_groups_like_graphite() -> None:
    series = [
        Series("cpu;dc=east;host=a", 0, 120, 60, [1.0, 2.0]),
        Series("cpu;dc=east;host=b", 0, 120, 60, [3.0, None]),
        Series("cpu;dc=west;host=c", 0, 120, 60, [5.0, 6.0]),
    ]
    by_dc = compare_call("groupByTags", CTX, [series, "sum", "dc"])
    assert [(s.name, s.to_list(), dict(s.tags)) for s in by_dc] == [
        ("cpu;dc=east", [4.0, 2.0], {"dc": "east", "name": "cpu"}),
        ("cpu;dc=west", [5.0, 6.0], {"dc": "west", "name": "cpu"}),
    ]
    mixed = [*series, Series("mem;dc=east;host=a", 0, 120, 60, [10.0, 10.0])]
    assert [s.name for s in compare_call("groupByTags", CTX, [mixed, "max", "dc"])] == ["max;dc=east", "max;dc=west"]
    assert [s.name for s in compare_call("alias" + "ByTags", CTX, [series, "host", "dc"])] == [
        "a.east", "b.east", "c.west"]


def test_group_by_tags_refuses_a_missing_tag_which_graphite_crashes_on() -> None:
    series = [Series("cpu;host=a", 0, 60, 60, [1.0])]
    with pytest.raises(InputError, match=r"cannot call groupByTags tags=\('dc',\): group 'cpu;dc='"):
        default_registry().call("groupByTags", CTX, [series, "sum", "dc"])


@pytest.mark.parametrize(
    ("name", "group", "flag"),
    [
        ("seriesByTag", "Special", "source_pattern"),
        ("events", "Special", "events_param"),
        ("eventsOverlay", "Graph", "events_param"),
        ("verticalLine", "Graph", None),
        ("groupByTags", "Combine", None),
        ("aliasByTags", "Alias", None),
        ("applyByNode", "Combine", "generates"),
        ("useSeriesAbove", "Filter Series", "generates"),
        ("aliasQuery", "Alias", "generates"),
    ],
)
def test_declarations(name, group, flag) -> None:
    function = default_registry().get(name)
    assert function.group == group and function.module == "render.functions.special"
    for other in ("source_pattern", "events_param", "generates"):
        assert bool(getattr(function, other)) == (other == flag), other
