"""Special: series that come from nowhere, and per-series render settings (graphite's "Special" group).

Also here, whatever graphite group they belong to: the functions whose series
come from outside their series arguments, each declaring to the evaluator
what it needs instead of fetching it (functions never fetch):

* ``seriesByTag`` is resolved by the data source like a path
  (``source_pattern``); ``groupByTags``/``aliasByTags`` work on tags.
* ``events`` and ``eventsOverlay`` read the events the evaluator put into
  ``ctx.events`` for their planned query (``events_param``); ``verticalLine``
  draws at a time of its own.
* ``applyByNode``, ``useSeriesAbove`` and ``aliasQuery`` build new targets
  from their evaluated arguments (``generates``); the evaluator plans, reads
  and evaluates those and hands the body ``generated={target: series}``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from render.events.overlay import events_overlay
from render.events.series import events_query, events_series, vertical_line
from render.events.store import Event
from render.functions.naming import node_key
from render.functions.params import InputError, Param, ParamType
from render.functions.registry import RequestContext, default_registry, series_function
from render.series import CONSOLIDATION_FUNCTIONS, Series
from render.tagquery import TagQueryError, parse_path

SERIES_LIST = Param("seriesList", ParamType.seriesList, required=True)


def constant_line(ctx: RequestContext, value: float, function: str = "constantLine") -> Series:
    """Three points at ``value``: at the request's start, middle and end.

    An int ``value`` stays an int in the output formats, as in graphite.

    Named ``str(value)`` with path expression ``constantLine(<value>)``.
    ``function`` is the caller named when the window is too short.
    """
    step = int((ctx.end - ctx.start) / 2.0)
    if step <= 0:
        # graphite-web draws the line with step 0 over a window under 2 s: its json rendering
        # then fails (range() with step 0, HTTP 500), its csv shows three points at one time and
        # functions over the line divide by its step. Refused rather than copied.
        raise InputError(
            f"cannot call {function} until={ctx.end}: the window from {ctx.start} must be at least 2 seconds long"
        )
    return Series(
        str(value),
        ctx.start,
        ctx.end,
        step,
        [value, value, value],
        path_expression=f"constantLine({value})",
        x_files_factor=ctx.x_files_factor,
        int_points=[True] * 3 if isinstance(value, int) and not isinstance(value, bool) else None,
    )


@series_function("constantLine", group="Special", params=[Param("value", ParamType.float, required=True)])
def constant_line_function(ctx: RequestContext, value: float) -> list[Series]:
    """A horizontal line at ``value`` across the whole requested time range."""
    return [constant_line(ctx, value)]


@series_function(
    "consolidateBy",
    group="Special",
    params=[
        Param("seriesList", ParamType.seriesList, required=True),
        Param(
            "consolidationFunc",
            ParamType.string,
            required=True,
            options=CONSOLIDATION_FUNCTIONS,
        ),
    ],
)
def consolidate_by(ctx: RequestContext, series_list: list[Series], consolidation_func: str) -> list[Series]:
    """Choose how points are merged when a series must be consolidated.

    That happens to fit ``maxDataPoints`` or the graph's width, and when
    series of different steps are combined. The default is ``average``; one
    of sum, average (avg), avg_zero, min, max, first, last.
    """
    result = []
    for series in series_list:
        name = f'consolidateBy({series.name},"{consolidation_func}")'
        result.append(
            series.copy(
                name=name,
                path_expression=name,
                consolidation_func=consolidation_func,
                tags={**series.tags, "consolidateBy": consolidation_func},
            )
        )
    return result


# --- tags ------------------------------------------------------------------------------


@series_function(
    "seriesByTag",
    group="Special",
    params=[Param("tagExpressions", ParamType.string, required=True, multiple=True)],
    source_pattern=True,
)
def series_by_tag(ctx: RequestContext, *tag_expressions: str) -> list[Series]:
    """Series whose tags match every expression, e.g. ``seriesByTag("name=cpu", "dc=~east|west")``.

    ``tag=spec`` (equal), ``tag!=spec`` (not equal), ``tag=~regex`` and
    ``tag!=~regex`` (matches / does not match, anchored at the start). An
    expression that matches the empty value also matches series without that
    tag; at least one expression must not match the empty value. Series are
    named by their tagged path and their path expression is the call's text.
    """
    raise RuntimeError(
        f"cannot call seriesByTag tagExpressions={tag_expressions!r}: its series are found by the "
        "data source while the evaluator plans (render.evaluator.Evaluator)"
    )


def _group_tag_key(series: Series, name: str, tags: Sequence[str]) -> str:
    """graphite's groupByTags key: ``name;tag=value;...`` with the tags' strings sorted."""
    pairs = sorted(f"{tag}={series.tags.get(tag, '')}" for tag in tags if tag != "name")
    return ";".join([name, *pairs])


@series_function(
    "groupByTags",
    group="Combine",
    params=[
        SERIES_LIST,
        Param("callback", ParamType.aggOrSeriesFunc, required=True),
        Param("tags", ParamType.tag, required=True, multiple=True),
    ],
)
def group_by_tags(ctx: RequestContext, series_list: list[Series], callback: str, *tags: str) -> list[Series]:
    """Group series by the values of some tags and combine each group with ``callback``.

    ``seriesByTag("name=cpu")|groupByTags("average", "dc")`` gives one series
    per ``dc``, named and tagged ``cpu;dc=east``, ... The name part is the
    series' common ``name`` tag, or ``callback`` when they differ; grouping by
    ``name`` too keeps each group's own name. ``callback`` is an aggregation
    (average, sum, max, ...) or a combining function such as ``sumSeries``.
    Every series must carry every tag (graphite fails on an empty value).
    """
    if not tags:
        raise InputError("cannot call groupByTags tags=(): no tags specified")
    by_name = "name" in tags
    names = {s.tags.get("name", s.name) for s in series_list}
    common = next(iter(names)) if len(names) == 1 else callback
    groups: dict[str, list[Series]] = {}
    for series in series_list:
        head = series.tags.get("name", series.name) if by_name else common
        groups.setdefault(_group_tag_key(series, head, tags), []).append(series)
    registry = default_registry()
    result = []
    for key, members in groups.items():
        try:
            parsed = parse_path(key)
        except TagQueryError as exc:
            raise InputError(f"cannot call groupByTags tags={tags!r}: group {key!r} is not a tagged name: {exc}") from None
        if callback in registry:
            combined = registry.get(callback)(ctx, members)[0]
        else:
            combined = registry.get("aggregate")(ctx, members, callback)[0]
        result.append(combined.copy(name=key, path_expression=key, tags=dict(parsed.tags)))
    return result


@series_function(
    "aliasByTags",
    group="Alias",
    params=[SERIES_LIST, Param("tags", ParamType.nodeOrTag, required=True, multiple=True)],
)
def alias_by_tags(ctx: RequestContext, series_list: list[Series], *tags: int | str) -> list[Series]:
    """Name each series by some of its tag values and/or nodes, joined by ``.`` (as ``aliasByNode``).

    ``seriesByTag("name=cpu")|aliasByTags("server", "name")`` gives ``web01.cpu``, ...
    """
    return [s.copy(name=node_key(s, tags)) for s in series_list]


# --- events ----------------------------------------------------------------------------


def planned_events(ctx: RequestContext, function: str, tags: Sequence[str]) -> list[Event]:
    """The events the evaluator read for ``function(*tags)`` over ``ctx``'s window."""
    query = events_query(ctx, tags)
    try:
        return ctx.events[query]
    except KeyError:
        raise RuntimeError(
            f"cannot call {function} tags={tuple(tags)!r}: no events were read for it "
            f"over {ctx.start}..{ctx.end} (render.evaluator.Evaluator plans every events query)"
        ) from None


