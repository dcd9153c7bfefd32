"""The one value type render functions pass around: an immutable time series.

graphite-web's ``TimeSeries`` is a mutable ``list`` whose functions rename,
rescale and re-consolidate their inputs in place, and whose ``valuesPerPoint``
silently changes what iterating it yields. Here a :class:`Series` is frozen,
its values are a read-only contiguous float64 array with NaN for "no value",
and consolidation is an explicit function that returns a new series.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np

EMPTY_OPTIONS: Mapping[str, Any] = MappingProxyType({})

#: Consolidation functions a series may carry (graphite's ``consolidateBy`` options).
CONSOLIDATION_FUNCTIONS = ("sum", "average", "avg", "avg_zero", "min", "max", "first", "last")

# graphite-web skips tag parsing for names that look like a function call.
_FUNCTION_LIKE_NAME = re.compile(r"^[a-z]+[(].+[)]$", re.IGNORECASE)
_OPENMETRICS_TAG = re.compile(r'([^=]+)="((?:[\\]["\\]|[^"\\])+)"(:?,|$)')
_PROHIBITED_TAG_CHARS = ";!^="


def _frozen_values(values: Iterable[float | None] | np.ndarray) -> np.ndarray:
    """A read-only contiguous float64 copy of ``values`` (None becomes NaN)."""
    if isinstance(values, np.ndarray):
        flags = values.flags
        if not flags.writeable and flags.c_contiguous and values.dtype == np.float64:
            return values
        array = np.array(values, dtype=np.float64, copy=True, order="C")
    else:
        array = np.array(
            [math.nan if v is None else v for v in values], dtype=np.float64
        )
    array.flags.writeable = False
    return array


def _frozen_mask(mask: Iterable[bool] | np.ndarray | None, length: int) -> np.ndarray | None:
    """A read-only bool copy of ``mask`` (None stays None); it must have ``length`` entries."""
    if mask is None:
        return None
    array = np.array(mask, dtype=bool, copy=True)
    if array.shape != (length,):
        raise ValueError(f"cannot mark int_points={array.shape}: the series has {length} values")
    array.flags.writeable = False
    return array


def whole_ints(values: np.ndarray) -> np.ndarray:
    """``int_points`` for values graphite computes as ints (counts, timestamps): every finite one."""
    return np.isfinite(values)


def _valid_tag(tag: str, value: str) -> bool:
    return (
        bool(tag)
        and bool(value)
        and not any(c in tag for c in _PROHIBITED_TAG_CHARS)
        and ";" not in value
        and value[0] != "~"
    )


def _parse_carbon_tags(path: str) -> dict[str, str] | None:
    metric, *segments = path.split(";")
    tags: dict[str, str] = {}
    for segment in segments:
        tag, sep, value = segment.partition("=")
        if not sep or not _valid_tag(tag, value):
            return None
        tags[tag] = value
    name = metric.lstrip("~")
    if not metric or not name:
        return None
    tags["name"] = name
    return tags


def _parse_openmetrics_tags(path: str) -> dict[str, str] | None:
    metric, _, raw = path[:-1].partition("{")
    tags: dict[str, str] = {}
    while raw:
        match = _OPENMETRICS_TAG.match(raw)
        if not match:
            return None
        tag = match.group(1)
        value = match.group(2).replace(r"\"", '"').replace("\\\\", "\\")
        if not _valid_tag(tag, value):
            return None
        tags[tag] = value
        raw = raw[len(match.group(0)):]
    name = metric.lstrip("~")
    if not metric or not name:
        return None
    tags["name"] = name
    return tags


def tags_from_name(name: str) -> dict[str, str]:
    """The tags graphite-web gives a new series called ``name``.

    A plain path gets ``{"name": path}``; a tagged path (``a.b;k=v`` or
    ``a.b{k="v"}``) gets its tags with ``name`` last; anything that looks
    like a function call, or does not parse, gets ``{"name": name}``.
    """
    if ";" not in name and "{" not in name and name[:1] != "~":
        return {"name": name}  # what parsing gives a plain path, without the regex
    if not _FUNCTION_LIKE_NAME.match(name):
        if name[-2:] == '"}' and "{" in name:
            parsed = _parse_openmetrics_tags(name)
        else:
            parsed = _parse_carbon_tags(name)
        if parsed is not None:
            return parsed
    return {"name": name}


def _frozen_mapping(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if not mapping:
        return EMPTY_OPTIONS
    return MappingProxyType(dict(mapping))


@dataclasses.dataclass(frozen=True, eq=False)
class Series:
    """One named series: ``values[i]`` is the value at ``start + i * step``.

    ``end`` is graphite's (exclusive) end as the fetch or function set it; it
    is not always ``start + len(values) * step`` (graphite's output formats
    pair values with ``range(start, end + 1, step)`` and stop at the shorter).
    ``tags`` values are strings, as graphite's ``Tags`` stores them.
    ``path_expression`` is the query pattern that produced the series, used by
    aggregate names such as ``sumSeries(a.*.c)``. ``options`` carries graph
    options (``color``, ``lineWidth``, ``dashed``, ``stacked``, ``secondYAxis``,
    ``drawAsInfinite``, ``alpha``, ...) for the image renderers.
    ``int_points`` marks the values graphite-web holds as Python ints (a
    ``constantLine(100)``, an event count, a ``transformNull`` default of 0),
    which its output formats write without a decimal point (``100``, not
    ``100.0``); None when every value is a float, as fetched data always is.
    A copy with new values drops it unless given one.
    """

    name: str
    start: int
    end: int
    step: int
    values: np.ndarray
    tags: Mapping[str, str] = None  # type: ignore[assignment]
    path_expression: str = None  # type: ignore[assignment]
    consolidation_func: str = "average"
    x_files_factor: float = 0.0
    options: Mapping[str, Any] = None  # type: ignore[assignment]
    int_points: np.ndarray | None = None

    def __post_init__(self) -> None:
        set_field = object.__setattr__
        set_field(self, "values", _frozen_values(self.values))
        tags = tags_from_name(self.name) if self.tags is None else self.tags
        set_field(self, "tags", MappingProxyType({k: str(v) for k, v in tags.items()}))
        if self.path_expression is None:
            set_field(self, "path_expression", self.name)
        set_field(self, "options", _frozen_mapping(self.options))
        if self.x_files_factor is None:
            set_field(self, "x_files_factor", 0.0)
        set_field(self, "int_points", _frozen_mask(self.int_points, len(self.values)))

    def __len__(self) -> int:
        return len(self.values)

    def copy(self, **changes: Any) -> Series:
        """A new series with ``changes`` applied; nothing else is altered.

        Unchanged fields are shared, not re-validated (they are immutable).
        """
        if not _FIELDS.issuperset(changes):
            unknown = sorted(changes.keys() - _FIELDS)[0]
            raise TypeError(f"cannot copy Series field={unknown}: no such field")
        new = object.__new__(Series)
        state = self.__dict__.copy()
        state.update(changes)
        if "values" in changes:
            state["values"] = _frozen_values(changes["values"])
            if "int_points" not in changes:
                state["int_points"] = None
        if "int_points" in changes or ("values" in changes and state["int_points"] is not None):
            state["int_points"] = _frozen_mask(state["int_points"], len(state["values"]))
        if "tags" in changes:
            state["tags"] = MappingProxyType({k: str(v) for k, v in changes["tags"].items()})
        if "options" in changes:
            state["options"] = _frozen_mapping(changes["options"])
        object.__setattr__(new, "__dict__", state)
        return new

    def sibling(self, name: str, start: int, end: int, step: int, values: np.ndarray) -> Series:
        """Another file's series from the same read: ``copy`` with ``name``, the tags
        parsed from it, times and values, and everything else shared.

        The data source builds thousands per request; this skips ``copy``'s
        field check and the ``str`` pass over tags that are strings already.
        """
        new = object.__new__(Series)
        state = self.__dict__.copy()
        state["name"] = name
        state["tags"] = MappingProxyType(tags_from_name(name))
        state["start"], state["end"], state["step"] = start, end, step
        state["values"] = _frozen_values(values)
        state["int_points"] = None
        object.__setattr__(new, "__dict__", state)
        return new

    def with_tags(self, **extra: Any) -> Series:
        """A copy whose tags also hold ``extra`` (values stored as ``str``)."""
        return self.copy(tags={**self.tags, **extra})

    def with_options(self, **extra: Any) -> Series:
        """A copy whose graph options also hold ``extra``."""
        return self.copy(options={**self.options, **extra})

    def to_list(self) -> list[float | None]:
        """The values with NaN as None."""
        return [None if math.isnan(v) else v for v in self.values.tolist()]

    def output_list(self) -> list[float | int | None]:
        """The values as graphite-web's list holds them: NaN as None, ``int_points`` as ints."""
        values = self.to_list()
        if self.int_points is not None:
            for i in np.flatnonzero(self.int_points).tolist():
                if values[i] is not None:
                    values[i] = int(values[i])
        return values

    def __repr__(self) -> str:
        return (
            f"Series(name={self.name!r}, start={self.start}, end={self.end}, "
            f"step={self.step}, values={self.to_list()!r})"
        )


