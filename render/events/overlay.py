"""``eventsOverlay``: deploy markers on a graph in one call, at the graph's own step.

graphite's idiom is two targets, ``target=app.rps&target=drawAsInfinite(events("deploy"))``.
The events series has a 1-second step, so a day's JSON carries 86,400 mostly
null points, and its timestamps line up with nothing else on the graph.
``eventsOverlay`` is the superset graphite lacks.
"""

from __future__ import annotations

from collections.abc import Sequence

from render.events.series import event_counts, events_name, events_series
from render.events.store import Event
from render.functions.registry import RequestContext
from render.series import Series, whole_ints


def events_overlay(
    ctx: RequestContext, series_list: Sequence[Series], events: Sequence[Event], tags: Sequence[str]
) -> list[Series]:
    """``eventsOverlay(seriesList, *tags)``: the series, then their events drawn as vertical lines.

    Returns ``seriesList`` unchanged followed by one series that is exactly
    graphite's ``drawAsInfinite(events(*tags))`` (same name, tags, path
    expression, ``sum`` consolidation and ``drawAsInfinite`` option) except
    that it has the first series' start, end and step: each value is the
    number of events in ``[t, t + step)`` (whisper's meaning of a point at
    ``t``), None where there are none. With no series it is graphite's
    1-second ``drawAsInfinite(events(*tags))`` over the request.

    ``events`` is what ``events_query(ctx, tags).run(store)`` returned, i.e.
    the events between ``from`` and ``until``: a last bucket reaching past
    ``until`` counts only events up to ``until``.
    Example: ``eventsOverlay(sumSeries(app.*.rps), "deploy", "prod")``.
    """
    if series_list:
        first = series_list[0]
        points = len(first.values)
        counts = event_counts(events, first.start, first.step, points)
        events_part = Series(
            events_name(tags),
            first.start,
            first.end,
            first.step,
            counts,
            consolidation_func="sum",
            x_files_factor=ctx.x_files_factor,
            int_points=whole_ints(counts),
        )
    else:
        events_part = events_series(ctx, events, tags)[0]
    overlay = events_part.copy(
        name=f"drawAsInfinite({events_part.name})",
        tags={**events_part.tags, "drawAsInfinite": "1"},
        path_expression=events_part.path_expression,
        options={**events_part.options, "drawAsInfinite": True},
    )
    return [*series_list, overlay]
