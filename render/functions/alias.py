"""Alias: functions that rename series (graphite's "Alias" group).

Renaming changes only the name: tags and the path expression stay, so an
outer aggregate still says ``sumSeries(a.*.c)`` after ``alias``.
"""

from __future__ import annotations

import math
import re

from render.functions.aggregation import (
    AGG_ALIASES,
    AGG_FUNCS,
    canonical_agg,
    reduce_values,
    reduced_ints,
)
from render.functions.naming import node_key
from render.functions.params import InputError, Param, ParamType
from render.functions.registry import RequestContext, series_function
from render.series import Series

SERIES_LIST = Param("seriesList", ParamType.seriesList, required=True)


@series_function("alias", group="Alias", params=[SERIES_LIST, Param("newName", ParamType.string, required=True)])
def alias(ctx: RequestContext, series_list: list[Series], new_name: str) -> list[Series]:
    """Call every series ``newName``."""
    return [s.copy(name=new_name) for s in series_list]


@series_function(
    "aliasByNode",
    group="Alias",
    params=[SERIES_LIST, Param("nodes", ParamType.nodeOrTag, required=True, multiple=True)],
)
def alias_by_node(ctx: RequestContext, series_list: list[Series], *nodes: int | str) -> list[Series]:
    """Name each series by some of its nodes (0-based, negative from the end) or tag values, joined by ``.``.

    In a name like ``scale(a.b.c,2)`` nodes are taken from the first metric path.
    """
    if not all(isinstance(n, int) for n in nodes):
        return [s.copy(name=node_key(s, nodes)) for s in series_list]
    return [s.copy(name=_path_nodes(s, nodes)) for s in series_list]


def _path_nodes(series: Series, nodes: tuple[int, ...]) -> str:
    """``node_key`` for node numbers only: a plain path is split once, not once per node."""
    name = series.name
    if not name.endswith(")"):
        parts = name.split(";", 1)[0].split(".")
        try:
            return ".".join([parts[n] for n in nodes])
        except IndexError:  # a node past the end names a tag, as in node_key
            return node_key(series, nodes)
    return node_key(series, nodes)


def substring(name: str, start: int, stop: int) -> str:
    """graphite's ``substr`` naming: nodes ``start:stop`` of the innermost path in ``name``."""
    left = name.rfind("(") + 1
    right = name.find(")")
    if right < 0:
        right = len(name) + 1
    nodes = name[left:right].split(".")
    picked = ".".join(nodes[start:] if stop == 0 else nodes[start:stop])
    return re.sub(",.*$", "", picked)


@series_function("aliasByMetric", group="Alias", params=[SERIES_LIST])
def alias_by_metric(ctx: RequestContext, series_list: list[Series]) -> list[Series]:
    """Name each series by the last node of its metric path (``c`` for ``scale(a.b.c,2)``)."""
    return [s.copy(name=substring(s.name, -1, 0)) for s in series_list]


@series_function(
    "aliasSub",
    group="Alias",
    params=[SERIES_LIST, Param("search", ParamType.string, required=True),
            Param("replace", ParamType.string, required=True)],
)
def alias_sub(ctx: RequestContext, series_list: list[Series], search: str, replace: str) -> list[Series]:
    r"""Rename with a regular expression substitution; ``replace`` may use ``\1`` back-references."""
    try:
        regex = re.compile(search)
        return [s.copy(name=regex.sub(replace, s.name)) for s in series_list]
    except (re.error, IndexError) as exc:
        raise InputError(f"cannot call aliasSub search={search!r}: {exc}") from None


_UNITS = {
    "binary": (("Pi", 1024.0**5), ("Ti", 1024.0**4), ("Gi", 1024.0**3), ("Mi", 1024.0**2), ("Ki", 1024.0)),
    "si": (("P", 1000.0**5), ("T", 1000.0**4), ("G", 1000.0**3), ("M", 1000.0**2), ("k", 1000.0)),
}


def scaled_units(value: float, system: str) -> tuple[float, str]:
    """graphite's ``format_units``: ``value`` divided by its largest SI/binary prefix, and the prefix.

    A result within 1e-11 above a whole number is floored (for values above 1).
    """
    prefix = ""
    scaled = value
    for unit, size in _UNITS[system]:
        if abs(value) >= size:
            scaled, prefix = value / size, unit
            break
    if scaled - math.floor(scaled) < 0.00000000001 and value > 1:
        scaled = float(math.floor(scaled))
    return scaled, prefix


def format_units(value: float, system: str) -> str:
    """``value`` with an SI or binary prefix and two decimals, as graphite's legends show it."""
    scaled, prefix = scaled_units(value, system)
    return f"{scaled:.2f}{prefix}"


def _legend_value(series: Series, value_type: str) -> float | int | str | None:
    try:
        canonical = canonical_agg(value_type)
    except InputError:
        return "(?)"
    value = reduce_values(series.values, canonical)
    ints = reduced_ints(series.values, series.int_points, canonical)
    if value is not None and (canonical == "count" or (ints is not None and ints)):  # graphite's ints print as ints
        return int(value)
    return value