_FIELDS = frozenset(f.name for f in dataclasses.fields(Series))


def extreme_index(matrix: np.ndarray, func: str) -> np.ndarray:
    """Per column, the row of the value Python's ``min``/``max`` (``func``) returns.

    That is the first of equal values (``-0.0`` before ``0.0`` stays
    ``-0.0``); NaN is skipped; an all-NaN column gives row 0.
    """
    with np.errstate(invalid="ignore"):
        best = (np.fmin if func == "min" else np.fmax).reduce(matrix, axis=0)
    return np.argmax(matrix == best, axis=0)


def _buckets(values: np.ndarray, k: int, fill: Any) -> np.ndarray:
    """``values`` in rows of ``k``, the last row padded with ``fill``."""
    padded = np.full(-(-len(values) // k) * k, fill, dtype=np.asarray(values).dtype)
    padded[: len(values)] = values
    return padded.reshape(-1, k)


def _picked(buckets: np.ndarray, valid: np.ndarray, func: str) -> np.ndarray:
    """Per bucket, the column of the value ``first``, ``last``, ``min`` or ``max`` consolidation takes."""
    if func == "first":
        return np.argmax(valid, axis=1)
    if func == "last":
        return buckets.shape[1] - 1 - np.argmax(valid[:, ::-1], axis=1)
    return extreme_index(buckets.T, func)


def consolidate_values(
    values: np.ndarray, values_per_point: int, func: str, x_files_factor: float
) -> np.ndarray:
    """graphite's consolidating iteration: one value per ``values_per_point``.

    Each bucket skips missing values; a bucket with no value, or with a
    non-null fraction (of ``values_per_point``, also for the shorter last
    bucket) below ``x_files_factor``, is missing. ``avg_zero`` counts missing
    values as zero.
    """
    if func == "avg":
        func = "average"
    if func not in CONSOLIDATION_FUNCTIONS:
        raise ValueError(f"cannot consolidate consolidationFunc={func!r}: unknown function")
    k = int(values_per_point)
    n = len(values)
    if n == 0:
        return values
    buckets = _buckets(values, k, np.nan)
    count = len(buckets)
    valid = ~np.isnan(buckets)
    non_null = valid.sum(axis=1)
    # cumsum adds in order, like graphite's Python sum(); numpy's sum is pairwise along a row
    totals = np.cumsum(np.where(valid, buckets, 0.0), axis=1)[:, -1] + 0.0  # from 0: -0.0 alone is 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        if func == "sum":
            result = totals
        elif func == "average":
            result = totals / non_null
        elif func == "avg_zero":
            sizes = np.full(count, k)
            sizes[-1] = n - (count - 1) * k
            result = totals / sizes
        else:  # first, last, min, max: one of the bucket's values
            result = buckets[np.arange(count), _picked(buckets, valid, func)]
    keep = (non_null > 0) & (non_null / k >= x_files_factor)
    return np.where(keep, result, np.nan)


def consolidate(series: Series, values_per_point: int) -> Series:
    """``series`` with every ``values_per_point`` values merged into one.

    Uses the series' own consolidation function and xFilesFactor. The new
    step is ``step * values_per_point``; start and end are unchanged.
    """
    k = int(values_per_point)
    if k <= 1:
        return series
    merged = consolidate_values(series.values, k, series.consolidation_func, series.x_files_factor)
    return series.copy(values=merged, step=series.step * k,
                       int_points=_consolidated_ints(series, k, merged))


def _consolidated_ints(series: Series, k: int, merged: np.ndarray) -> np.ndarray | None:
    """Which merged values stay ints: a sum of ints only, or the int that first, last, min or max picks.

    graphite's averages divide with ``float()``, so they never do.
    """
    func = series.consolidation_func
    if series.int_points is None or func in ("average", "avg", "avg_zero"):
        return None
    buckets = _buckets(series.values, k, np.nan)
    valid = ~np.isnan(buckets)
    ints = _buckets(series.int_points, k, False)
    if func == "sum":
        picked_ints = ~(~ints & valid).any(axis=1)
    else:
        picked_ints = ints[np.arange(len(ints)), _picked(buckets, valid, func)]
    return picked_ints & ~np.isnan(merged)


def normalize(series_list: Sequence[Series]) -> tuple[list[Series], int, int, int]:
    """graphite's ``normalize``: bring series to a common step before combining.

    The common step is the LCM of all steps; each series is consolidated to
    it, start is the earliest start and end the latest end trimmed to a whole
    number of steps. Series are then combined by index, not by timestamp.
    """
    if not series_list:
        raise ValueError("cannot normalize seriesList=[]: no series")
    step = math.lcm(*(int(s.step) for s in series_list))
    consolidated = [consolidate(s, step // s.step) for s in series_list]
    start = min(s.start for s in series_list)
    end = max(s.end for s in series_list)
    end -= (end - start) % step
    return consolidated, start, end, step


def stack_values(series_list: Sequence[Series]) -> np.ndarray:
    """Values of ``series_list`` as rows of a matrix, padded at the end with NaN.

    This is graphite's ``zip_longest(*seriesList)`` (combining by index).
    """
    lengths = {len(s.values) for s in series_list}
    if len(lengths) == 1:
        return np.stack([s.values for s in series_list])
    matrix = np.full((len(series_list), max(lengths, default=0)), np.nan)
    for row, s in zip(matrix, series_list, strict=True):
        row[: len(s.values)] = s.values
    return matrix


def stack_ints(series_list: Sequence[Series], width: int) -> np.ndarray | None:
    """``stack_values``' twin for ``int_points``: rows of ``width``, padding not int; None when no series has any."""
    if all(s.int_points is None for s in series_list):
        return None
    rows = np.zeros((len(series_list), width), dtype=bool)
    for row, s in zip(rows, series_list, strict=True):
        if s.int_points is not None:
            row[: len(s.int_points)] = s.int_points[:width]
    return rows


def consolidate_to_max_datapoints(
    series_list: Sequence[Series], max_data_points: int
) -> list[Series]:
    """Reduce each series to at most ``max_data_points`` values, as graphite's JSON view does.

    The time range spans all series; a series with more values than that
    range allows is merged ``ceil(n / max_data_points)`` values at a time
    with its consolidation function, after nudging its start so buckets line
    up across refreshes (graphite drops ``nudge/step - 1`` leading values, an
    off-by-one kept for compatibility). ``max_data_points == 1`` merges each
    series into a single value.
    """
    if not any(len(s) for s in series_list):
        return list(series_list)
    time_range = max(s.end for s in series_list) - min(s.start for s in series_list)
    result = []
    for series in series_list:
        if max_data_points == 1:
            series = consolidate(series, len(series)) if len(series) else series
        else:
            points = time_range / series.step
            if max_data_points < points:
                per_point = math.ceil(points / max_data_points)
                seconds_per_point = int(per_point * series.step)
                nudge = seconds_per_point + (series.start % series.step) - (
                    series.start % seconds_per_point
                )
                dropped = max(int(nudge / series.step) - 1, 0)
                ints = None if series.int_points is None else series.int_points[dropped:]
                series = consolidate(
                    series.copy(start=series.start + nudge, values=series.values[dropped:], int_points=ints),
                    per_point,
                )
        result.append(series)
    return result
