"""Filter Series and Filter Data: keep some series, or blank some values (graphite's two filter groups)."""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable

import numpy as np

from render.functions.aggregation import canonical_agg, reduce_values
from render.functions.params import InputError, Param, ParamType
from render.functions.registry import RequestContext, series_function
from render.series import Series

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
        result.append(s.copy(name=name, path_expression=name, values=np.where(s.values < n, np.nan, s.values)))
    return result


@series_function("removeAboveValue", group="Filter Data", params=[SERIES_LIST, THRESHOLD])
def remove_above_value(ctx: RequestContext, series_list: list[Series], n: float) -> list[Series]:
    """Blank out values above ``n``."""
    result = []
    for s in series_list:
        name = f"removeAboveValue({s.name}, {n:g})"
        result.append(s.copy(name=name, path_expression=name, values=np.where(s.values > n, np.nan, s.values)))
    return result
