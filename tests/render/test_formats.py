"""Output formats byte for byte against graphite-web 1.1.10's own render views.

Each case builds the same series for both engines: Carbyne renders
:class:`Series`, graphite-web's ``renderView<Format>`` renders ``TimeSeries``
copies (its views consolidate in place, so every call gets fresh copies).
"""

from __future__ import annotations

import datetime
import math
import pickle
import zoneinfo

import msgpack
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from render.formats import FORMATS, OutputOptions, UnknownFormat, get_format
from render.formats.nodes import (
    Interval,
    NodeInfo,
    completer_json,
    completer_query,
    node_list,
    nodes_json,
    tree_json,
)
from render.formats.pickle import dumps_protocol2, nodes_pickle
from render.series import Series

pytestmark = pytest.mark.usefixtures("graphite_web")

SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

values_st = st.one_of(
    st.none(),
    st.sampled_from([0.0, -0.0, 1.0, 5.0, 3.5, math.inf, -math.inf, 1e20, 1e-7, 123456789.123]),
    st.floats(allow_nan=False, width=64),
)


@st.composite
def series_lists(draw: st.DrawFn) -> list[Series]:
    count = draw(st.integers(0, 3))
    result = []
    for i in range(count):
        step = draw(st.sampled_from([1, 10, 60, 300]))
        start = draw(st.integers(0, 50)) * step
        values = draw(st.lists(values_st, max_size=40))
        end = start + step * len(values) + draw(st.sampled_from([0, 0, step, -step]))
        func = draw(st.sampled_from(["average", "sum", "max", "min", "first", "last", "avg_zero"]))
        xff = draw(st.sampled_from([0.0, 0.0, 0.5, 1.0]))
        name = draw(st.sampled_from([f"a.b{i}.c", f"sumSeries(x.*.{i})", f"s{i};dc=east", "a,b\"c"]))
        result.append(
            Series(name, start, max(end, start), step, values, consolidation_func=func, x_files_factor=xff)
        )
    return result


def graphite_copies(series_list: list[Series]) -> list:
    from oracle import to_graphite

    return [to_graphite(s) for s in series_list]


def graphite_view(name: str, request_options: dict, series_list: list[Series]) -> tuple[bytes, str]:
    from graphite.render import views

    response = getattr(views, name)(request_options, graphite_copies(series_list))
    return response.content, response["Content-Type"]


def assert_same_as_graphite(fmt: str, view: str, series_list: list[Series], **options) -> None:
    """Carbyne's answer equals graphite's; inputs graphite-web itself crashes on
    (e.g. maxDataPoints=1 over an empty series) only need an answer from Carbyne."""
    mine = ours(fmt, series_list, **options)
    try:
        theirs = graphite_view(view, graphite_options(**options), series_list)
    except (ValueError, IndexError, TypeError) as exc:
        event(f"graphite-web fails: {type(exc).__name__}")
        return
    assert mine == theirs


def ours(fmt: str, series_list: list[Series], **options) -> tuple[bytes, str]:
    rendered = get_format(fmt).render(series_list, OutputOptions(**options))
    return rendered.body, rendered.content_type


def graphite_options(tz=datetime.UTC, jsonp=None, pretty=False, max_data_points=None, no_null_points=False) -> dict:
    import pytz

    options: dict = {"tzinfo": pytz.timezone(str(tz)), "pretty": pretty}
    if jsonp is not None:
        options["jsonp"] = jsonp
    if max_data_points is not None:
        options["maxDataPoints"] = max_data_points
    if no_null_points:
        options["noNullPoints"] = True
    return options


# --- json ---------------------------------------------------------------------------


def test_json_literal_example_from_the_reference() -> None:
    series = Series("a.b.c", 60, 360, 60, [None, 3.5, math.inf, 5.0, None])
    body, content_type = ours("json", [series])
    assert content_type == "application/json"
    assert body == (
        b'[{"target": "a.b.c", "tags": {"name": "a.b.c"}, "datapoints": '
        b"[[null, 60], [3.5, 120], [1e9999, 180], [5.0, 240], [null, 300]]}]"
    )
    body, content_type = ours("json", [series], jsonp="cb")
    assert content_type == "text/javascript"
    assert body.startswith(b'cb([{"target": "a.b.c"') and body.endswith(b"]}])")


def test_json_max_data_points_example_from_the_reference() -> None:
    series = Series("a", 60, 660, 60, [float(v) for v in range(2, 12)])
    body, _ = ours("json", [series], max_data_points=3)
    assert body.endswith(b'"datapoints": [[5.5, 240], [9.5, 480]]}]')
    body, _ = ours("json", [series.copy(consolidation_func="max")], max_data_points=3)
    assert body.endswith(b'"datapoints": [[7.0, 240], [11.0, 480]]}]')


