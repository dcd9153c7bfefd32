"""Values graphite-web holds as Python ints, and so prints as ``1`` instead of ``1.0``.

Stored data is always float, but graphite computes some values as ints: an
event count, ``countSeries``, ``isNonNull``, ``changed``, a count
aggregation, ``transformNull``'s default 0, and whatever sums, shifts or
keeps them. JSON, raw and csv show the difference. Each target below runs in
both engines; the oracle compares which positions hold ints as well as the
values. The byte tests render through both HTTP apps.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from app_support import NOW, carbyne_get, graphite_get, graphite_http, make_app, write_metric
from oracle import (
    carbyne_evaluate,
    differences,
    graphite_evaluate,
    observe_carbyne,
    observe_graphite,
)

from render.events.store import EventStore
from render.series import Series

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::PendingDeprecationWarning")

DATA = {
    "a.b.c": (0, 60, [1.5, None, 3.0, 4.0, None, 6.0, 7.0, 8.0, None, 10.0]),
    "a.b.d": (0, 60, [None, 2.0, 3.5, None, 5.0, 6.0, None, 8.0, 9.0, 10.0]),
}
SOURCES = ["isNonNull(a.b.*)", "countSeries(a.b.*)", "transformNull(a.b.*)", "changed(a.b.*)",
           "transformNull(a.b.*,0)", "summarize(a.b.*,'3min','count')"]
WRAPPERS = [
    "%s", "absolute(%s)", "scale(%s,2)", "offset(%s,1)", "derivative(%s)", "nonNegativeDerivative(%s)",
    "nonNegativeDerivative(%s,5)", "perSecond(%s)", "integral(%s)", "delay(%s,2)", "delay(%s,-1)",
    "keepLastValue(%s)", "interpolate(%s)", "removeBelowValue(%s,1)", "removeAboveValue(%s,1)",
    "sumSeries(%s)", "maxSeries(%s)", "minSeries(%s)", "diffSeries(%s)", "multiplySeries(%s)",
    "averageSeries(%s)", "rangeOfSeries(%s)", "aggregate(%s,'count')", "aggregate(%s,'last')",
    "percentileOfSeries(%s,50)", "nPercentile(%s,50)", "movingSum(%s,2)", "movingMax(%s,3)",
    "movingAverage(%s,2)", "movingWindow(%s,2,'count')", "summarize(%s,'2min','sum')",
    "summarize(%s,'2min','avg')", "hitcount(%s,'2min')", "stacked(%s)", "offsetToZero(%s)",
    "aggregateLine(%s,'sum')", "aggregateLine(%s,'max',true)", "groupByNode(%s,1,'sum')",
    "alias(drawAsInfinite(%s),'x')", "timeShift(%s,'1min')", "consolidateBy(%s,'sum')",
    "sortByMaxima(%s)", "highestMax(%s,1)", "exponentialMovingAverage(%s,2)",
]
TARGETS = sorted({w % s for w in WRAPPERS for s in SOURCES}) + [
    "countSeries()", "exponentialMovingAverage(transformNull(a.b.c,0),1)", "identity('x')",
    "constantLine(100)", "threshold(7,'t')", "aggregate(a.b.*,'count')",
    # the first forecast is the first value itself (its bootstrap shorter than one step)
    "holtWintersForecast(countSeries(),'2min')", "holtWintersForecast(transformNull(a.b.*),'30s')",
    "holtWintersConfidenceBands(countSeries(),3,'2min')",
]


def _problems(target: str) -> list[str]:
    ours = carbyne_evaluate(target, 0, 600, DATA)
    try:
        theirs = graphite_evaluate(target, 0, 600, DATA)
    except Exception:  # graphite-web fails on some of these (nothing to compare)
        return []
    return differences([observe_carbyne(s) for s in ours], [observe_graphite(s) for s in theirs])


@pytest.mark.usefixtures("graphite_web")
@pytest.mark.parametrize("target", TARGETS)
def test_ints_where_graphite_has_ints(target: str) -> None:
    problems = _problems(target)
    assert not problems, "\n".join(problems)


@pytest.mark.usefixtures("graphite_web")
def test_the_comparison_sees_an_int_printed_as_a_float() -> None:
    ours = carbyne_evaluate("isNonNull(a.b.c)", 0, 600, DATA)
    theirs = graphite_evaluate("isNonNull(a.b.c)", 0, 600, DATA)
    floats = [s.copy(int_points=None) for s in ours]
    problems = differences([observe_carbyne(s) for s in floats], [observe_graphite(s) for s in theirs])
    assert problems and "int_positions" in problems[0]


def test_new_values_drop_the_marks_unless_given() -> None:
    series = Series("x", 0, 180, 60, [1.0, None, 3.0], int_points=[True, True, True])
    assert series.output_list() == [1, None, 3]
    assert series.copy(name="y").output_list() == [1, None, 3]
    assert series.copy(values=[1.0, 2.0, 3.0]).output_list() == [1.0, 2.0, 3.0]
    with pytest.raises(ValueError, match="int_points"):
        Series("x", 0, 180, 60, [1.0, 2.0, 3.0], int_points=[True])


# --- the same bytes over HTTP ----------------------------------------------------------------

START = NOW - 600
EVENTS = [(NOW - 590, "deploy prod"), (NOW - 400, "deploy"), (NOW - 130, "deploy prod"), (NOW - 61, "alert")]


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory, graphite_web: None) -> Iterator[tuple]:
    data_dir: Path = tmp_path_factory.mktemp("ints")
    write_metric(data_dir, "app.rps", START - 600, 60, [None if i % 5 == 2 else float(i % 7) for i in range(20)])
    write_metric(data_dir, "app.err", START - 600, 60, [None if i % 3 == 0 else i / 4 for i in range(20)])
    write_metric(data_dir, "mix.a", START, 60, [None, 0.5, None, -2.0, 3.0, None, None, 1.5, None, None])
    store = EventStore(data_dir / "events.db")
    for i, (when, tags) in enumerate(EVENTS):
        store.add(f"e{i}", tags, when=when)
    store.close()
    with graphite_http(data_dir) as graphite:
        from graphite.events.models import Event
        from graphite.util import epoch_to_dt

        Event.objects.all().delete()
        for i, (when, tags) in enumerate(EVENTS):
            Event.objects.create(what=f"e{i}", tags=tags, when=epoch_to_dt(when), data="")
        try:
            yield make_app(data_dir, events_db=data_dir / "events.db"), graphite
        finally:
            Event.objects.all().delete()


@pytest.mark.parametrize("fmt", ["json", "raw", "csv"])
@pytest.mark.parametrize(
    "targets",
    [
        ['drawAsInfinite(events("deploy"))', "app.rps"],
        ['summarize(events("*"),"5min","sum")'],
        ["countSeries(app.*)", "sumSeries(isNonNull(app.*))"],
        ["transformNull(app.rps)", "app.err"],
        ["stacked(transformNull(app.*))"],
    ],
    ids=lambda t: " & ".join(t),
)
def test_http_bodies_match_graphite(apps, targets: list[str], fmt: str) -> None:
    client, graphite = apps
    params = {"target": targets, "format": fmt, "from": str(START), "until": str(NOW), "now": str(NOW)}
    ours = carbyne_get(client, "/render", params)
    theirs = graphite_get(graphite, "/render", params)
    assert ours == theirs
    assert len(ours[2]) > 2  # series, not an empty answer


@pytest.mark.parametrize("extra", [{"maxDataPoints": "7"}, {"noNullPoints": "true"}, {"pretty": "1"}])
def test_json_options_keep_ints_like_graphite(apps, extra: dict[str, str]) -> None:
    client, graphite = apps
    params = {"target": ['events("deploy")', "app.rps", "isNonNull(app.err)"], "format": "json",
              "from": str(START), "until": str(NOW), "now": str(NOW), **extra}
    ours = carbyne_get(client, "/render", params)
    assert ours == graphite_get(graphite, "/render", params)
    assert b"[1, " in ours[2] or b"[\n        1," in ours[2]


@pytest.mark.parametrize("func", ["first", "last", "min", "max", "sum", "average"])
def test_max_data_points_keeps_the_int_its_consolidation_picks(apps, func: str) -> None:
    """A bucket mixing floats and transformNull's int 0: first/last/min/max give the value they
    pick (an int when it is one), sum an int only over ints, average never."""
    client, graphite = apps
    params = {"target": f"consolidateBy(transformNull(mix.a),'{func}')", "format": "json",
              "maxDataPoints": "4", "from": str(START), "until": str(NOW), "now": str(NOW)}
    ours = carbyne_get(client, "/render", params)
    assert ours == graphite_get(graphite, "/render", params)
    assert b"[0, " in ours[2] or func == "average"  # the int 0 picked or summed; average makes it 0.0