LEGEND_OPTIONS = (
    *AGG_FUNCS, *AGG_ALIASES, *(f"{n}Series" for n in (*AGG_FUNCS, *AGG_ALIASES)), "si", "binary"
)


@series_function(
    "legendValue",
    group="Alias",
    params=[SERIES_LIST, Param("valuesTypes", ParamType.string, multiple=True, options=LEGEND_OPTIONS)],
)
def legend_value(ctx: RequestContext, series_list: list[Series], *values_types: str) -> list[Series]:
    """Append values to the names, e.g. ``x (avg: 6.5)`` for ``legendValue(x, "avg")``.

    Any aggregation name works (``last``, ``avg``, ``total``, ``min``, ``max``,
    ...). A final ``si`` or ``binary`` formats the values with unit prefixes
    in aligned columns instead.
    """
    system = None
    if values_types and values_types[-1] in ("si", "binary"):
        system, values_types = values_types[-1], values_types[:-1]
    result = []
    for series in series_list:
        name = series.name
        for value_type in values_types:
            value = _legend_value(series, value_type)
            if system is None:
                name += f" ({value_type}: {value})"
            else:
                shown = value if value is None or isinstance(value, str) else format_units(value, system)
                name = f"{name:<20}{value_type:<5}{shown!s:<10}"
        result.append(series.copy(name=name))
    return result


def _change_case(name: str, positions: tuple[int, ...], change: str) -> str:
    if not positions:
        return getattr(name, change)()
    chars = list(name)
    for position in positions:
        if -len(chars) <= position < len(chars):
            chars[position] = getattr(chars[position], change)()
    return "".join(chars)


POSITIONS = Param("pos", ParamType.integer, multiple=True)


@series_function("upper", group="Alias", params=[SERIES_LIST, POSITIONS])
def upper(ctx: RequestContext, series_list: list[Series], *pos: int) -> list[Series]:
    """Upper-case the names, or only the characters at the given positions (negative: from the end)."""
    return [s.copy(name=_change_case(s.name, pos, "upper")) for s in series_list]


@series_function("lower", group="Alias", params=[SERIES_LIST, POSITIONS])
def lower(ctx: RequestContext, series_list: list[Series], *pos: int) -> list[Series]:
    """Lower-case the names, or only the characters at the given positions (negative: from the end)."""
    return [s.copy(name=_change_case(s.name, pos, "lower")) for s in series_list]


@series_function(
    "substr",
    group="Special",
    params=[SERIES_LIST, Param("start", ParamType.node, default=0), Param("stop", ParamType.node, default=0)],
)
def substr(ctx: RequestContext, series_list: list[Series], start: int = 0, stop: int = 0) -> list[Series]:
    """Name each series by nodes ``start`` to ``stop`` (exclusive; 0: to the end) of its innermost path.

    ``substr(carbon.agents.host.avgUpdateTime, 2, 4)`` gives ``host.avgUpdateTime``.
    """
    return [s.copy(name=substring(s.name, int(start), int(stop))) for s in series_list]


def _cacti_format(system: str | None, units: str | None):
    def fmt(value: float) -> str:
        if system:
            scaled, prefix = scaled_units(value, system)
            return f"{scaled:.2f} {prefix}{units}" if units else f"{scaled:.2f}{prefix}"
        return f"{value:.2f} {units}" if units else f"{value:.2f}"

    return fmt


@series_function(
    "cactiStyle",
    group="Special",
    params=[SERIES_LIST, Param("system", ParamType.string, options=("binary", "si")), Param("units", ParamType.string)],
)
def cacti_style(
    ctx: RequestContext, series_list: list[Series], system: str | None = None, units: str | None = None
) -> list[Series]:
    """Append aligned ``Current:``, ``Max:`` and ``Min:`` columns to the names, in the style of Cacti.

    ``system`` (``si`` or ``binary``) formats values with unit prefixes;
    ``units`` is appended to them. Columns line up within one call (use
    ``group()`` to align several targets) in a monospace font.
    """
    if not series_list:
        return []
    fmt = _cacti_format(system, units)
    stats = [
        (reduce_values(s.values, "last"), reduce_values(s.values, "max"), reduce_values(s.values, "min"))
        for s in series_list
    ]

    def width(column: int) -> int:
        return max(len(fmt(int(row[column] or 3))) for row in stats) + 3

    name_width = max(len(s.name) for s in series_list)
    widths = [width(0), width(1), width(2)]
    result = []
    for s, row in zip(series_list, stats, strict=True):
        shown = ["nan" if v is None else fmt(float(v)) for v in row]
        name = (
            f"{s.name:<{name_width}} Current:{shown[0]:<{widths[0]}} Max:{shown[1]:<{widths[1]}} "
            f"Min:{shown[2]:<{widths[2]}} "
        )
        result.append(s.copy(name=name))
    return result