@series_function(
    "events",
    group="Special",
    params=[Param("tags", ParamType.string, required=True, multiple=True)],
    events_param="tags",
)
def events(ctx: RequestContext, *tags: str) -> list[Series]:
    """How many events happened in each second of the graph; ``events("*")`` counts every event.

    ``events("deploy", "prod")`` counts events carrying both tags. Usually
    drawn as vertical lines: ``drawAsInfinite(events("deploy"))``.
    """
    return events_series(ctx, planned_events(ctx, "events", tags), tags)


@series_function(
    "eventsOverlay",
    group="Graph",
    params=[SERIES_LIST, Param("tags", ParamType.string, required=True, multiple=True)],
    events_param="tags",
)
def events_overlay_function(ctx: RequestContext, series_list: list[Series], *tags: str) -> list[Series]:
    """The series followed by their events as vertical lines at the first series' step.

    A Carbyne addition: ``eventsOverlay(app.rps, "deploy")`` is
    ``app.rps`` plus ``drawAsInfinite(events("deploy"))`` counted per step of
    ``app.rps`` instead of per second.
    """
    return events_overlay(ctx, series_list, planned_events(ctx, "eventsOverlay", tags), tags)


@series_function(
    "verticalLine",
    group="Graph",
    params=[Param("ts", ParamType.date, required=True), Param("label", ParamType.string),
            Param("color", ParamType.string)],
)
def vertical_line_function(
    ctx: RequestContext, ts: str | int | float, label: str | None = None, color: str | None = None
) -> list[Series]:
    """A vertical line at time ``ts`` (``"-5min"``, ``"16:00_20110501"``, ...), named ``label``.

    ``ts`` must lie within the requested range.
    """
    return vertical_line(ctx, ts, label, color)


# --- functions that evaluate targets they build -------------------------------------------


def _prefixes(series_list: Sequence[Series], node_num: int) -> list[str]:
    return sorted({".".join(s.name.split(".")[: node_num + 1]) for s in series_list})


def _apply_by_node_targets(arguments: Mapping[str, Any], ctx: RequestContext) -> list[str]:
    template = arguments["templateFunction"]
    return [template.replace("%", prefix) for prefix in _prefixes(arguments["seriesList"], arguments["nodeNum"])]


