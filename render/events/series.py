"""Series built from events, and ``verticalLine``, as graphite-web 1.1.10 builds them.

graphite's ``events(*tags)`` reads its event table from inside the function.
Carbyne's functions never fetch: an evaluator asks :func:`events_query` what
one ``events(...)`` call needs, runs that :class:`EventsQuery` against the
:class:`~render.events.store.EventStore` with the other reads of the request,
and hands the events it got to :func:`events_series`.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
from collections.abc import Sequence

import numpy as np

from render.attime import TimeSpecError, parse_time
from render.events.store import Event, EventStore
from render.functions.params import InputError
from render.functions.registry import RequestContext
from render.series import Series, whole_ints

#: graphite's spelling of "every event" in ``events("*")``.
ALL_EVENTS = ("*",)


@dataclasses.dataclass(frozen=True)
class EventsQuery:
    """The events one ``events(...)`` call draws: ``start <= when <= end`` with ``tags``.

    ``tags`` None means every event; otherwise graphite's "all of these
    tags" search (tags no event carries are ignored, see ``EventStore.find``).
    """

    start: int
    end: int
    tags: tuple[str, ...] | None

    def run(self, store: EventStore) -> list[Event]:
        """The matching events, ordered by time."""
        return store.find(self.start, self.end, None if self.tags is None else list(self.tags))


def events_query(ctx: RequestContext, tags: Sequence[str]) -> EventsQuery:
    """What ``events(*tags)`` over ``ctx``'s window needs from the store."""
    wanted = tuple(tags)
    return EventsQuery(ctx.start, ctx.end, None if wanted == ALL_EVENTS else wanted)


def events_name(tags: Sequence[str]) -> str:
    """graphite's name for ``events(*tags)``: ``events("a", "b")`` (``events("*")`` for all)."""
    return "events(" + ", ".join(f'"{tag}"' for tag in tags) + ")"


def event_counts(events: Sequence[Event], start: int, step: int, points: int) -> np.ndarray:
    """Events per bucket ``[start + i*step, start + (i+1)*step)``, NaN where there are none.

    Events fall into buckets by their whole second, as graphite's ``epoch()``
    truncates them; events outside the ``points`` buckets are left out.
    """
    seconds = np.fromiter((math.floor(e.when) for e in events), dtype=np.int64, count=len(events))
    offsets = (seconds - start) // step
    inside = offsets[(seconds >= start) & (offsets < points)]
    counts = np.bincount(inside, minlength=points).astype(np.float64)[:points]
    counts[counts == 0] = np.nan
    return counts


def events_series(ctx: RequestContext, events: Sequence[Event], tags: Sequence[str]) -> list[Series]:
    """graphite's ``events(*tags)``: how many events fall on each second of the request.

    ``events`` is what ``events_query(ctx, tags).run(store)`` returned. One
    series named ``events("tag", ...)``, step 1 from ``ctx.start`` to
    ``ctx.end``, None where no event happened, consolidated by ``sum``.
    An event at exactly ``ctx.end`` has no second left to count it in; graphite
    answers that request with an IndexError (HTTP 500), Carbyne leaves it out.
    """
    points = max(ctx.end - ctx.start, 0)
    counts = event_counts(events, ctx.start, 1, points)
    return [
        Series(
            events_name(tags),
            ctx.start,
            ctx.end,
            1,
            counts,
            consolidation_func="sum",
            x_files_factor=ctx.x_files_factor,
            int_points=whole_ints(counts),
        )
    ]


def resolve_timestamp(ctx: RequestContext, ts: str | int | float) -> int:
    """``verticalLine``'s ``ts`` in epoch seconds: a graphite time spec relative to ``ctx.now``.

    A number is taken as epoch seconds (graphite-web fails on a bare number).
    """
    if isinstance(ts, int | float) and not isinstance(ts, bool):
        return int(ts)
    now = datetime.datetime.fromtimestamp(ctx.now, ctx.tz)
    try:
        return int(parse_time(ts, ctx.tz, now).timestamp())
    except TimeSpecError as exc:
        raise InputError(f"cannot call verticalLine ts={ts}: {exc.reason}") from None


def vertical_line(
    ctx: RequestContext, ts: str | int | float, label: str | None = None, color: str | None = None
) -> list[Series]:
    """graphite's ``verticalLine(ts, label, color)``: a line across the graph at ``ts``.

    Two points of 1.0 with start = end = ``ts`` and step 1, drawn as
    infinite, named ``label`` (graphite's name is None without a label; here
    it is ``""``). ``ts`` before ``ctx.start`` or after ``ctx.end`` is an
    :class:`InputError` (graphite's InputParameterError, an HTTP 400).
    """
    moment = resolve_timestamp(ctx, ts)
    if moment < ctx.start:
        raise InputError(f"cannot call verticalLine ts={ts}: timestamp {moment} is before the start of the range {ctx.start}")
    if moment > ctx.end:
        raise InputError(f"cannot call verticalLine ts={ts}: timestamp {moment} is after the end of the range {ctx.end}")
    options: dict[str, object] = {"drawAsInfinite": True}
    if color:
        options["color"] = color
    name = "" if label is None else label
    return [
        Series(name, moment, moment, 1, [1.0, 1.0], x_files_factor=ctx.x_files_factor, options=options)
    ]
