"""events(), eventsOverlay() and verticalLine() through the Evaluator: every events query planned
with its call's own window and read once, compared with graphite-web 1.1.10's evaluateTarget
reading the same events from its Event table (and the same whisper files)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from app_support import NOW, graphite_http, write_metric
from oracle import differences, graphite_context, observe_carbyne, observe_graphite

from render.datasource import DataSource
from render.evaluator import Evaluator
from render.events.series import EventsQuery
from render.events.store import EventStore
from render.functions.params import InputError
from render.functions.registry import RequestContext, default_registry

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::PendingDeprecationWarning")

STEP = 60
WINDOW = (NOW - 600, NOW)
POSTED = [  # (when, tags)
    (NOW - 590, "deploy prod"),
    (NOW - 400.5, "deploy"),
    (NOW - 400, "deploy staging"),
    (NOW - 130, "deploy prod"),
    (NOW - 61, "alert"),
    (NOW - 900, "deploy prod"),  # only a window shifted back sees it
    (NOW - 700, "deploy"),
]


class SpyStore(EventStore):
    """An EventStore recording every search."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.searches: list[tuple[Any, ...]] = []

    def find(self, start=None, end=None, tags=None, set_operation=None):
        self.searches.append((start, end, None if tags is None else tuple(tags)))
        return super().find(start, end, tags, set_operation)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, graphite_web: None) -> Iterator[tuple[Path, SpyStore]]:
    data_dir = tmp_path_factory.mktemp("events")
    write_metric(data_dir, "app.rps", NOW - 20 * STEP, STEP, [float(i % 7) for i in range(20)])
    store = SpyStore(data_dir / "events.db")
    for i, (when, tags) in enumerate(POSTED):
        store.add(f"e{i}", tags, when=when)
    with graphite_http(data_dir):
        from graphite.events.models import Event
        from graphite.util import epoch_to_dt

        Event.objects.all().delete()
        for i, (when, tags) in enumerate(POSTED):
            Event.objects.create(what=f"e{i}", tags=tags, when=epoch_to_dt(when), data="")
        try:
            yield data_dir, store
        finally:
            Event.objects.all().delete()
            store.close()


def context(window=WINDOW) -> RequestContext:
    return RequestContext(start=window[0], end=window[1], now=NOW)


def ours(world, targets: list[str], window=WINDOW, ctx: RequestContext | None = None):
    data_dir, store = world
    return Evaluator(DataSource(data_dir), events=store).evaluate(targets, ctx or context(window))


def theirs(targets: list[str], window=WINDOW):
    from graphite.render.evaluator import evaluateTarget

    request_context = graphite_context(context(window))
    request_context["targets"] = list(targets)
    return evaluateTarget(request_context, list(targets))


@pytest.mark.parametrize(
    "targets",
    [
        ['events("deploy")'],
        ['events("*")', 'events("deploy", "prod")', 'events("bogus")'],
        ['drawAsInfinite(events("deploy"))', "app.rps"],
        ['timeShift(events("deploy"),"5min")'],  # the shifted window has its own events
        ['timeShift(drawAsInfinite(events("*")),"-2min")'],
        ['summarize(events("deploy"),"1min","sum")'],
        ['movingSum(events("deploy"),"2min")'],
        # absolute times (graphite reads relative ones against the wall clock) and labels (graphite
        # names an unlabelled line None, Carbyne ''; see test_events_series)
        ['verticalLine("22:11_20231114","deploy","red")', 'verticalLine("22:04_20231114","start")'],
        ['verticalLine("22:11_20231114","x")|color("blue")', "app.rps"],
    ],
    ids=lambda t: " & ".join(t),
)
def test_events_like_graphite(world, targets) -> None:
    mine = ours(world, targets)
    problems = differences([observe_carbyne(s) for s in mine], [observe_graphite(s) for s in theirs(targets)])
    assert not problems, "\n".join(problems)
    assert mine


def test_each_distinct_query_is_read_once_with_its_own_window(world) -> None:
    data_dir, store = world
    store.searches.clear()
    ctx = context()
    Evaluator(DataSource(data_dir), events=store).evaluate(
        ['events("deploy")', 'drawAsInfinite(events("deploy"))', 'events("*")',
         'timeShift(events("deploy"),"5min")', 'eventsOverlay(app.rps,"deploy")'],
        ctx,
    )
    start, end = WINDOW
    assert sorted(store.searches, key=str) == sorted([
        (start, end, ("deploy",)),
        (start, end, None),
        (start - 300, end - 300, ("deploy",)),
    ], key=str)
    assert set(ctx.events) == {
        EventsQuery(start, end, ("deploy",)), EventsQuery(start, end, None),
        EventsQuery(start - 300, end - 300, ("deploy",)),
    }


def test_overlay_puts_the_events_at_the_series_step(world) -> None:
    rps, overlay = ours(world, ['eventsOverlay(app.rps, "deploy")'])
    [graphite_rps] = theirs(["app.rps"])
    assert differences([observe_carbyne(rps)], [observe_graphite(graphite_rps)]) == []
    assert overlay.name == 'drawAsInfinite(events("deploy"))' and overlay.options["drawAsInfinite"]
    assert (overlay.start, overlay.end, overlay.step) == (rps.start, rps.end, rps.step)
    expected = [0.0] * len(rps)
    for when, tags in POSTED:
        second = math.floor(when)
        if "deploy" in tags.split() and WINDOW[0] <= when <= WINDOW[1] and rps.start <= second < rps.end:
            expected[(second - rps.start) // STEP] += 1
    assert overlay.to_list() == [v or None for v in expected]
    # no series: graphite's 1-second drawAsInfinite(events(...)) over the request
    [alone] = ours(world, ['eventsOverlay(nothing.here, "deploy")'])
    [graphite_alone] = theirs(['drawAsInfinite(events("deploy"))'])
    assert differences([observe_carbyne(alone)], [observe_graphite(graphite_alone)]) == []


def test_without_a_store_events_are_all_null(world) -> None:
    data_dir, _ = world
    [series] = Evaluator(DataSource(data_dir)).evaluate(['events("deploy")'], context())
    assert series.name == 'events("deploy")' and len(series) == 600
    assert set(series.to_list()) == {None}


def test_a_call_the_plan_missed_says_so() -> None:
    with pytest.raises(RuntimeError, match=r"cannot call events tags=\('deploy',\): no events were read"):
        default_registry().call("events", context(), ["deploy"])
    with pytest.raises(RuntimeError, match="cannot call eventsOverlay"):
        default_registry().call("eventsOverlay", context(), [[], "deploy"])


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("events()", "tags=()"),
        ("events(app.rps)", "tags=.*not a string"),
        ('verticalLine("-20min")', "before the start"),
        ('verticalLine("bogus")', "verticalLine ts=bogus"),
        ("eventsOverlay(app.rps)", "tags=()"),
    ],
)
def test_bad_events_calls_are_input_errors(world, target, message) -> None:
    with pytest.raises(InputError, match=message):
        ours(world, [target])
