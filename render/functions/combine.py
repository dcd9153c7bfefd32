"""Combine: functions that merge several series into fewer (graphite's "Combine" group).

Series are first brought to a common step (:func:`render.series.normalize`),
then combined by index, as graphite does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from render.functions.aggregation import (
    canonical_agg,
    check_percent,
    percentile,
    percentile_is_int,
    reduce_axis,
    reduced_ints,
    request_x_files_factor,
    safe_power,
)
from render.functions.naming import format_path_expressions, node_key
from render.functions.params import InputError, Param, ParamType
from render.functions.registry import RequestContext, default_registry, series_function
from render.functions.special import constant_line
from render.series import Series, consolidate, normalize, stack_ints, stack_values, whole_ints

SERIES_LISTS = Param("seriesLists", ParamType.seriesList, required=True, multiple=True)
SERIES_LIST = Param("seriesList", ParamType.seriesList, required=True)


def _flatten(series_lists: Sequence[Sequence[Series]]) -> list[Series]:
    return [s for series_list in series_lists for s in series_list]


def _common_tags(series_list: Sequence[Series]) -> dict[str, str]:
    tags = dict(series_list[0].tags)
    for series in series_list[1:]:
        tags = {k: v for k, v in tags.items() if series.tags.get(k) == v}
    return tags


def aggregate_series(
    ctx: RequestContext, series_list: Sequence[Series], func: str, x_files_factor: float | None = None
) -> list[Series]:
    """graphite's ``aggregate``: one series, ``<func>Series(<path expressions>)``.

    Each output value aggregates the non-missing values at that index; it is
    missing when none are, or when their share of the series count is below
    the xFilesFactor (the argument, else the request's).
    """
    label = func[:-6] if func.endswith("Series") else func
    canonical = canonical_agg(label)
    if not series_list:
        return []
    consolidated, start, end, step = normalize(series_list)
    xff = request_x_files_factor(ctx) if x_files_factor is None else x_files_factor
    matrix = stack_values(consolidated)
    non_null = (~np.isnan(matrix)).sum(axis=0)
    keep = (non_null > 0) & (non_null / len(consolidated) >= xff)
    values = np.where(keep, reduce_axis(matrix, canonical, axis=0), np.nan)
    ints = reduced_ints(matrix, stack_ints(consolidated, matrix.shape[1]), canonical, axis=0)
    name = f"{label}Series({format_path_expressions(consolidated)})"
    tags = _common_tags(consolidated)
    tags.setdefault("name", name)
    tags["aggregatedBy"] = label
    return [Series(name, start, end, step, values, tags=tags, x_files_factor=xff, int_points=ints)]


@series_function(
    "aggregate",
    group="Combine",
    params=[SERIES_LIST, Param("func", ParamType.aggFunc, required=True), Param("xFilesFactor", ParamType.float)],
)
def aggregate(
    ctx: RequestContext, series_list: list[Series], func: str, x_files_factor: float | None = None
) -> list[Series]:
    """Combine all series into one with an aggregation function.

    ``aggregate(a.*.c, "sum")`` is ``sumSeries(a.*.c)``. ``func`` is one of
    average (avg), avg_zero, median, sum (total), min, max, diff, stddev,
    count, range (rangeOf), multiply, last (current); ``<func>Series`` is also
    accepted. A point is missing when the share of series with a value there
    is below ``xFilesFactor`` (default: the request's).
    """
    return aggregate_series(ctx, series_list, func, x_files_factor)


def _aggregator(name: str, func: str, aliases: Sequence[str] = (), doc: str = ""):
    def body(ctx: RequestContext, *series_lists: list[Series]) -> list[Series]:
        return aggregate_series(ctx, _flatten(series_lists), func)

    body.__doc__ = doc
    body.__name__ = body.__qualname__ = name
    return series_function(name, group="Combine", params=[SERIES_LISTS], aliases=aliases, aggregator=True)(body)


sum_series = _aggregator(
    "sumSeries",
    "sum",
    aliases=("sum",),
    doc="""Add series together point by point (short form: ``sum``).

    Missing values are skipped; a point where every series is missing stays
    missing. Series with different steps are first consolidated to the
    coarsest common step. ``aggregate(..., "sum")`` with a default xFilesFactor.""",
)
average_series = _aggregator(
    "averageSeries",
    "average",
    aliases=("avg",),
    doc="""Mean of the series at each point, ignoring missing values (short form: ``avg``).""",
)
min_series = _aggregator(
    "minSeries", "min", doc="""Smallest value among the series at each point."""
)
max_series = _aggregator(
    "maxSeries", "max", doc="""Largest value among the series at each point."""
)
diff_series = _aggregator(
    "diffSeries",
    "diff",
    doc="""Subtract the second and later series from the first, point by point.

    Missing values are skipped: where the first series is missing, the first
    series that has a value there is the one subtracted from.""",
)
stddev_series = _aggregator(
    "stddevSeries", "stddev", doc="""Population standard deviation across the series at each point."""
)
range_of_series = _aggregator(
    "rangeOfSeries", "rangeOf", doc="""Largest minus smallest value across the series at each point."""
)


@series_function("multiplySeries", group="Combine", params=[SERIES_LISTS], aggregator=True)
def multiply_series(ctx: RequestContext, *series_lists: list[Series]) -> list[Series]:
    """Multiply series point by point; any missing factor makes the point missing.

    A single series is returned unchanged (graphite's legacy behaviour).
    """
    if len(series_lists) == 1 and len(series_lists[0]) == 1:
        return list(series_lists[0])
    return aggregate_series(ctx, _flatten(series_lists), "multiply")


@series_function(
    "countSeries",
    group="Combine",
    params=[Param("seriesLists", ParamType.seriesList, multiple=True)],
    aggregator=True,
)
def count_series(ctx: RequestContext, *series_lists: list[Series]) -> list[Series]:
    """A line at the number of series given; with no arguments, a line at 0."""
    if not series_lists:
        line = constant_line(ctx, 0, "countSeries")
        return [line.copy(path_expression="countSeries()")]
    series_list = _flatten(series_lists)
    if not series_list:
        return []
    consolidated, start, end, step = normalize(series_list)
    name = f"countSeries({format_path_expressions(consolidated)})"
    width = max(len(s) for s in consolidated)
    values = np.full(width, float(len(consolidated)))
    return [Series(name, start, end, step, values, x_files_factor=ctx.x_files_factor,
                   int_points=whole_ints(values))]


@series_function(
    "percentileOfSeries",
    group="Combine",
    params=[
        SERIES_LIST,
        Param("n", ParamType.float, required=True),
        Param("interpolate", ParamType.boolean, default=False),
    ],
)
def percentile_of_series(
    ctx: RequestContext, series_list: list[Series], n: float, interpolate: bool = False
) -> list[Series]:
    """The n-th percentile across the series at each point.

    Without ``interpolate`` each value is one of the input values (nearest
    rank); with it, values between ranks are interpolated linearly.
    """
    check_percent("percentileOfSeries", n)  # graphite-web refuses n <= 0 itself, not n > 100
    if not series_list:
        return []
    name = f"percentileOfSeries({series_list[0].path_expression},{n:g})"
    consolidated, start, end, step = normalize(series_list)
    matrix = stack_values(consolidated)
    values = [percentile(column, n, interpolate) for column in matrix.T]
    ints = stack_ints(consolidated, matrix.shape[1])
    if ints is not None:  # the value picked from the column's sort is an int, and not interpolated
        ints = np.array([percentile_is_int(c, i, n, interpolate) for c, i in zip(matrix.T, ints.T, strict=True)],
                        dtype=bool)
    return [Series(name, start, end, step, values, x_files_factor=ctx.x_files_factor, int_points=ints)]


def _divide(ctx: RequestContext, dividend: Series, divisor: Series) -> Series:
    name = f"divideSeries({dividend.name},{divisor.name})"
    (a, b), start, end, step = normalize([dividend, divisor])
    matrix = stack_values([a, b])
    with np.errstate(divide="ignore", invalid="ignore"):
        values = np.where(matrix[1] == 0, np.nan, matrix[0] / matrix[1])
    return Series(name, start, end, step, values, x_files_factor=ctx.x_files_factor)


@series_function(
    "divideSeries",
    group="Combine",
    params=[
        Param("dividendSeriesList", ParamType.seriesList, required=True),
        Param("divisorSeries", ParamType.seriesList, required=True),
    ],
)
def divide_series(
    ctx: RequestContext, dividend_series_list: list[Series], divisor_series: list[Series]
) -> list[Series]:
    """Divide each series by one divisor series; division by zero gives a missing point.

    The divisor must be exactly one series. If it matched nothing, every
    dividend comes back renamed ``divideSeries(x,MISSING)`` with no values.
    """
    if not divisor_series:
        return [
            s.copy(
                name=f"divideSeries({s.name},MISSING)",
                path_expression=f"divideSeries({s.name},MISSING)",
                values=np.full(len(s), np.nan),
            )
            for s in dividend_series_list
        ]
    if len(divisor_series) > 1:
        raise InputError(
            f"cannot call divideSeries divisorSeries={len(divisor_series)} series: "
            "must be exactly 1 series"
        )
    return [_divide(ctx, dividend, divisor_series[0]) for dividend in dividend_series_list]


@series_function(
    "divideSeriesLists",
    group="Combine",
    params=[
        Param("dividendSeriesList", ParamType.seriesList, required=True),
        Param("divisorSeriesList", ParamType.seriesList, required=True),
    ],
)
def divide_series_lists(
    ctx: RequestContext, dividend_series_list: list[Series], divisor_series_list: list[Series]
) -> list[Series]:
    """Divide the n-th dividend by the n-th divisor; both lists must be equally long."""
    if len(dividend_series_list) != len(divisor_series_list):
        raise InputError(
            f"cannot call divideSeriesLists divisorSeriesList={len(divisor_series_list)} series: "
            f"must match the {len(dividend_series_list)} dividends"
        )
    return [_divide(ctx, a, b) for a, b in zip(dividend_series_list, divisor_series_list, strict=True)]


def _percent(values: np.ndarray, totals: np.ndarray) -> np.ndarray:
    width = max(len(values), len(totals))
    v = np.full(width, np.nan)
    t = np.full(width, np.nan)
    v[: len(values)] = values
    t[: len(totals)] = totals
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(t == 0, np.nan, v / t) * 100.0


def _sum_group(ctx: RequestContext, group: list[Series]) -> Series:
    consolidated, start, end, step = normalize(group)
    matrix = stack_values(consolidated)
    totals = np.where((~np.isnan(matrix)).any(axis=0), reduce_axis(matrix, "sum"), np.nan)
    name = f"sumSeries({format_path_expressions(group)})"
    return Series(name, start, end, step, totals, x_files_factor=ctx.x_files_factor)


def _percent_pair(ctx: RequestContext, series: Series, total: Series) -> Series:
    (a, b), start, end, step = normalize([series, total])
    name = f"asPercent({series.name},{total.name})"
    return Series(name, start, end, step, _percent(a.values, b.values), x_files_factor=ctx.x_files_factor)


def _group_by_key(series_list: Sequence[Series], nodes: Sequence[int | str]) -> dict[str, list[Series]]:
    groups: dict[str, list[Series]] = {}
    for series in series_list:
        groups.setdefault(node_key(series, nodes), []).append(series)
    return groups


def _missing(ctx: RequestContext, name: str, template: Series, step: int, length: int) -> Series:
    return Series(
        name, template.start, template.end, step, np.full(length, np.nan), x_files_factor=ctx.x_files_factor
    )


def _as_percent_by_nodes(
    ctx: RequestContext, series_list: list[Series], total: Any, nodes: Sequence[int | str], step: int
) -> list[Series]:
    groups = _group_by_key(series_list, nodes)
    keys = list(groups)
    totals: dict[str, Series] = {}
    if total is None:
        for key, group in groups.items():
            totals[key] = group[0] if len(group) == 1 else _sum_group(ctx, group)
    elif isinstance(total, list):
        total_groups = _group_by_key(total, nodes)
        keys.extend(k for k in total_groups if k not in groups)
        for key, group in total_groups.items():
            totals[key] = group[0] if len(group) == 1 else _sum_group(ctx, group)
    else:
        raise InputError(f"cannot call asPercent total={total!r}: must be None or a seriesList with nodes")
    result = []
    for key in keys:
        if key not in groups:
            t = totals[key]
            result.append(_missing(ctx, f"asPercent(MISSING,{t.name})", t, t.step, len(t)))
            continue
        for series in groups[key]:
            if key in totals:
                result.append(_percent_pair(ctx, series, totals[key]))
            else:
                length = len(consolidate(series, step // series.step))
                result.append(_missing(ctx, f"asPercent({series.name},MISSING)", series, step, length))
    return result


@series_function(
    "asPercent",
    group="Combine",
    params=[SERIES_LIST, Param("total", ParamType.any), Param("nodes", ParamType.nodeOrTag, multiple=True)],
    aliases=("pct",),
    aggregator=True,
)
def as_percent(
    ctx: RequestContext, series_list: list[Series], total: Any = None, *nodes: int | str
) -> list[Series]:
    """Each series as a percentage of a total.

    ``total`` may be omitted (the sum of all the series), a number, one
    series, or as many series as ``seriesList`` (matched by sorted name).
    With ``nodes``, series and totals are matched by those nodes/tags as in
    ``groupByNodes``; unmatched ones give ``asPercent(x,MISSING)`` or
    ``asPercent(MISSING,total)`` series without values.
    """
    if not (total is None or isinstance(total, list) or (isinstance(total, (int, float)) and not isinstance(total, bool))):
        raise InputError(f"cannot call asPercent total={total!r}: must be a number or a seriesList")
    if not series_list:
        return []
    consolidated, _, _, step = normalize(series_list)
    if nodes:
        return _as_percent_by_nodes(ctx, series_list, total, nodes, step)
    if isinstance(total, list) and len(total) not in (1, len(series_list)):
        raise InputError(
            f"cannot call asPercent total={len(total)} series: must be 1 series or as many as seriesList"
        )
    if isinstance(total, list) and len(total) == len(series_list):
        pairs = zip(
            sorted(series_list, key=lambda s: s.name), sorted(total, key=lambda s: s.name), strict=True
        )
        return [_percent_pair(ctx, s, t) for s, t in pairs]
    if total is None:
        matrix = stack_values(consolidated)
        totals = np.where((~np.isnan(matrix)).any(axis=0), reduce_axis(matrix, "sum"), np.nan)
        total_text = f"sumSeries({format_path_expressions(consolidated)})"
    elif isinstance(total, list):
        joint, _, _, step = normalize([*series_list, *total])
        consolidated, totals = joint[:-1], joint[-1].values
        total_text = total[0].name
    else:
        totals = np.full(len(series_list[0]), float(total))
        total_text = str(total)
    return [
        Series(
            f"asPercent({s.name},{total_text or s.path_expression})",
            s.start,
            s.end,
            step,
            _percent(c.values, totals),
            x_files_factor=ctx.x_files_factor,
        )
        for s, c in zip(series_list, consolidated, strict=True)
    ]


@series_function("group", group="Combine", params=[Param("seriesLists", ParamType.seriesList, multiple=True)])
def group(ctx: RequestContext, *series_lists: list[Series]) -> list[Series]:
    """Join several series lists into one (to pass them as one argument)."""
    return _flatten(series_lists)


def _group_by(
    ctx: RequestContext, series_list: list[Series], callback: str, nodes: Sequence[int | str]
) -> list[Series]:
    registry = default_registry()
    result = []
    for key, members in _group_by_key(series_list, nodes).items():
        if callback in registry:
            combined = registry.get(callback)(ctx, members)[0]
        else:
            combined = aggregate_series(ctx, members, callback)[0]
        result.append(combined.copy(name=key))
    return result


@series_function(
    "groupByNode",
    group="Combine",
    params=[
        SERIES_LIST,
        Param("nodeNum", ParamType.nodeOrTag, required=True),
        Param("callback", ParamType.aggOrSeriesFunc, default="average"),
    ],
)
def group_by_node(
    ctx: RequestContext, series_list: list[Series], node_num: int | str, callback: str = "average"
) -> list[Series]:
    """Group series by one node (or tag) and combine each group; the group key is the name.

    ``groupByNode(servers.*.cpu.total, 1, "sum")`` gives one series per server.
    """
    return _group_by(ctx, series_list, callback, [node_num])


@series_function(
    "groupByNodes",
    group="Combine",
    params=[
        SERIES_LIST,
        Param("callback", ParamType.aggOrSeriesFunc, required=True),
        Param("nodes", ParamType.nodeOrTag, multiple=True),
    ],
)
def group_by_nodes(
    ctx: RequestContext, series_list: list[Series], callback: str, *nodes: int | str
) -> list[Series]:
    """Group series by several nodes (or tags) joined with ``.``, combining each group.

    ``callback`` is an aggregation name (``sum``, ``max``, ...) or a combining
    function (``sumSeries``, ``asPercent``, ...); groups keep first-seen order.
    """
    return _group_by(ctx, series_list, callback, nodes)



# --- pairwise lists -----------------------------------------------------------------

SERIES_LIST_FIRST = Param("seriesListFirstPos", ParamType.seriesList, required=True)
SERIES_LIST_SECOND = Param("seriesListSecondPos", ParamType.seriesList, required=True)


def aggregate_pairs(
    ctx: RequestContext,
    first: Sequence[Series],
    second: Sequence[Series],
    func: str,
    x_files_factor: float | None = None,
) -> list[Series]:
    """graphite's ``aggregateSeriesLists``: ``aggregate`` of ``first[i]`` with ``second[i]``.

    Each result is named ``<func>Series(<first name>,<second name>)``; its
    path expression stays the one ``aggregate`` gave it.
    """
    if len(first) != len(second):
        raise InputError(
            f"cannot call aggregateSeriesLists seriesListSecondPos={len(second)} series: "
            f"must match the {len(first)} series of seriesListFirstPos"
        )
    result = []
    for a, b in zip(first, second, strict=True):
        [combined] = aggregate_series(ctx, [a, b], func, x_files_factor)
        prefix = combined.name[: combined.name.find("Series(")]
        result.append(combined.copy(name=f"{prefix}Series({a.name},{b.name})"))
    return result


@series_function(
    "aggregateSeriesLists",
    group="Combine",
    params=[SERIES_LIST_FIRST, SERIES_LIST_SECOND, Param("func", ParamType.aggFunc, required=True),
            Param("xFilesFactor", ParamType.float)],
)
def aggregate_series_lists(
    ctx: RequestContext,
    series_list_first_pos: list[Series],
    series_list_second_pos: list[Series],
    func: str,
    x_files_factor: float | None = None,
) -> list[Series]:
    """Aggregate the n-th series of the first list with the n-th of the second.

    ``aggregateSeriesLists(a.{x,y}.in, a.{x,y}.out, "sum")`` is
    ``sumSeries(a.x.in,a.x.out)`` and ``sumSeries(a.y.in,a.y.out)``. Both
    lists must be equally long; ``func`` is any ``aggregate`` function.
    """
    return aggregate_pairs(ctx, series_list_first_pos, series_list_second_pos, func, x_files_factor)


def _pairwise(name: str, func: str, doc: str):
    def body(
        ctx: RequestContext, series_list_first_pos: list[Series], series_list_second_pos: list[Series]
    ) -> list[Series]:
        return aggregate_pairs(ctx, series_list_first_pos, series_list_second_pos, func)

    body.__doc__ = doc
    body.__name__ = body.__qualname__ = name
    return series_function(
        name, group="Combine", params=[SERIES_LIST_FIRST, SERIES_LIST_SECOND], aggregator=True
    )(body)


sum_series_lists = _pairwise(
    "sumSeriesLists", "sum", """Add the n-th series of the second list to the n-th of the first (equal lengths)."""
)
diff_series_lists = _pairwise(
    "diffSeriesLists", "diff", """Subtract the n-th series of the second list from the n-th of the first."""
)
multiply_series_lists = _pairwise(
    "multiplySeriesLists", "multiply", """Multiply the n-th series of the first list by the n-th of the second."""
)


# --- wildcards -------------------------------------------------------------------------


def aggregate_with_wildcards(
    ctx: RequestContext, series_list: Sequence[Series], func: str, positions: Sequence[int]
) -> list[Series]:
    """Group series by their name without the nodes at ``positions``; aggregate each group.

    Groups keep first-seen order and are named by that shortened name.
    Negative positions match no node (graphite compares them with
    ``enumerate`` indexes).
    """
    canonical_agg(func[:-6] if func.endswith("Series") else func)
    skipped = set(positions)
    groups: dict[str, list[Series]] = {}
    for series in series_list:
        key = ".".join(node for i, node in enumerate(series.name.split(".")) if i not in skipped)
        groups.setdefault(key, []).append(series)
    return [aggregate_series(ctx, members, func)[0].copy(name=key) for key, members in groups.items()]


POSITIONS = Param("position", ParamType.node, multiple=True)


@series_function(
    "aggregateWithWildcards",
    group="Combine",
    params=[SERIES_LIST, Param("func", ParamType.aggFunc, required=True), POSITIONS],
)
def aggregate_with_wildcards_function(
    ctx: RequestContext, series_list: list[Series], func: str, *position: int
) -> list[Series]:
    """Aggregate series whose names match once the nodes at ``position`` are ignored.

    ``aggregateWithWildcards(host.cpu-*.cpu-{user,system}.value, "sum", 1)``
    gives ``host.cpu-user.value`` and ``host.cpu-system.value``. ``func`` is
    any ``aggregate`` function.
    """
    return aggregate_with_wildcards(ctx, series_list, func, position)


def _with_wildcards(name: str, func: str, doc: str):
    def body(ctx: RequestContext, series_list: list[Series], *position: int) -> list[Series]:
        return aggregate_with_wildcards(ctx, series_list, func, position)

    body.__doc__ = doc
    body.__name__ = body.__qualname__ = name
    return series_function(name, group="Combine", params=[SERIES_LIST, POSITIONS], aggregator=True)(body)


sum_series_with_wildcards = _with_wildcards(
    "sumSeriesWithWildcards", "sum",
    """Sum series whose names match once the nodes at ``position`` are ignored (see aggregateWithWildcards).""",
)
average_series_with_wildcards = _with_wildcards(
    "averageSeriesWithWildcards", "average",
    """Average series whose names match once the nodes at ``position`` are ignored.""",
)
multiply_series_with_wildcards = _with_wildcards(
    "multiplySeriesWithWildcards", "multiply",
    """Multiply series whose names match once the nodes at ``position`` are ignored.""",
)


# --- powSeries, weightedAverage ---------------------------------------------------------


@series_function(
    "powSeries",
    group="Combine",
    params=[Param("seriesList", ParamType.seriesList, required=True, multiple=True)],
    aggregator=True,
)
def pow_series(ctx: RequestContext, *series_list: list[Series]) -> list[Series]:
    """Raise the first series to the power of the second, that to the third, ... point by point.

    A missing value anywhere in the chain, or an impossible power, makes
    the point missing. Named ``powSeries(<every series name>)``.
    """
    flat = _flatten(series_list)
    if not flat:
        return []
    consolidated, start, end, step = normalize(flat)
    matrix = stack_values(consolidated)
    values = matrix[0]
    for row in matrix[1:]:
        values = safe_power(values, row)
    name = f"powSeries({','.join(s.name for s in consolidated)})"
    # one series: graphite keeps its values as they are (ints too)
    ints = consolidated[0].int_points if len(consolidated) == 1 else None
    return [Series(name, start, end, step, values, x_files_factor=request_x_files_factor(ctx), int_points=ints)]


def _padded_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``a`` and ``b`` padded with NaN to one length (graphite's ``zip_longest``)."""
    width = max(len(a), len(b))
    pa = np.full(width, np.nan)
    pb = np.full(width, np.nan)
    pa[: len(a)] = a
    pb[: len(b)] = b
    return pa, pb


@series_function(
    "weightedAverage",
    group="Combine",
    params=[
        Param("seriesListAvg", ParamType.seriesList, required=True),
        Param("seriesListWeight", ParamType.seriesList, required=True),
        Param("nodes", ParamType.nodeOrTag, multiple=True),
    ],
)
def weighted_average(
    ctx: RequestContext, series_list_avg: list[Series], series_list_weight: list[Series], *nodes: int | str
) -> list[Series]:
    """Average of the first list weighted by the second: Σ(avg·weight) / Σ(weight).

    Series are paired by the key ``nodes`` (or tags) give them; products
    are summed over the pairs found, weights over every weight series.
    """
    if len(series_list_avg) != len(series_list_weight):
        raise InputError(
            f"cannot call weightedAverage seriesListWeight={len(series_list_weight)} series: "
            f"must match the {len(series_list_avg)} series of seriesListAvg"
        )
    pairs: dict[str, dict[str, Series]] = {}
    for avg, weight in zip(series_list_avg, series_list_weight, strict=True):
        pairs.setdefault(node_key(avg, nodes), {})["avg"] = avg
        pairs.setdefault(node_key(weight, nodes), {})["weight"] = weight
    xff = request_x_files_factor(ctx)
    products = []
    for pair in pairs.values():
        if "avg" not in pair or "weight" not in pair:
            continue
        avg, weight = pair["avg"], pair["weight"]
        a, w = _padded_pair(avg.values, weight.values)
        products.append(
            Series(f"product({weight.name},{avg.name})", avg.start, avg.end, avg.step, a * w, x_files_factor=xff)
        )
    if not products:
        return []
    [sum_products] = aggregate_series(ctx, products, "sum")
    [sum_weights] = aggregate_series(ctx, series_list_weight, "sum")
    p, w = _padded_pair(sum_products.values, sum_weights.values)
    with np.errstate(divide="ignore", invalid="ignore"):
        values = np.where(w == 0, np.nan, p / w)
    name = "weightedAverage({}, {}, {})".format(
        ",".join(sorted({s.path_expression for s in series_list_avg})),
        ",".join(sorted({s.path_expression for s in series_list_weight})),
        ",".join(map(str, nodes)),
    )
    return [Series(name, sum_products.start, sum_products.end, sum_products.step, values, x_files_factor=xff)]


# --- map / reduce ------------------------------------------------------------------------


@series_function(
    "mapSeries",
    group="Combine",
    params=[SERIES_LIST, Param("mapNodes", ParamType.nodeOrTag, required=True, multiple=True)],
    aliases=("map",),
)
def map_series(ctx: RequestContext, series_list: list[Series], *map_nodes: int | str) -> list[list[Series]]:
    """Split a series list into lists sharing the given nodes (or tags), for ``reduceSeries``.

    ``mapSeries(servers.*.cpu.*, 1)`` gives one list per server, in
    first-seen order. Short form: ``map``.
    """
    return list(_group_by_key(series_list, map_nodes).values())


@series_function(
    "reduceSeries",
    group="Combine",
    params=[
        Param("seriesLists", ParamType.seriesLists, required=True),
        Param("reduceFunction", ParamType.string, required=True),
        Param("reduceNode", ParamType.node, required=True),
        Param("reduceMatchers", ParamType.string, required=True, multiple=True),
    ],
    aliases=("reduce",),
)
def reduce_series(
    ctx: RequestContext,
    series_lists: list[list[Series]],
    reduce_function: str,
    reduce_node: int,
    *reduce_matchers: str,
) -> list[Series]:
    """Reduce each list from ``mapSeries`` to one series with ``reduceFunction``.

    In each list, the series whose node ``reduceNode`` equals a matcher are
    passed to ``reduceFunction`` in matcher order, e.g.
    ``reduceSeries(mapSeries(servers.*.disk.*,1),"asPercent",3,"used","total")``.
    Results are named ``<nodes before reduceNode>.reduce.<reduceFunction>``.
    Short form: ``reduce``.
    """
    registry = default_registry()
    registry.get(reduce_function)
    groups: dict[str, list[Series | None]] = {}
    for series_list in series_lists:
        for series in series_list:
            nodes = series.name.split(".")
            try:
                node = nodes[reduce_node]
            except IndexError:
                raise InputError(
                    f"cannot call reduceSeries reduceNode={reduce_node}: {series.name!r} has no such node"
                ) from None
            if node not in reduce_matchers:
                continue
            key = ".".join(nodes[:reduce_node]) + ".reduce." + reduce_function
            groups.setdefault(key, [None] * len(reduce_matchers))[reduce_matchers.index(node)] = series
    result = []
    for key, members in groups.items():
        if any(m is None for m in members):
            missing = reduce_matchers[members.index(None)]
            raise InputError(f"cannot call reduceSeries reduceMatchers={missing!r}: no series for {key!r}")
        reduced = registry.call(reduce_function, ctx, [[m] for m in members])
        if not reduced:
            raise InputError(f"cannot call reduceSeries reduceFunction={reduce_function!r}: it returned no series")
        result.append(reduced[0].copy(name=key))
    return result
