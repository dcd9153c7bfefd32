"""events(), verticalLine() and eventsOverlay() against graphite-web 1.1.10's functions.

graphite's ``events`` reads its Django event table, so each case writes the
same events into that table (through graphite's own model, tags and all) and
into a Carbyne EventStore, then compares the series both engines build.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
from collections.abc import Iterator, Sequence

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle import assert_same, graphite_call, graphite_context, observe_carbyne, observe_graphite

from render.events.overlay import events_overlay
from render.events.series import (
    EventsQuery,
    events_name,
    events_query,
    events_series,
    resolve_timestamp,
    vertical_line,
)
from render.events.store import EventStore
from render.functions import InputError, RequestContext
from render.series import Series

pytestmark = [
    pytest.mark.usefixtures("graphite_tables"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning", "ignore::DeprecationWarning"),
]

EXAMPLES = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                          HealthCheck.function_scoped_fixture])

Posted = Sequence[tuple[float, str]]  # (when, stored tag string)


@pytest.fixture(scope="module")
def graphite_tables(graphite_web) -> None:
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", run_syncdb=True, verbosity=0, interactive=False)
    with connection.cursor() as cursor:  # a scratch oracle database: no need to fsync every insert
        cursor.execute("PRAGMA synchronous = OFF")


def graphite_direct(name: str, ctx: RequestContext, *args):
    """graphite's function ``name`` called on graphite objects as they are."""
    from graphite.functions import SeriesFunction

    return SeriesFunction(name)(graphite_context(ctx), *args)


def load_graphite(posted: Posted) -> None:
    """graphite-web's event table holding exactly ``posted`` (via its Event model)."""
    from graphite.events.models import Event
    from graphite.util import epoch_to_dt
    from tagging.models import Tag, TaggedItem

    TaggedItem.objects.all().delete()
    Tag.objects.all().delete()
    Event.objects.all().delete()
    for i, (when, tags) in enumerate(posted):
        Event.objects.create(what=f"e{i}", tags=tags, when=epoch_to_dt(when), data="")


@contextlib.contextmanager
def carbyne_store(posted: Posted) -> Iterator[EventStore]:
    with tempfile.TemporaryDirectory() as folder:
        store = EventStore.in_data_dir(folder)
        for i, (when, tags) in enumerate(posted):
            store.add(f"e{i}", tags, when=when)
        try:
            yield store
        finally:
            store.close()


def carbyne_events(ctx: RequestContext, posted: Posted, tags: Sequence[str]) -> list[Series]:
    with carbyne_store(posted) as store:
        return events_series(ctx, events_query(ctx, tags).run(store), tags)


def graphite_events(ctx: RequestContext, posted: Posted, tags: Sequence[str]) -> list:
    load_graphite(posted)
    return graphite_call("events", ctx, list(tags))


POSTED = [(100, "deploy"), (100.5, "deploy x"), (130, "myapp,prod,deploy"), (150, "x"),
          (159.9, "deploy"), (160, "deploy"), (10, "deploy")]


FIXED_TAGS = [("deploy",), ("*",), ("x",), ("x", "deploy"), ("deploy", "bogus"), ("bogus",), ("prod",),
              ("*", "x"), ("myapp,prod,deploy",)]


@pytest.mark.parametrize(("start", "end"), [(90, 160), (100, 101), (0, 300), (120, 120), (161, 200)])
def test_events_matches_graphite(start, end):
    ctx = RequestContext(start=start, end=end, now=end, x_files_factor=0.25)
    posted = [p for p in POSTED if math.floor(p[0]) != end]  # graphite crashes on those (below)
    load_graphite(posted)
    with carbyne_store(posted) as store:
        for tags in FIXED_TAGS:
            ours = events_series(ctx, events_query(ctx, tags).run(store), tags)
            assert_same(ours, graphite_call("events", ctx, list(tags)))


def test_event_at_the_end_crashes_graphite_and_is_left_out_here():
    ctx = RequestContext(start=100, end=160, now=160)
    with pytest.raises(IndexError):
        graphite_events(ctx, POSTED, ("deploy",))
    series = carbyne_events(ctx, POSTED, ("deploy",))[0]
    assert len(series) == 60
    assert series.to_list()[0] == 2.0  # 100 and 100.5 share a second
    assert series.to_list()[59] == 1.0  # 159.9
    assert np.nansum(series.values) == 4


def test_events_query_and_name():
    ctx = RequestContext(start=10, end=20, now=20)
    assert events_query(ctx, ("*",)) == EventsQuery(10, 20, None)
    assert events_query(ctx, ["a", "b"]) == EventsQuery(10, 20, ("a", "b"))
    assert events_name(("a", "b")) == 'events("a", "b")'
    assert events_name(("*",)) == 'events("*")'


whens = st.one_of(st.integers(0, 120), st.integers(0, 119).map(lambda s: s + 0.5))
stored_tags = st.sampled_from(["deploy", "deploy x", "x,deploy", "prod deploy", "", "x", '"a b" deploy'])
queries = st.sampled_from([("*",), ("deploy",), ("x", "deploy"), ("bogus",), ("deploy", "bogus"),
                           ("*", "x"), ("a b",), ("prod", "deploy", "x")])