@series_function(
    "applyByNode",
    group="Combine",
    params=[
        SERIES_LIST,
        Param("nodeNum", ParamType.node, required=True),
        Param("templateFunction", ParamType.string, required=True),
        Param("newName", ParamType.string),
    ],
    generates=_apply_by_node_targets,
)
def apply_by_node(
    ctx: RequestContext,
    series_list: list[Series],
    node_num: int,
    template_function: str,
    new_name: str | None = None,
    *,
    generated: Mapping[str, list[Series]],
) -> list[Series]:
    """Evaluate a template once per distinct name prefix, ``%`` standing for the prefix.

    The prefix is a series name up to node ``nodeNum``:
    ``applyByNode(servers.*.disk.bytes_free, 1, "divideSeries(%.disk.bytes_free,sumSeries(%.disk.bytes_*))")``
    gives one series per server. ``newName`` names the results (``%`` =
    the prefix); their path expression is the prefix. As in graphite, every
    result takes the start and end of the last series of ``seriesList``.
    """
    if not series_list:
        return []
    last = series_list[-1]
    result = []
    for prefix in _prefixes(series_list, node_num):
        for series in generated[template_function.replace("%", prefix)]:
            name = new_name.replace("%", prefix) if new_name else series.name
            result.append(series.copy(name=name, path_expression=prefix, start=last.start, end=last.end))
    return result


def _substitute(function: str, search: str, replace: str, name: str) -> str:
    try:
        return re.sub(search, replace, name)
    except (re.error, IndexError) as exc:
        raise InputError(f"cannot call {function} search={search!r}: {exc}") from None


def _maximum(series: Series) -> float | None:
    values = series.values[~np.isnan(series.values)]
    return float(values.max()) if len(values) else None


def _series_above_names(arguments: Mapping[str, Any]) -> list[str]:
    names = []
    for series in arguments["seriesList"]:
        peak = _maximum(series)
        if peak is not None and peak > arguments["value"]:
            names.append(_substitute("useSeriesAbove", arguments["search"], arguments["replace"], series.name))
    return names


def _series_above_targets(arguments: Mapping[str, Any], ctx: RequestContext) -> list[str]:
    names = _series_above_names(arguments)
    return [f"group({','.join(names)})"] if names else []


@series_function(
    "useSeriesAbove",
    group="Filter Series",
    params=[
        SERIES_LIST,
        Param("value", ParamType.float, required=True),
        Param("search", ParamType.string, required=True),
        Param("replace", ParamType.string, required=True),
    ],
    generates=_series_above_targets,
)
def use_series_above(
    ctx: RequestContext,
    series_list: list[Series],
    value: float,
    search: str,
    replace: str,
    *,
    generated: Mapping[str, list[Series]],
) -> list[Series]:
    """For each series whose maximum is above ``value``, draw the related series its name maps to.

    The related name is ``re.sub(search, replace, name)``:
    ``useSeriesAbove(ganglia.*.reqs, 10, "reqs", "time")`` draws the
    response time of the hosts serving more than 10 requests. Series with
    no values never qualify; related series with no points are left out.
    """
    targets = _series_above_targets(
        {"seriesList": series_list, "value": value, "search": search, "replace": replace}, ctx
    )
    return [s for target in targets for s in generated[target] if len(s) > 0]


def _last_value(series: Series) -> float | None:
    values = series.values[~np.isnan(series.values)]
    return float(values[-1]) if len(values) else None


def _alias_query_targets(arguments: Mapping[str, Any], ctx: RequestContext) -> list[str]:
    return [
        _substitute("aliasQuery", arguments["search"], arguments["replace"], s.name)
        for s in arguments["seriesList"]
    ]


@series_function(
    "aliasQuery",
    group="Alias",
    params=[
        SERIES_LIST,
        Param("search", ParamType.string, required=True),
        Param("replace", ParamType.string, required=True),
        Param("newName", ParamType.string, required=True),
    ],
    generates=_alias_query_targets,
)
def alias_query(
    ctx: RequestContext,
    series_list: list[Series],
    search: str,
    replace: str,
    new_name: str,
    *,
    generated: Mapping[str, list[Series]],
) -> list[Series]:
    r"""Name each series after the last value of a related query.

    The query is ``re.sub(search, replace, name)``; the name is ``newName``
    formatted with that value, printf-style:
    ``aliasQuery(channel.power.*, "channel\.power\.([0-9]+)", "channel.frequency.\1", "Channel %d MHz")``.
    A query without series, or whose first series has no value, is an error.
    """
    result = []
    for series in series_list:
        query = _substitute("aliasQuery", search, replace, series.name)
        found = generated[query]
        if not found:
            raise InputError(f"cannot call aliasQuery search={search!r}: no series found with query {query!r}")
        current = _last_value(found[0])
        if current is None:
            raise InputError(
                f"cannot call aliasQuery search={search!r}: series {found[0].name!r} has no value to name by"
            )
        try:
            name = new_name % current
        except (TypeError, ValueError) as exc:
            raise InputError(f"cannot call aliasQuery newName={new_name!r}: {exc}") from None
        result.append(series.copy(name=name))
    return result
