"""Filter Series and Filter Data: keep some series, or blank some values (graphite's two filter groups)."""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable

import numpy as np

from render.functions.aggregation import canonical_agg, check_percent, percentile, reduce_values
from render.functions.params import InputError, Param, ParamType
from render.functions.registry import RequestContext, series_function
from render.series import Series, stack_values

SERIES_LIST = Param("seriesList", ParamType.seriesList, required=True)
COUNT = Param("n", ParamType.integer, required=True)
THRESHOLD = Param("n", ParamType.float, required=True)


def sort_key(func: str) -> Callable[[Series], float]:
    """graphite's ``keyFunc``: the aggregate of a series, missing ranked lowest."""
    canonical = canonical_agg(func)

    def key(series: Series) -> float:
        value = reduce_values(series.values, canonical)
        return -math.inf if value is None else value

    return key


def highest(series_list: list[Series], n: int, func: str) -> list[Series]:
    """The ``n`` series with the largest ``func`` value, largest first (ties keep input order)."""
    return sorted(series_list, key=sort_key(func), reverse=True)[:n]


def lowest(series_list: list[Series], n: int, func: str) -> list[Series]:
    """The ``n`` series with the smallest ``func`` value, smallest first."""
    return sorted(series_list, key=sort_key(func))[:n]


@series_function("highestCurrent", group="Filter Series", params=[SERIES_LIST, COUNT])
def highest_current(ctx: RequestContext, series_list: list[Series], n: int) -> list[Series]:
    """The ``n`` series with the highest last value."""
    return highest(series_list, n, "current")


@series_function("highestMax", group="Filter Series", params=[SERIES_LIST, COUNT])
def highest_max(ctx: RequestContext, series_list: list[Series], n: int) -> list[Series]:
    """The ``n`` series with the highest maximum over the time range."""
    return highest(series_list, n, "max")


@series_function("highestAverage", group="Filter Series", params=[SERIES_LIST, COUNT])
def highest_average(ctx: RequestContext, series_list: list[Series], n: int) -> list[Series]:
    """The ``n`` series with the highest average over the time range."""
    return highest(series_list, n, "average")


@series_function("lowestCurrent", group="Filter Series", params=[SERIES_LIST, COUNT])
def lowest_current(ctx: RequestContext, series_list: list[Series], n: int) -> list[Series]:
    """The ``n`` series with the lowest last value (series without values first)."""
    return lowest(series_list, n, "current")


@series_function("lowestAverage", group="Filter Series", params=[SERIES_LIST, COUNT])
def lowest_average(ctx: RequestContext, series_list: list[Series], n: int) -> list[Series]:
    """The ``n`` series with the lowest average (series without values first)."""
    return lowest(series_list, n, "average")


def keep_where(
    series_list: list[Series], func: str, compare: Callable[[float, float], bool], threshold: float,
    missing_passes: bool,
) -> list[Series]:
    """graphite's ``filterSeries``: series whose ``func`` value compares true with ``threshold``.

    A series whose value is missing passes only ``!=``, ``<`` and ``<=``.
    """
    canonical = canonical_agg(func)
    kept = []
    for series in series_list:
        value = reduce_values(series.values, canonical)
        if (missing_passes if value is None else compare(value, threshold)):
            kept.append(series)
    return kept


@series_function("currentAbove", group="Filter Series", params=[SERIES_LIST, THRESHOLD])
def current_above(ctx: RequestContext, series_list: list[Series], n: float) -> list[Series]:
    """Series whose last value is above ``n``."""
    return keep_where(series_list, "last", operator.gt, n, False)


@series_function("currentBelow", group="Filter Series", params=[SERIES_LIST, THRESHOLD])
def current_below(ctx: RequestContext, series_list: list[Series], n: float) -> list[Series]:
    """Series whose last value is at most ``n`` (series without values too)."""
    return keep_where(series_list, "last", operator.le, n, True)


