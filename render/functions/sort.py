"""Sorting: reorder a series list (graphite's "Sorting" group)."""

from __future__ import annotations

import re

from render.functions.aggregation import reduce_values
from render.functions.filter import sort_key
from render.functions.params import Param, ParamType
from render.functions.registry import RequestContext, series_function
from render.series import Series

SERIES_LIST = Param("seriesList", ParamType.seriesList, required=True)
_DIGITS = re.compile(r"(\d+)")


def _natural_key(series: Series) -> str:
    return _DIGITS.sub(lambda m: f"{int(m.group(0)):010}", series.name)


@series_function(
    "sortByName",
    group="Sorting",
    params=[SERIES_LIST, Param("natural", ParamType.boolean, default=False),
            Param("reverse", ParamType.boolean, default=False)],
)
def sort_by_name(
    ctx: RequestContext, series_list: list[Series], natural: bool = False, reverse: bool = False
) -> list[Series]:
    """Sort by name; ``natural`` compares digit runs as numbers (server2 before server11)."""
    key = _natural_key if natural else (lambda s: s.name)
    return sorted(series_list, key=key, reverse=reverse)


@series_function("sortByMaxima", group="Sorting", params=[SERIES_LIST])
def sort_by_maxima(ctx: RequestContext, series_list: list[Series]) -> list[Series]:
    """Sort by maximum value, largest first (keeps low lines visible under ``areaMode=all``)."""
    return sorted(series_list, key=sort_key("max"), reverse=True)


@series_function("sortByTotal", group="Sorting", params=[SERIES_LIST])
def sort_by_total(ctx: RequestContext, series_list: list[Series]) -> list[Series]:
    """Sort by the sum of all values, largest first."""
    return sorted(series_list, key=sort_key("sum"), reverse=True)


@series_function(
    "sortBy",
    group="Sorting",
    params=[SERIES_LIST, Param("func", ParamType.aggFunc, default="average"),
            Param("reverse", ParamType.boolean, default=False)],
)
def sort_by(ctx: RequestContext, series_list: list[Series], func: str = "average", reverse: bool = False) -> list[Series]:
    """Sort by ``func`` of each series (average by default), ascending unless ``reverse``; no value sorts lowest."""
    return sorted(series_list, key=sort_key(func), reverse=reverse)


@series_function("sortByMinima", group="Sorting", params=[SERIES_LIST])
def sort_by_minima(ctx: RequestContext, series_list: list[Series]) -> list[Series]:
    """Sort by minimum value, smallest first, keeping only series whose maximum is above 0."""
    positive = [s for s in series_list if (reduce_values(s.values, "max") or 0) > 0]
    return sorted(positive, key=sort_key("min"))