def test_json_of_nothing_or_only_empty_series_is_an_empty_list() -> None:
    assert ours("json", []) == (b"[]", "application/json")
    assert ours("json", [Series("a", 0, 0, 60, [])], max_data_points=5)[0] == b"[]"


@SETTINGS
@given(
    series_list=series_lists(),
    max_data_points=st.one_of(st.none(), st.integers(1, 50)),
    no_null_points=st.booleans(),
    jsonp=st.sampled_from([None, "cb"]),
    pretty=st.booleans(),
)
def test_json_bytes_match_graphite(series_list, max_data_points, no_null_points, jsonp, pretty) -> None:
    options = dict(max_data_points=max_data_points, no_null_points=no_null_points, jsonp=jsonp, pretty=pretty)
    assert_same_as_graphite("json", "renderViewJson", series_list, **options)


def test_json_max_data_points_large_buckets_sum_in_graphite_order() -> None:
    """Buckets of 8+ values: the sum must be sequential, as Python's ``sum``."""
    values = [0.1 * i + 1e-3 * (i % 7) for i in range(400)]
    series = Series("a.b", 60, 60 + 60 * 400, 60, values)
    for mdp in (7, 13, 40):
        assert ours("json", [series], max_data_points=mdp) == graphite_view(
            "renderViewJson", graphite_options(max_data_points=mdp), [series]
        )


# --- csv, raw, pickle, msgpack, dygraph, rickshaw ------------------------------------