@EXAMPLES
@given(st.lists(st.tuples(whens, stored_tags), max_size=8), st.integers(0, 60), st.integers(0, 80), queries)
def test_events_matches_graphite_generated(posted, start, length, tags):
    ctx = RequestContext(start=start, end=start + length, now=start + length)
    ours = carbyne_events(ctx, posted, tags)
    try:
        theirs = graphite_events(ctx, posted, tags)
    except IndexError:  # graphite's crash on an event at exactly `end`
        assert any(when == ctx.end for when, _ in posted)
        theirs = graphite_events(ctx, [p for p in posted if p[0] != ctx.end], tags)
    assert_same(ours, theirs)


# --- verticalLine ----------------------------------------------------------------------------


CTX = RequestContext(start=1000, end=2000, now=2000, x_files_factor=0.5)


@pytest.mark.parametrize(
    "args",
    [["1500", "deploy", "red"], ["1000", "start"], ["2000", "end", "#00ff00"], ["00:25_19700101", "abs"],
     ["1234", "a.b;dc=east"], ["1500", "no color", ""]],
)
def test_vertical_line_matches_graphite(args):
    assert_same(vertical_line(CTX, *args), graphite_call("verticalLine", CTX, args))


def test_vertical_line_without_label_is_named_empty_where_graphite_says_none():
    (theirs,) = graphite_call("verticalLine", CTX, ["1500"])
    (ours,) = vertical_line(CTX, "1500")
    assert theirs.name is None
    assert ours.name == ""
    mine, graphites = observe_carbyne(ours), observe_graphite(theirs)
    assert (mine.start, mine.end, mine.step, mine.values, mine.options) == (
        graphites.start, graphites.end, graphites.step, graphites.values, graphites.options)


@pytest.mark.parametrize("ts", ["999", "2001", "-1d"])
def test_vertical_line_outside_the_range_is_an_input_error_in_both(ts):
    from graphite.errors import InputParameterError
    from graphite.functions import SeriesFunction

    with pytest.raises(InputParameterError):
        SeriesFunction("verticalLine")(graphite_context(CTX), ts)
    with pytest.raises(InputError, match=f"cannot call verticalLine ts={ts}: timestamp"):
        vertical_line(CTX, ts)


def test_vertical_line_times_are_relative_to_the_request_now_and_numbers_are_epochs():
    ctx = RequestContext(start=0, end=10_000, now=7200)
    assert vertical_line(ctx, "-1h")[0].start == 3600
    assert resolve_timestamp(ctx, 1234.9) == 1234
    with pytest.raises(InputError, match="cannot call verticalLine ts=soon: "):
        vertical_line(ctx, "soon")


# --- eventsOverlay -----------------------------------------------------------------------------


def test_overlay_appends_markers_at_the_series_step():
    ctx = RequestContext(start=0, end=600, now=600)
    a = Series("app.rps", 60, 600, 60, [1, 2, 3, 4, 5, 6, 7, 8, 9])
    b = Series("app.errors", 120, 600, 120, [1, 2, 3, 4])
    posted = [(60, "deploy"), (119.9, "deploy"), (200, "deploy prod"), (30, "deploy"), (600, "deploy")]
    with carbyne_store(posted) as store:
        found = events_query(ctx, ["deploy"]).run(store)
    result = events_overlay(ctx, [a, b], found, ["deploy"])
    assert result[:2] == [a, b]
    marker = result[2]
    assert (marker.name, marker.start, marker.end, marker.step) == ('drawAsInfinite(events("deploy"))', 60, 600, 60)
    assert marker.to_list() == [2.0, None, 1.0, None, None, None, None, None, None]
    assert dict(marker.tags) == {"name": 'events("deploy")', "drawAsInfinite": "1"}
    assert dict(marker.options) == {"drawAsInfinite": True}
    assert marker.consolidation_func == "sum"


def test_overlay_of_no_series_is_graphites_draw_as_infinite_events():
    ctx = RequestContext(start=90, end=200, now=200)
    posted = [(100, "deploy"), (150, "deploy x")]
    with carbyne_store(posted) as store:
        (ours,) = events_overlay(ctx, [], events_query(ctx, ["deploy"]).run(store), ["deploy"])
    load_graphite(posted)
    (events,) = graphite_call("events", ctx, ["deploy"])
    assert_same([ours], graphite_direct("drawAsInfinite", ctx, [events]))


@EXAMPLES
@given(st.lists(st.tuples(whens, stored_tags), max_size=8), st.sampled_from([1, 5, 10, 30, 60]),
       st.integers(0, 4), st.integers(1, 6), queries)
def test_overlay_is_graphites_events_summed_per_step(posted, step, first, count, tags):
    """Over the series' window, each marker value is graphite's 1-second events summed over one step."""
    start = first * step
    end = start + count * step
    series = Series("app.rps", start, end, step, [1.0] * count)
    ctx = RequestContext(start=start, end=end, now=end)
    kept = [p for p in posted if p[0] != end]  # graphite crashes on an event at `end`
    with carbyne_store(kept) as store:
        marker = events_overlay(ctx, [series], events_query(ctx, tags).run(store), tags)[1]
    load_graphite(kept)
    (drawn,) = graphite_direct("drawAsInfinite", ctx, graphite_direct("events", ctx, *tags))
    per_second = np.array([np.nan if v is None else v for v in drawn], dtype=float)
    buckets = per_second.reshape(count, step)
    expected = np.where(np.isnan(buckets).all(axis=1), np.nan, np.nansum(buckets, axis=1))
    assert np.array_equal(marker.values, expected, equal_nan=True)
    assert (marker.name, dict(marker.tags), marker.path_expression) == (
        drawn.name, {k: str(v) for k, v in drawn.tags.items()}, drawn.pathExpression)
    assert (marker.start, marker.end, marker.step) == (series.start, series.end, series.step)