@series_function("averageAbove", group="Filter Series", params=[SERIES_LIST, THRESHOLD])
def average_above(ctx: RequestContext, series_list: list[Series], n: float) -> list[Series]:
    """Series whose average is above ``n``."""
    return keep_where(series_list, "average", operator.gt, n, False)


@series_function("maximumAbove", group="Filter Series", params=[SERIES_LIST, THRESHOLD])
def maximum_above(ctx: RequestContext, series_list: list[Series], n: float) -> list[Series]:
    """Series whose maximum is above ``n``."""
    return keep_where(series_list, "max", operator.gt, n, False)


@series_function("limit", group="Filter Series", params=[SERIES_LIST, COUNT])
def limit(ctx: RequestContext, series_list: list[Series], n: int) -> list[Series]:
    """Only the first ``n`` series."""
    return series_list[0:n]


def _regex(function: str, pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise InputError(f"cannot call {function} pattern={pattern!r}: {exc}") from None


PATTERN = Param("pattern", ParamType.string, required=True)


@series_function("exclude", group="Filter Series", params=[SERIES_LIST, PATTERN])
def exclude(ctx: RequestContext, series_list: list[Series], pattern: str) -> list[Series]:
    """Drop series whose name matches the regular expression ``pattern`` anywhere."""
    regex = _regex("exclude", pattern)
    return [s for s in series_list if not regex.search(s.name)]


@series_function("grep", group="Filter Series", params=[SERIES_LIST, PATTERN])
def grep(ctx: RequestContext, series_list: list[Series], pattern: str) -> list[Series]:
    """Keep only series whose name matches the regular expression ``pattern`` anywhere."""
    regex = _regex("grep", pattern)
    return [s for s in series_list if regex.search(s.name)]


@series_function("removeBelowValue", group="Filter Data", params=[SERIES_LIST, THRESHOLD])
def remove_below_value(ctx: RequestContext, series_list: list[Series], n: float) -> list[Series]:
    """Blank out values below ``n``."""
    result = []
    for s in series_list:
        name = f"removeBelowValue({s.name}, {n:g})"
        result.append(s.copy(name=name, path_expression=name, values=np.where(s.values < n, np.nan, s.values),
                             int_points=s.int_points))
    return result


@series_function("removeAboveValue", group="Filter Data", params=[SERIES_LIST, THRESHOLD])
def remove_above_value(ctx: RequestContext, series_list: list[Series], n: float) -> list[Series]:
    """Blank out values above ``n``."""
    result = []
    for s in series_list:
        name = f"removeAboveValue({s.name}, {n:g})"
        result.append(s.copy(name=name, path_expression=name, values=np.where(s.values > n, np.nan, s.values),
                             int_points=s.int_points))
    return result


@series_function("averageBelow", group="Filter Series", params=[SERIES_LIST, THRESHOLD])
def average_below(ctx: RequestContext, series_list: list[Series], n: float) -> list[Series]:
    """Series whose average is at most ``n`` (series without values too)."""
    return keep_where(series_list, "average", operator.le, n, True)


@series_function("maximumBelow", group="Filter Series", params=[SERIES_LIST, THRESHOLD])
def maximum_below(ctx: RequestContext, series_list: list[Series], n: float) -> list[Series]:
    """Series whose maximum is at most ``n`` (series without values too)."""
    return keep_where(series_list, "max", operator.le, n, True)


@series_function("minimumAbove", group="Filter Series", params=[SERIES_LIST, THRESHOLD])
def minimum_above(ctx: RequestContext, series_list: list[Series], n: float) -> list[Series]:
    """Series whose minimum is above ``n``."""
    return keep_where(series_list, "min", operator.gt, n, False)


@series_function("minimumBelow", group="Filter Series", params=[SERIES_LIST, THRESHOLD])
def minimum_below(ctx: RequestContext, series_list: list[Series], n: float) -> list[Series]:
    """Series whose minimum is at most ``n`` (series without values too)."""
    return keep_where(series_list, "min", operator.le, n, True)


#: filterSeries' operators: (comparison, whether a series without a value passes).
OPERATORS: dict[str, tuple[Callable[[float, float], bool], bool]] = {
    "=": (operator.eq, False),
    "!=": (operator.ne, True),
    ">": (operator.gt, False),
    ">=": (operator.ge, False),
    "<": (operator.lt, True),
    "<=": (operator.le, True),
}


@series_function(
    "filterSeries",
    group="Filter Series",
    params=[
        SERIES_LIST,
        Param("func", ParamType.aggFunc, required=True),
        Param("operator", ParamType.string, required=True, options=tuple(sorted(OPERATORS))),
        Param("threshold", ParamType.float, required=True),
    ],
)
def filter_series(
    ctx: RequestContext, series_list: list[Series], func: str, operator: str, threshold: float
) -> list[Series]:
    """Keep series for which ``func(series) <operator> threshold`` holds.

    ``filterSeries(eth*.packetsSent, "max", ">", 1000)``. Operators ``=``,
    ``!=``, ``>``, ``>=``, ``<``, ``<=``; a series whose ``func`` value is
    missing passes ``!=``, ``<`` and ``<=`` only.
    """
    compare, missing_passes = OPERATORS[operator]
    return keep_where(series_list, func, compare, threshold, missing_passes)


FUNC = Param("func", ParamType.aggFunc, default="average")


@series_function("highest", group="Filter Series", params=[SERIES_LIST, COUNT, FUNC])
def highest_function(ctx: RequestContext, series_list: list[Series], n: int, func: str = "average") -> list[Series]:
    """The ``n`` series with the largest ``func`` value (average by default), largest first."""
    return highest(series_list, n, func)


@series_function("lowest", group="Filter Series", params=[SERIES_LIST, COUNT, FUNC])
def lowest_function(ctx: RequestContext, series_list: list[Series], n: int, func: str = "average") -> list[Series]:
    """The ``n`` series with the smallest ``func`` value (average by default), smallest first."""
    return lowest(series_list, n, func)


def _variance(values: np.ndarray) -> float | None:
    """graphite's ``mostDeviant`` measure: Σ(v - mean)² / count over the non-missing values."""
    points = [v for v in values.tolist() if v == v]
    if not points:
        return None
    mean = sum(points) / len(points)
    return sum((v - mean) ** 2 for v in points) / len(points)


@series_function("mostDeviant", group="Filter Series", params=[SERIES_LIST, COUNT])
def most_deviant(ctx: RequestContext, series_list: list[Series], n: int) -> list[Series]:
    """The ``n`` series with the largest variance, largest first (series without values are dropped)."""
    scored = [(v, s) for s in series_list if (v := _variance(s.values)) is not None]
    scored.sort(key=lambda pair: pair[0], reverse=True)
    return [s for _, s in scored][:n]


def _outside_percentile(function: str, n: float) -> float:
    """The upper percentile of a band given either of its ends (``n`` and ``100 - n`` give the same band)."""
    if not 0 <= n <= 100:
        raise InputError(f"cannot call {function} n={n!r}: must be between 0 and 100")
    return 100 - n if n < 50 else n


def _or_nan(value: float | None) -> float:
    return np.nan if value is None else value


@series_function("averageOutsidePercentile", group="Filter Series", params=[SERIES_LIST, THRESHOLD])
def average_outside_percentile(ctx: RequestContext, series_list: list[Series], n: float) -> list[Series]:
    """Series whose average lies outside the band between the (100-n)-th and n-th percentile of all averages.

    Series without values have no average and are dropped (graphite-web
    fails the request on them).
    """
    n = _outside_percentile("averageOutsidePercentile", n)
    averages = [reduce_values(s.values, "average") for s in series_list]
    known = [a for a in averages if a is not None]
    low = percentile(known, 100 - n)
    high = percentile(known, n)
    return [
        s for s, a in zip(series_list, averages, strict=True)
        if a is not None and not (low < a < high)  # type: ignore[operator]
    ]


@series_function("removeBetweenPercentile", group="Filter Series", params=[SERIES_LIST, THRESHOLD])
def remove_between_percentile(ctx: RequestContext, series_list: list[Series], n: float) -> list[Series]:
    """Series with at least one value outside the band between the (100-n)-th and n-th percentile at its point.

    Percentiles are taken across the series at each index. Missing values
    are never outside (graphite-web fails the request on them).
    """
    n = _outside_percentile("removeBetweenPercentile", n)
    if not series_list:
        return []
    matrix = stack_values(series_list)
    low = np.array([_or_nan(percentile(column, 100 - n)) for column in matrix.T], dtype=np.float64)
    high = np.array([_or_nan(percentile(column, n)) for column in matrix.T], dtype=np.float64)
    outside = ~np.isnan(matrix) & ~((low < matrix) & (matrix < high))
    return [s for s, row in zip(series_list, outside, strict=True) if row.any()]


def _remove_by_percentile(
    function: str, series_list: list[Series], n: float, remove: Callable[[np.ndarray, float], np.ndarray]
) -> list[Series]:
    check_percent(function, n)
    result = []
    for s in series_list:
        name = f"{function}({s.name}, {n:g})"
        cut = percentile(s.values, n)
        if cut is None:
            result.append(s.copy(name=name, path_expression=name))
            continue
        # graphite's nPercentile call tags the series it is given
        renamed = s.copy(name=name, path_expression=name, tags={**s.tags, "nPercentile": n})
        if int((s.end - s.start) / s.step) > 0:
            # blanked in place: the values kept stay what they were (ints too)
            renamed = renamed.copy(values=np.where(remove(s.values, cut), np.nan, s.values), int_points=s.int_points)
        result.append(renamed)
    return result


@series_function("removeAbovePercentile", group="Filter Data", params=[SERIES_LIST, THRESHOLD])
def remove_above_percentile(ctx: RequestContext, series_list: list[Series], n: float) -> list[Series]:
    """Blank out values above the series' n-th percentile."""
    return _remove_by_percentile("removeAbovePercentile", series_list, n, lambda v, cut: v > cut)


@series_function("removeBelowPercentile", group="Filter Data", params=[SERIES_LIST, THRESHOLD])
def remove_below_percentile(ctx: RequestContext, series_list: list[Series], n: float) -> list[Series]:
    """Blank out values below the series' n-th percentile."""
    return _remove_by_percentile("removeBelowPercentile", series_list, n, lambda v, cut: v < cut)


@series_function("removeEmptySeries", group="Filter Series", params=[SERIES_LIST, Param("xFilesFactor", ParamType.float)])
def remove_empty_series(
    ctx: RequestContext, series_list: list[Series], x_files_factor: float | None = None
) -> list[Series]:
    """Drop series without values; with ``xFilesFactor``, those whose share of values is below it."""
    xff = 0.0 if x_files_factor is None else x_files_factor
    kept = []
    for s in series_list:
        present = int((~np.isnan(s.values)).sum())
        if present and present / len(s.values) >= xff:
            kept.append(s)
    return kept


@series_function(
    "unique", group="Filter Series", params=[Param("seriesLists", ParamType.seriesList, required=True, multiple=True)]
)
def unique(ctx: RequestContext, *series_lists: list[Series]) -> list[Series]:
    """The series of all lists with duplicate names dropped (the first one wins)."""
    seen: set[str] = set()
    result = []
    for series_list in series_lists:
        for s in series_list:
            if s.name not in seen:
                seen.add(s.name)
                result.append(s)
    return result


@series_function(
    "fallbackSeries",
    group="Special",
    params=[SERIES_LIST, Param("fallback", ParamType.seriesList, required=True)],
)
def fallback_series(ctx: RequestContext, series_list: list[Series], fallback: list[Series]) -> list[Series]:
    """``fallback`` when ``seriesList`` matched nothing, e.g. ``fallbackSeries(x.*, constantLine(0))``."""
    return series_list if series_list else fallback