@SETTINGS
@given(series_list=series_lists(), tz=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York"]))
def test_csv_bytes_match_graphite(series_list, tz) -> None:
    assert ours("csv", series_list, tz=zoneinfo.ZoneInfo(tz)) == graphite_view(
        "renderViewCsv", graphite_options(tz=tz), series_list
    )


def test_csv_times_follow_the_time_zone_across_daylight_saving() -> None:
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    start = 1711846800 - 3600  # 2024-03-31 00:00 UTC = 01:00 CET; at 01:00 UTC clocks jump to 03:00
    series = Series("x", start, start + 3 * 3600, 3600, [1.0, 2.0, None])
    body, content_type = ours("csv", [series], tz=berlin)
    assert content_type == "text/csv"
    assert body == (
        b"x,2024-03-31 01:00:00,1.0\r\nx,2024-03-31 03:00:00,2.0\r\nx,2024-03-31 04:00:00,\r\n"
    )


@SETTINGS
@given(series_list=series_lists())
def test_raw_bytes_match_graphite(series_list) -> None:
    assert ours("raw", series_list) == graphite_view("renderViewRaw", graphite_options(), series_list)


def test_raw_literal_example_from_the_reference() -> None:
    series = Series("a.b.c", 60, 360, 60, [None, 3.5, math.inf, 5.0, None])
    assert ours("raw", [series]) == (b"a.b.c,60,360,60|None,3.5,inf,5.0,None\n", "text/plain")


@SETTINGS
@given(series_list=series_lists())
def test_pickle_matches_graphite(series_list) -> None:
    body, content_type = ours("pickle", series_list)
    theirs, their_type = graphite_view("renderViewPickle", graphite_options(), series_list)
    assert content_type == their_type == "application/pickle"
    assert pickle.loads(body) == pickle.loads(theirs)


def test_pickle_holds_plain_python_types_only() -> None:
    series = Series("a.b", 60, 240, 60, [1.0, None, math.inf])
    info = pickle.loads(ours("pickle", [series])[0])
    assert info == [
        {
            "name": "a.b", "start": 60, "end": 240, "step": 60, "values": [1.0, None, math.inf],
            "pathExpression": "a.b", "valuesPerPoint": 1, "consolidationFunc": "average",
            "xFilesFactor": 0.0,
        }
    ]
    assert b"numpy" not in ours("pickle", [series])[0]


@SETTINGS
@given(series_list=series_lists())
def test_msgpack_bytes_match_graphite(series_list) -> None:
    assert ours("msgpack", series_list) == graphite_view("renderViewMsgPack", graphite_options(), series_list)


def _first_series_fits(series_list: list[Series]) -> bool:
    if not series_list:
        return True
    rows = len(range(series_list[0].start, series_list[0].end, series_list[0].step))
    return all(len(s) == rows for s in series_list)


@SETTINGS
@given(series_list=series_lists(), jsonp=st.sampled_from([None, "cb"]))
def test_dygraph_bytes_match_graphite(series_list, jsonp) -> None:
    if not _first_series_fits(series_list):  # graphite-web fails on ragged input
        series_list = series_list[:1] if series_list and _first_series_fits(series_list[:1]) else []
    options = graphite_options(jsonp=jsonp)
    assert ours("dygraph", series_list, jsonp=jsonp) == graphite_view("renderViewDygraph", options, series_list)


@SETTINGS
@given(series_list=series_lists(), pretty=st.booleans())
def test_rickshaw_bytes_match_graphite(series_list, pretty) -> None:
    options = graphite_options(pretty=pretty)
    assert ours("rickshaw", series_list, pretty=pretty) == graphite_view("renderViewRickshaw", options, series_list)


def test_unknown_and_image_formats_are_refused_by_name() -> None:
    with pytest.raises(UnknownFormat, match="format='bogus'"):
        get_format("bogus")
    with pytest.raises(UnknownFormat, match="drawn by render.graphs"):
        get_format("png")
    assert set(FORMATS) >= {"json", "csv", "raw", "pickle", "msgpack"}


# --- /metrics/find shapes -------------------------------------------------------------

NODES = [
    NodeInfo("a.b", False),
    NodeInfo("a.x", False),
    NodeInfo("a.y", True, (Interval(0.0, 60.0),)),
]


def graphite_nodes(nodes: list[NodeInfo]) -> list:
    from graphite.intervals import Interval as GInterval
    from graphite.intervals import IntervalSet
    from graphite.node import BranchNode, LeafNode

    class Reader:
        def __init__(self, intervals):
            self.intervals = intervals

        def get_intervals(self):
            return IntervalSet([GInterval(i.start, i.end) for i in self.intervals])

    return [LeafNode(n.path, Reader(n.intervals)) if n.is_leaf else BranchNode(n.path) for n in nodes]


@pytest.mark.parametrize("wildcards", [False, True])
def test_tree_and_completer_shapes_match_graphite(wildcards) -> None:
    from graphite.metrics import views

    assert tree_json(NODES, "a.*", wildcards) == views.tree_json(graphite_nodes(NODES), "a.", wildcards)
    assert tree_json(NODES[2:], "a.*", wildcards) == views.tree_json(graphite_nodes(NODES[2:]), "a.", wildcards)
    assert completer_json(NODES, wildcards)["metrics"][:3] == [
        {"path": "a.b.", "name": "b", "is_leaf": "0"},
        {"path": "a.x.", "name": "x", "is_leaf": "0"},
        {"path": "a.y", "name": "y", "is_leaf": "1"},
    ]
    assert (len(completer_json(NODES, wildcards)["metrics"]) == 4) == wildcards


def test_json_nodes_and_node_list_match_graphite() -> None:
    from graphite.metrics import views

    assert nodes_json(NODES[::-1]) == views.json_nodes(graphite_nodes(NODES[::-1]))
    assert node_list(NODES, 1) == views.nodes_by_position(graphite_nodes(NODES), 1)
    with pytest.raises(ValueError, match="position=5"):
        node_list(NODES, 5)


def test_completer_query_rewrites_like_graphite() -> None:
    assert completer_query("a..b", False) == "a*.b*"
    assert completer_query("a.x,y.c*", True) == "a.{x,y}.c*"
    assert completer_query("a.{x,y}", True) == "a.{x,y}*"


def test_find_pickle_unpickles_to_graphite_interval_sets() -> None:
    """graphite-web's safe unpickler accepts it and its remote finder gets real IntervalSets."""
    from graphite.intervals import IntervalSet
    from graphite.metrics import views
    from graphite.util import unpickle

    nodes = [NodeInfo("a.b", False), NodeInfo("a.y", True, (Interval(10.5, 70.25),))]
    ours_loaded = unpickle.loads(nodes_pickle(nodes).body)
    theirs_loaded = unpickle.loads(views.pickle_nodes(graphite_nodes(nodes)))
    assert isinstance(ours_loaded[1]["intervals"], IntervalSet)
    for mine, theirs in zip(ours_loaded, theirs_loaded, strict=True):
        assert mine.keys() == theirs.keys()
        assert mine["path"] == theirs["path"] and mine["is_leaf"] is theirs["is_leaf"]
        if mine["is_leaf"]:
            assert vars(mine["intervals"]).keys() == vars(theirs["intervals"]).keys()
            assert mine["intervals"].size == theirs["intervals"].size
            assert [vars(i) for i in mine["intervals"]] == [vars(i) for i in theirs["intervals"]]


def test_find_msgpack_bytes_match_graphite() -> None:
    from graphite.metrics import views

    from render.formats.msgpack import nodes_msgpack

    assert nodes_msgpack(NODES).body == views.msgpack_nodes(graphite_nodes(NODES))
    assert msgpack.unpackb(nodes_msgpack(NODES).body)[2]["intervals"] == [[0.0, 60.0]]


@SETTINGS
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers(-(2**80), 2**80) | st.floats() | st.text(),
        lambda inner: st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=5), inner, max_size=4),
        max_leaves=20,
    )
)
def test_protocol2_writer_round_trips_plain_data(value) -> None:
    loaded = pickle.loads(dumps_protocol2(value))
    assert repr(loaded) == repr(value)
