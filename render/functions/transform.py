"""Transform: functions that change each series' values one series at a time (graphite's "Transform" group)."""

from __future__ import annotations

import datetime
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from render.functions.aggregation import (
    canonical_agg,
    python_math,
    reduce_axis,
    reduced_ints,
    request_x_files_factor,
    safe_power,
)
from render.functions.params import InputError, Param, ParamType, date_seconds, interval_seconds
from render.functions.registry import RequestContext, series_function
from render.series import Series, stack_values, whole_ints

SERIES_LIST = Param("seriesList", ParamType.seriesList, required=True)
INTERVAL_SUGGESTIONS = ("10min", "1h", "1d")


def _renamed(
    series: Series, name: str, values: np.ndarray | None = None, int_points: np.ndarray | None = None, **tags: Any
) -> Series:
    """graphite's in-place rename: new name, path expression = name, extra tags."""
    changes: dict[str, Any] = {"name": name, "path_expression": name, "tags": {**series.tags, **tags}}
    if values is not None:
        changes["values"] = values
        changes["int_points"] = int_points
    return series.copy(**changes)


def _round6(values: np.ndarray) -> np.ndarray:
    """Python's ``round(v, 6)`` (correctly rounded) for every value, NaN kept."""
    return np.array([v if math.isnan(v) else round(v, 6) for v in values.tolist()], dtype=np.float64)


@series_function("scale", group="Transform", params=[SERIES_LIST, Param("factor", ParamType.float, required=True)])
def scale(ctx: RequestContext, series_list: list[Series], factor: float) -> list[Series]:
    """Multiply every value by ``factor``."""
    return [_renamed(s, f"scale({s.name},{float(factor):g})", s.values * float(factor), scale=factor)
            for s in series_list]


@series_function(
    "scaleToSeconds",
    group="Transform",
    params=[SERIES_LIST, Param("seconds", ParamType.float, required=True)],
)
def scale_to_seconds(ctx: RequestContext, series_list: list[Series], seconds: float) -> list[Series]:
    """Turn per-step values into per-``seconds`` values (value * seconds / step, 6 decimals)."""
    return [
        _renamed(
            s,
            f"scaleToSeconds({s.name},{int(seconds)})",
            _round6(s.values * (seconds / s.step)),
            scaleToSeconds=seconds,
        )
        for s in series_list
    ]


@series_function("offset", group="Transform", params=[SERIES_LIST, Param("factor", ParamType.float, required=True)])
def offset(ctx: RequestContext, series_list: list[Series], factor: float) -> list[Series]:
    """Add ``factor`` to every value."""
    return [_renamed(s, f"offset({s.name},{float(factor):g})", s.values + factor, offset=factor)
            for s in series_list]


@series_function("absolute", group="Transform", params=[SERIES_LIST])
def absolute(ctx: RequestContext, series_list: list[Series]) -> list[Series]:
    """The absolute value of every value."""
    return [_renamed(s, f"absolute({s.name})", np.abs(s.values), s.int_points, absolute=1) for s in series_list]


@series_function("invert", group="Transform", params=[SERIES_LIST])
def invert(ctx: RequestContext, series_list: list[Series]) -> list[Series]:
    """``1/value`` for every value; 0 gives a missing value."""
    return [_renamed(s, f"invert({s.name})", safe_power(s.values, -1.0), invert=1) for s in series_list]


@series_function("pow", group="Transform", params=[SERIES_LIST, Param("factor", ParamType.float, required=True)])
def pow_(ctx: RequestContext, series_list: list[Series], factor: float) -> list[Series]:
    """Raise every value to the power ``factor``; impossible results are missing."""
    return [_renamed(s, f"pow({s.name},{float(factor):g})", safe_power(s.values, factor), pow=factor)
            for s in series_list]


@series_function("squareRoot", group="Transform", params=[SERIES_LIST])
def square_root(ctx: RequestContext, series_list: list[Series]) -> list[Series]:
    """The square root of every value; negative values give missing values."""
    return [_renamed(s, f"squareRoot({s.name})", safe_power(s.values, 0.5), squareRoot=1) for s in series_list]


def _derived(
    series: Series, name: str, values: np.ndarray, int_points: np.ndarray | None = None, **tags: Any
) -> Series:
    """graphite's ``series.copy(name=...)``: path expression becomes the new name too, graph options dropped."""
    return series.copy(name=name, path_expression=name, values=values, tags={**series.tags, **tags},
                       int_points=int_points, options={})


def _int_differences(series: Series, kept: np.ndarray | None = None) -> np.ndarray | None:
    """Which ``value - previous`` differences graphite computes between two ints."""
    if series.int_points is None:
        return None
    ints = series.int_points if kept is None else series.int_points & ~np.isnan(kept)
    previous = np.zeros_like(ints)
    previous[1:] = ints[:-1]
    return ints & previous


def copied(series: Series, name: str, values: np.ndarray, **tags: Any) -> Series:
    """graphite's ``TimeSeries.copy(name=..., values=...)``: path expression = name, graph options dropped."""
    return series.copy(name=name, path_expression=name, values=values, tags={**series.tags, **tags}, options={})


def _previous(values: np.ndarray) -> np.ndarray:
    prev = np.empty_like(values)
    prev[:1] = np.nan
    prev[1:] = values[:-1]
    return prev


@series_function("derivative", group="Transform", params=[SERIES_LIST])
def derivative(ctx: RequestContext, series_list: list[Series]) -> list[Series]:
    """The change from the previous point (not per second: see ``perSecond``).

    A point is missing when it or the previous one is.
    """
    return [_derived(s, f"derivative({s.name})", s.values - _previous(s.values), _int_differences(s), derivative=1)
            for s in series_list]


def _non_negative_delta(
    series: Series, max_value: float | None, min_value: float | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """graphite's ``_nonNegativeDelta`` over a whole series, and which deltas are ints.

    Values above ``max_value`` or below ``min_value`` are dropped (and are
    not the previous value of the next point). A decrease is a counter wrap:
    ``max_value + 1 + v - prev - (min_value or 0)`` with ``max_value``, else
    ``v - min_value`` with ``min_value``, else missing. A difference of two
    ints is an int; a wrap adds the (float) maxValue or minValue.
    """
    kept = _within(series.values, max_value, min_value)
    prev = _previous(kept)
    delta = kept - prev
    decreased = delta < 0
    if max_value is not None:
        wrapped = max_value + 1 + kept - prev - (min_value or 0)
    elif min_value is not None:
        wrapped = kept - min_value
    else:
        wrapped = np.full_like(kept, np.nan)
    ints = _int_differences(series, kept)
    if ints is not None:
        ints &= ~decreased
    return np.where(decreased, wrapped, delta), ints


DELTA_PARAMS = [SERIES_LIST, Param("maxValue", ParamType.float), Param("minValue", ParamType.float)]


@series_function("nonNegativeDerivative", group="Transform", params=DELTA_PARAMS)
def non_negative_derivative(
    ctx: RequestContext, series_list: list[Series], max_value: float | None = None, min_value: float | None = None
) -> list[Series]:
    """Like ``derivative`` for counters: a decrease is missing, not negative.

    With ``maxValue`` a decrease counts as a wrap past that maximum; with
    ``minValue`` as a reset to that minimum. Values outside [minValue,
    maxValue] are missing.
    """
    return [
        _derived(s, f"nonNegativeDerivative({s.name})", *_non_negative_delta(s, max_value, min_value),
                 nonNegativeDerivative=1)
        for s in series_list
    ]


def _within(values: np.ndarray, max_value: float | None, min_value: float | None) -> np.ndarray:
    """``values`` with those outside [min_value, max_value] missing."""
    kept = values.copy()
    if max_value is not None:
        kept[kept > max_value] = np.nan
    if min_value is not None:
        kept[kept < min_value] = np.nan
    return kept


@series_function("perSecond", group="Transform", params=DELTA_PARAMS)
def per_second(
    ctx: RequestContext, series_list: list[Series], max_value: float | None = None, min_value: float | None = None
) -> list[Series]:
    """``nonNegativeDerivative`` divided by the step: a counter's rate per second (6 decimals)."""
    return [
        _derived(
            s,
            f"perSecond({s.name})",
            _round6(_non_negative_delta(s, max_value, min_value)[0] / s.step),
            perSecond=1,
        )
        for s in series_list
    ]


@series_function("integral", group="Transform", params=[SERIES_LIST])
def integral(ctx: RequestContext, series_list: list[Series]) -> list[Series]:
    """The running total of the values; missing points stay missing and add nothing."""
    result = []
    for s in series_list:
        valid = ~np.isnan(s.values)
        running = np.cumsum(np.where(valid, s.values, 0.0)) + 0.0  # graphite adds from 0.0: -0.0 alone is 0.0
        result.append(_derived(s, f"integral({s.name})", np.where(valid, running, np.nan), integral=1))
    return result


@series_function("delay", group="Transform", params=[SERIES_LIST, Param("steps", ParamType.integer, required=True)])
def delay(ctx: RequestContext, series_list: list[Series], steps: int) -> list[Series]:
    """Shift values ``steps`` points later (earlier if negative), padding with missing values."""
    result = []
    for s in series_list:
        shifted = np.full(len(s), np.nan)
        ints = None if s.int_points is None else np.zeros(len(s), dtype=bool)
        n = len(s)
        if 0 <= steps < n:
            shifted[steps:] = s.values[: n - steps]
            if ints is not None:
                ints[steps:] = s.int_points[: n - steps]
        elif -n < steps < 0:
            shifted[: n + steps] = s.values[-steps:]
            if ints is not None:
                ints[: n + steps] = s.int_points[-steps:]
        result.append(_derived(s, f"delay({s.name},{steps})", shifted, ints, delay=steps))
    return result


def _shift_seconds(time_shift: str) -> int:
    return interval_seconds(time_shift if not time_shift[0].isdigit() else "-" + time_shift)


def _is_dst(epoch: int, tz: datetime.tzinfo) -> bool:
    return bool(datetime.datetime.fromtimestamp(epoch, tz).dst())


def _dst_offset(ctx: RequestContext, shift: int) -> int:
    """graphite's ``alignDst``: ±1 h when the request and the shifted window differ in DST."""
    request = (_is_dst(ctx.start, ctx.tz), _is_dst(ctx.end, ctx.tz))
    shifted = (_is_dst(ctx.start + shift, ctx.tz), _is_dst(ctx.end + shift, ctx.tz))
    if all(request) and not any(shifted):
        return 3600
    if not any(request) and all(shifted):
        return -3600
    return 0


def _time_shift_window(arguments: Mapping[str, Any], ctx: RequestContext, step: int) -> tuple[int, int]:
    shift = _shift_seconds(arguments["timeShift"])
    if arguments["alignDst"]:
        shift += _dst_offset(ctx, shift)
    return -shift, shift


@series_function(
    "timeShift",
    group="Transform",
    params=[
        SERIES_LIST,
        Param("timeShift", ParamType.interval, required=True,
              suggestions=("1h", "6h", "12h", "1d", "2d", "7d", "14d", "30d")),
        Param("resetEnd", ParamType.boolean, default=True),
        Param("alignDst", ParamType.boolean, default=False),
    ],
    window=_time_shift_window,
)
def time_shift(
    ctx: RequestContext,
    series_list: list[Series],
    time_shift: str,
    reset_end: bool = True,
    align_dst: bool = False,
    *,
    widened: list[Series] | None = None,
) -> list[Series]:
    """Draw the series as they were ``timeShift`` ago (``"1d"``, ``"-2h"``; no sign means back).

    The shifted data is relabelled onto the requested time range. With
    ``resetEnd`` (the default) it ends where the unshifted series ends, so a
    shift into the future stops at the present. ``alignDst`` compensates a
    daylight-saving change between the two ranges.
    """
    if not series_list:
        return []
    label = time_shift if not time_shift[0].isdigit() else "-" + time_shift
    anchor = series_list[0]
    result = []
    for shifted in series_list if widened is None else widened:
        end = anchor.end if reset_end else shifted.end - shifted.start + anchor.start
        result.append(
            shifted.copy(
                name=f'timeShift({shifted.name}, "{label}")',
                start=anchor.start,
                end=end,
                tags={**shifted.tags, "timeShift": label},
            )
        )
    return result


def _positive_interval(function: str, text: str) -> int:
    seconds = interval_seconds(text)
    if seconds <= 0:
        raise InputError(f"cannot call {function} intervalString={text!r}: must be a positive interval")
    return seconds


def _bucket_matrix(bucket_of: np.ndarray, values: np.ndarray, buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """Points grouped by (sorted) bucket index into rows, padded; plus which cells exist."""
    counts = np.bincount(bucket_of, minlength=buckets)
    width = max(int(counts.max(initial=0)), 1)
    first = np.concatenate(([0], np.cumsum(counts)[:-1]))
    column = np.arange(len(bucket_of)) - first[bucket_of]
    matrix = np.full((buckets, width), np.nan)
    present = np.zeros((buckets, width), dtype=bool)
    matrix[bucket_of, column] = values
    present[bucket_of, column] = True
    return matrix, present


def summarize_values(
    series: Series, func: str, interval: int, new_start: int, new_end: int
) -> tuple[np.ndarray, int, np.ndarray | None]:
    """graphite's ``_summarizeValues``: one value per ``interval`` bucket from ``new_start``.

    A bucket holds the points whose timestamps fall in it (up to the
    series' end); its value is ``func`` over them, missing unless the count
    of non-missing points over ``interval / step`` reaches the series'
    xFilesFactor. Returns the values, the end after the last bucket and
    which values are ints (``reduced_ints``).
    """
    canonical = canonical_agg(func)
    buckets = max(-(-(new_end - new_start) // interval), 0)
    points = min(len(range(int(series.start), int(series.end), int(series.step))), len(series))
    timestamps = series.start + np.arange(points) * series.step
    bucket_of = (timestamps - new_start) // interval
    inside = bucket_of < buckets
    matrix, present = _bucket_matrix(bucket_of[inside].astype(np.int64), series.values[:points][inside], buckets)
    non_null = (~np.isnan(matrix)).sum(axis=1)
    keep = (non_null > 0) & (non_null / (interval / series.step) >= series.x_files_factor)
    values = np.where(keep, reduce_axis(matrix, canonical, axis=1, present=present), np.nan)
    ints = None
    if series.int_points is not None or canonical == "count":
        source = np.zeros(len(bucket_of), dtype=bool) if series.int_points is None else series.int_points[:points]
        int_cells, _ = _bucket_matrix(bucket_of[inside].astype(np.int64), source[inside], buckets)
        ints = reduced_ints(matrix, int_cells == 1.0, canonical, axis=1)
    return values, new_start + buckets * interval, ints


@series_function(
    "summarize",
    group="Transform",
    params=[
        SERIES_LIST,
        Param("intervalString", ParamType.interval, required=True, suggestions=INTERVAL_SUGGESTIONS),
        Param("func", ParamType.aggFunc, default="sum"),
        Param("alignToFrom", ParamType.boolean, default=False),
    ],
)
def summarize(
    ctx: RequestContext,
    series_list: list[Series],
    interval_string: str,
    func: str = "sum",
    align_to_from: bool = False,
) -> list[Series]:
    """Merge points into ``intervalString`` buckets with ``func`` (default sum).

    Buckets start at multiples of the interval since the epoch (22:32 falls in
    22:00-23:00 for "1h"), or at the series' start with ``alignToFrom``.
    """
    interval = _positive_interval("summarize", interval_string)
    result = []
    for s in series_list:
        if align_to_from:
            new_start, new_end = s.start, s.end
        else:
            new_start = s.start - s.start % interval
            new_end = s.end - s.end % interval + interval
        values, aligned_end, ints = summarize_values(s, func, interval, new_start, new_end)
        if align_to_from:
            new_end = aligned_end
        name = f'summarize({s.name}, "{interval_string}", "{func}"{", true" if align_to_from else ""})'
        tags = {**s.tags, "summarize": interval_string, "summarizeFunction": func}
        result.append(
            s.copy(name=name, path_expression=name, start=new_start, end=new_end, step=interval,
                   values=values, tags=tags, int_points=ints, options={})  # graphite's copy() drops graph options
        )
    return result


def _truncate_start(ctx: RequestContext, interval: int) -> int:
    """The request start truncated to its day, hour or minute (by ``interval``), in the request's zone."""
    start = datetime.datetime.fromtimestamp(ctx.start, ctx.tz)
    if interval >= 86400:
        start = start.replace(hour=0, minute=0, second=0, microsecond=0)
    elif interval >= 3600:
        start = start.replace(minute=0, second=0, microsecond=0)
    elif interval >= 60:
        start = start.replace(second=0, microsecond=0)
    return int(start.timestamp())


def _hitcount_window(arguments: Mapping[str, Any], ctx: RequestContext, step: int) -> tuple[int, int]:
    if not arguments["alignToInterval"]:
        return 0, 0
    interval = interval_seconds(arguments["intervalString"])
    return ctx.start - _truncate_start(ctx, interval), 0


def _hit_buckets(series: Series, interval: int) -> tuple[int, list[float | int | None]]:
    """graphite's hitcount spreading: each value * seconds of its step inside each bucket.

    Int values (``int_points``) stay Python ints, so their bucket totals are ints as in graphite.
    """
    step = int(series.step)
    count = math.ceil((series.end - series.start) / interval)
    buckets: list[list[float]] = [[] for _ in range(count)]
    new_start = int(series.end - count * interval)
    for i, value in enumerate(series.output_list()):
        if value is None:
            continue
        start_time = int(series.start + i * step)
        start_bucket, start_mod = divmod(start_time - new_start, interval)
        if start_bucket >= count:  # a value past the series' end (mixed-step sums): graphite-web raises IndexError
            break
        end_bucket, end_mod = divmod(start_time + step - new_start, interval)
        if end_bucket >= count:
            end_bucket, end_mod = count - 1, interval
        if start_bucket == end_bucket:
            if start_bucket >= 0:
                buckets[start_bucket].append(value * (end_mod - start_mod))
            continue
        if start_bucket >= 0:
            buckets[start_bucket].append(value * (interval - start_mod))
        for j in range(start_bucket + 1, end_bucket):
            buckets[j].append(value * interval)
        if end_mod > 0:
            buckets[end_bucket].append(value * end_mod)
    return new_start, [sum(b) if b else None for b in buckets]


@series_function(
    "hitcount",
    group="Transform",
    params=[
        SERIES_LIST,
        Param("intervalString", ParamType.interval, required=True, suggestions=INTERVAL_SUGGESTIONS),
        Param("alignToInterval", ParamType.boolean, default=False),
    ],
    window=_hitcount_window,
    widens_empty=True,
)
def hitcount(
    ctx: RequestContext,
    series_list: list[Series],
    interval_string: str,
    align_to_interval: bool = False,
    *,
    widened: list[Series] | None = None,
) -> list[Series]:
    """Hits per ``intervalString`` from per-second rates.

    Each value counts for the seconds of its step that fall in a bucket, so
    fine and coarse archives give similar totals. Buckets end at the
    series' end; with ``alignToInterval`` they start at the request start
    truncated to the day, hour or minute.
    """
    interval = _positive_interval("hitcount", interval_string)
    if align_to_interval:
        series_list = [
            s.copy(end=s.start + ((s.end - s.start) // interval) * interval + interval)
            for s in (series_list if widened is None else widened)
        ]
    result = []
    for s in series_list:
        new_start, values = _hit_buckets(s, interval)
        name = f'hitcount({s.name}, "{interval_string}"{", true" if align_to_interval else ""})'
        ints = [isinstance(v, int) for v in values] if s.int_points is not None else None
        array = np.array([math.nan if v is None else v for v in values], dtype=np.float64)
        result.append(_derived(s, name, array, ints, hitcount=interval_string).copy(start=new_start, step=interval))
    return result


def _fill_runs(values: np.ndarray, limit: float) -> np.ndarray:
    """Missing runs of at most ``limit`` points that follow a value take that value."""
    n = len(values)
    valid = ~np.isnan(values)
    index = np.arange(n)
    last = np.maximum.accumulate(np.where(valid, index, -1))
    following = np.minimum.accumulate(np.where(valid, index, n)[::-1])[::-1]
    run = following - last - 1
    fill = ~valid & (last >= 0) & (run <= limit)
    out = values.copy()
    out[fill] = values[last[fill]]
    return out


@series_function(
    "keepLastValue",
    group="Transform",
    params=[SERIES_LIST, Param("limit", ParamType.intOrInf, default=math.inf)],
)
def keep_last_value(ctx: RequestContext, series_list: list[Series], limit: float = math.inf) -> list[Series]:
    """Carry the last value over gaps of at most ``limit`` missing points (any length by default)."""
    result = []
    for s in series_list:
        name = f"keepLastValue({s.name})"
        ints = None
        if s.int_points is not None:  # the same runs filled in a copy marking ints with 1
            ints = _fill_runs(np.where(np.isnan(s.values), np.nan, s.int_points.astype(np.float64)), limit) == 1
        result.append(s.copy(name=name, path_expression=name, values=_fill_runs(s.values, limit), int_points=ints))
    return result


@series_function(
    "transformNull",
    group="Transform",
    params=[
        SERIES_LIST,
        Param("default", ParamType.float, default=0),
        Param("referenceSeries", ParamType.seriesList),
    ],
)
def transform_null(
    ctx: RequestContext,
    series_list: list[Series],
    default: float = 0,
    reference_series: list[Series] | None = None,
) -> list[Series]:
    """Replace missing values with ``default`` (0).

    With ``referenceSeries``, only where at least one of those series has a
    value (elsewhere the point stays missing).
    """
    defaults = None
    if reference_series:
        matrix = stack_values(reference_series)
        defaults = np.where((~np.isnan(matrix)).any(axis=0), float(default), np.nan)
    result = []
    for s in series_list:
        if reference_series:
            name = f"transformNull({s.name},{default:g},referenceSeries)"
            tags = {**s.tags, "transformNull": default, "referenceSeries": 1}
        else:
            name = f"transformNull({s.name},{default:g})"
            tags = {**s.tags, "transformNull": default}
        if defaults is not None and len(defaults):
            # matched by position; a series keeps its own length (graphite-web, given more
            # reference points than values, keeps the last len(series) of its zip instead)
            fill = np.full(len(s), np.nan)
            fill[: min(len(s), len(defaults))] = defaults[: len(s)]
            values = np.where(np.isnan(s.values), fill, s.values)
        else:
            values = np.where(np.isnan(s.values), float(default), s.values)
        result.append(s.copy(name=name, path_expression=name, values=values, tags=tags,
                             int_points=_filled_ints(s, values, default)))
    return result


def _filled_ints(series: Series, filled: np.ndarray, default: float) -> np.ndarray | None:
    """``int_points`` after filling gaps of ``series`` (``filled``, of the same length) with
    ``default``: graphite keeps an int default an int."""
    is_int = isinstance(default, int) and not isinstance(default, bool)
    if series.int_points is None and not is_int:
        return None
    ints = np.zeros(len(filled), dtype=bool) if series.int_points is None else series.int_points.copy()
    if is_int:
        ints |= np.isnan(series.values) & ~np.isnan(filled)
    return ints



# --- elementwise maths ---------------------------------------------------------------


@series_function("add", group="Transform", params=[SERIES_LIST, Param("constant", ParamType.float, required=True)])
def add(ctx: RequestContext, series_list: list[Series], constant: float) -> list[Series]:
    """Add ``constant`` to every value (the name shows it as an integer: ``add(x,1)`` for 1.5)."""
    return [_renamed(s, f"add({s.name},{int(constant)})", s.values + constant, add=constant) for s in series_list]


@series_function("exp", group="Transform", params=[SERIES_LIST])
def exp(ctx: RequestContext, series_list: list[Series]) -> list[Series]:
    """``e`` to the power of every value.

    Where the result overflows the value is missing (graphite-web fails
    the whole request with an OverflowError).
    """
    return [_renamed(s, f"exp({s.name})", python_math(math.exp, s.values), exp="e") for s in series_list]


@series_function("sigmoid", group="Transform", params=[SERIES_LIST])
def sigmoid(ctx: RequestContext, series_list: list[Series]) -> list[Series]:
    """``1 / (1 + e^-value)`` for every value.

    Very negative values give 0 (graphite-web fails the request there:
    ``e^-value`` overflows).
    """
    result = []
    for s in series_list:
        values = python_math(lambda v: 1 / (1 + math.exp(-v)), s.values, overflow=0.0)
        result.append(_renamed(s, f"sigmoid({s.name})", values, sigmoid="sigmoid"))
    return result


@series_function("logit", group="Transform", params=[SERIES_LIST])
def logit(ctx: RequestContext, series_list: list[Series]) -> list[Series]:
    """``log(value / (1 - value))`` for every value; outside (0, 1) the value is missing."""
    result = []
    for s in series_list:
        values = python_math(lambda v: math.log(v / (1 - v)), s.values)
        result.append(_renamed(s, f"logit({s.name})", values, logit="logit"))
    return result


@series_function("log", group="Transform", params=[SERIES_LIST, Param("base", ParamType.integer, default=10)])
def log(ctx: RequestContext, series_list: list[Series], base: int = 10) -> list[Series]:
    """The logarithm of every value in ``base`` (10); values at or below 0 are missing."""
    # graphite-web's math.log(value, base) fails (ValueError, ZeroDivisionError for 1) at the first
    # positive value: it answers only series without one, all missing. Refused up front.
    if base <= 0 or base == 1:
        raise InputError(f"cannot call log base={base!r}: must be positive and not 1")
    result = []
    for s in series_list:
        values = python_math(lambda v: math.log(v, base), s.values)
        result.append(copied(s, f"log({s.name}, {base})", values, log=base))
    return result


def _python_round(values: np.ndarray, precision: int) -> np.ndarray:
    """Python's correctly rounded ``round(v, precision)`` (half to even on the exact binary value)."""
    if precision == 0:
        return np.rint(values)
    return np.array([v if v != v else round(v, precision) for v in values.tolist()], dtype=np.float64)


class _Omitted(int):
    """An int default that remembers it was not given (graphite names ``round(x)`` and ``round(x,0)`` apart)."""


#: round's declared default 0, told apart from an explicit 0 by identity.
OMITTED_PRECISION = _Omitted(0)


@series_function("round", group="Transform",
                 params=[SERIES_LIST, Param("precision", ParamType.integer, default=OMITTED_PRECISION)])
def round_(ctx: RequestContext, series_list: list[Series], precision: int = OMITTED_PRECISION) -> list[Series]:
    """Round every value to ``precision`` decimal places (0: whole numbers; negative: tens, ...)."""
    result = []
    for s in series_list:
        name = f"round({s.name})" if precision is OMITTED_PRECISION else f"round({s.name},{int(precision)})"
        # Python's round keeps an int an int
        result.append(_renamed(s, name, _python_round(s.values, int(precision)), s.int_points, round=int(precision)))
    return result


def _safe_min(values: np.ndarray) -> float | None:
    """Python's ``min`` of the values: the first of equal ones (-0.0 or 0.0 as they come)."""
    valid = values[~np.isnan(values)]
    return float(valid[np.argmax(valid == valid.min())]) if len(valid) else None


def _safe_max(values: np.ndarray) -> float | None:
    """Python's ``max`` of the values: the first of equal ones."""
    valid = values[~np.isnan(values)]
    return float(valid[np.argmax(valid == valid.max())]) if len(valid) else None


@series_function("offsetToZero", group="Transform", params=[SERIES_LIST])
def offset_to_zero(ctx: RequestContext, series_list: list[Series]) -> list[Series]:
    """Subtract the series' minimum from every value, so its lowest point is 0.

    Compares series with different baselines, such as round-trip times to
    devices at different network distances.
    """
    result = []
    for s in series_list:
        minimum = _safe_min(s.values)
        values = s.values if minimum is None else s.values - minimum
        ints = None
        if minimum is not None and s.int_points is not None:
            # graphite's min() returns the first minimal element: an int there makes the tag and differences ints
            first = int(np.flatnonzero(s.values == minimum)[0])
            if s.int_points[first]:
                minimum = int(minimum)
                ints = s.int_points
        result.append(_renamed(s, f"offsetToZero({s.name})", values, ints, offsetToZero=minimum))
    return result


@series_function("minMax", group="Transform", params=[SERIES_LIST])
def min_max(ctx: RequestContext, series_list: list[Series]) -> list[Series]:
    """Min-max normalisation: ``(value - min) / (max - min)``; all 0 when max equals min."""
    result = []
    for s in series_list:
        low, high = _safe_min(s.values), _safe_max(s.values)
        low, high = 0.0 if low is None else low, 0.0 if high is None else high  # -0.0 stays -0.0
        if high - low == 0:
            values = np.where(np.isnan(s.values), np.nan, 0.0)
        else:
            values = (s.values - low) / (high - low)
        name = f"minMax({s.name})"
        result.append(s.copy(name=name, path_expression=name, values=values))
    return result


@series_function("isNonNull", group="Transform", params=[SERIES_LIST])
def is_non_null(ctx: RequestContext, series_list: list[Series]) -> list[Series]:
    """1 where the series has a value, 0 where it is missing (sum them to count live series)."""
    return [
        _renamed(s, f"isNonNull({s.name})", (~np.isnan(s.values)).astype(np.float64),
                 np.ones(len(s.values), dtype=bool), isNonNull=1)
        for s in series_list
    ]


@series_function("changed", group="Special", params=[SERIES_LIST])
def changed(ctx: RequestContext, series_list: list[Series]) -> list[Series]:
    """1 where the value differs from the last value seen before it, else 0 (missing values give 0)."""
    result = []
    for s in series_list:
        valid = ~np.isnan(s.values)
        index = np.arange(len(s.values))
        last_seen = np.maximum.accumulate(np.where(valid, index, -1))
        before = np.concatenate(([-1], last_seen[:-1])) if len(index) else last_seen
        previous = np.where(before >= 0, s.values[np.maximum(before, 0)], np.nan)
        values = (valid & (before >= 0) & (s.values != previous)).astype(np.float64)
        name = f"changed({s.name})"
        result.append(s.copy(name=name, path_expression=name, values=values, int_points=whole_ints(values)))
    return result


def _interpolated(values: np.ndarray, limit: float) -> np.ndarray:
    """graphite's ``interpolate``: straight lines across inner gaps of at most ``limit`` points.

    A gap is filled only when values precede and follow it.
    """
    out = values.copy()
    n = len(values)
    valid = ~np.isnan(values)
    index = np.arange(n)
    previous = np.maximum.accumulate(np.where(valid, index, -1))
    following = np.minimum.accumulate(np.where(valid, index, n)[::-1])[::-1]
    fill = ~valid & (previous >= 0) & (following < n) & (following - previous - 1 <= limit)
    if fill.any():
        p, f, i = previous[fill], following[fill], index[fill]
        start, end = values[p], values[f]
        run = f - p
        out[fill] = start + (i - p) * (end - start) / run
    return out


@series_function(
    "interpolate",
    group="Transform",
    params=[SERIES_LIST, Param("limit", ParamType.intOrInf, default=math.inf)],
)
def interpolate(ctx: RequestContext, series_list: list[Series], limit: float = math.inf) -> list[Series]:
    """Fill gaps of at most ``limit`` missing points with a straight line between their neighbours.

    Leading and trailing gaps stay missing.
    """
    result = []
    for s in series_list:
        name = f"interpolate({s.name})"
        ints = None if s.int_points is None else s.int_points & ~np.isnan(s.values)  # filled points are floats
        result.append(s.copy(name=name, path_expression=name, values=_interpolated(s.values, limit), int_points=ints))
    return result


@series_function(
    "integralByInterval",
    group="Transform",
    params=[SERIES_LIST, Param("intervalUnit", ParamType.string, required=True)],
)
def integral_by_interval(ctx: RequestContext, series_list: list[Series], interval_unit: str) -> list[Series]:
    """Running total restarting at 0 every ``intervalUnit`` counted from the request's start.

    ``integralByInterval(sales.perMinute, "1d")`` with ``from=midnight-10days``
    shows the sales of each day so far. Missing points repeat the total.
    """
    try:
        interval = abs(interval_seconds(interval_unit))
    except ValueError as exc:
        raise InputError(f"cannot call integralByInterval intervalUnit={interval_unit!r}: {exc}") from None
    if interval == 0:
        raise InputError(f"cannot call integralByInterval intervalUnit={interval_unit!r}: must not be 0")
    result = []
    for s in series_list:
        n = len(s.values)
        since = s.start + np.arange(n, dtype=np.int64) * s.step - ctx.start
        starts = np.flatnonzero(since // interval != (since - s.step) // interval)
        bounds = np.union1d([0, n], starts)
        zeroed = np.where(np.isnan(s.values), 0.0, s.values)
        values = np.empty(n)
        for begin, end in zip(bounds[:-1], bounds[1:], strict=True):
            values[begin:end] = np.cumsum(zeroed[begin:end]) + 0.0
        name = f"integralByInterval({s.name},'{interval_unit}')"
        result.append(copied(s, name, values, integralByInterval=interval_unit))
    return result


# --- time ranges -----------------------------------------------------------------------


@series_function(
    "timeSlice",
    group="Transform",
    params=[
        SERIES_LIST,
        Param("startSliceAt", ParamType.date, required=True),
        Param("endSliceAt", ParamType.date, default="now"),
    ],
)
def time_slice(
    ctx: RequestContext, series_list: list[Series], start_slice_at: int | float | str, end_slice_at: int | float | str = "now"
) -> list[Series]:
    """Blank out values outside ``[startSliceAt, endSliceAt]`` (times as in ``from``/``until``).

    As in graphite-web, the i-th value is taken to be at the request's
    start plus i steps, not at its own timestamp. The path expression is
    kept.
    """
    start = date_seconds("timeSlice", "startSliceAt", start_slice_at, ctx.tz, ctx.now)
    end = date_seconds("timeSlice", "endSliceAt", end_slice_at, ctx.tz, ctx.now)
    result = []
    for s in series_list:
        when = ctx.start + np.arange(len(s.values), dtype=np.int64) * s.step
        values = np.where((when < start) | (when > end), np.nan, s.values)
        result.append(
            s.copy(name=f"timeSlice({s.name}, {start}, {end})", values=values,
                   tags={**s.tags, "timeSliceStart": start, "timeSliceEnd": end}, int_points=s.int_points)
        )
    return result


def _stack_unit(time_shift_unit: str) -> str:
    return "-" + time_shift_unit if time_shift_unit[0].isdigit() else time_shift_unit


def _time_stack_shifts(arguments: Mapping[str, Any], ctx: RequestContext) -> list[int]:
    delta = interval_seconds(_stack_unit(arguments["timeShiftUnit"]))
    return [delta * k for k in range(int(arguments["timeShiftStart"]), int(arguments["timeShiftEnd"]))]


@series_function(
    "timeStack",
    group="Transform",
    params=[
        SERIES_LIST,
        Param("timeShiftUnit", ParamType.interval, default="1d",
              suggestions=("1h", "6h", "12h", "1d", "2d", "7d", "14d", "30d")),
        Param("timeShiftStart", ParamType.integer, default=0),
        Param("timeShiftEnd", ParamType.integer, default=7),
    ],
    shifts=_time_stack_shifts,
)
def time_stack(
    ctx: RequestContext,
    series_list: list[Series],
    time_shift_unit: str = "1d",
    time_shift_start: int = 0,
    time_shift_end: int = 7,
    *,
    shifted: list[list[Series]] | None = None,
) -> list[Series]:
    """The series shifted back by ``timeShiftUnit`` times each of ``timeShiftStart`` .. ``timeShiftEnd - 1``.

    ``timeStack(x, "1d", 0, 7)`` draws today and each of the six days
    before over today's range (e.g. to feed ``averageSeries``). As in
    graphite, the first argument is evaluated anew over each shifted range
    (so ``timeStack(integral(x), ...)`` integrates each day from its own
    start) and every copy is relabelled onto the range of the first series.
    """
    if not series_list:
        return []
    unit = _stack_unit(time_shift_unit)
    anchor = series_list[0]
    shifts = range(int(time_shift_start), int(time_shift_end))
    if shifted is None:  # called without an evaluator: only the unshifted data is at hand
        delta = interval_seconds(unit)
        shifted = [series_list if delta * k == 0 else
                   [s.copy(values=np.full(len(s.values), np.nan), int_points=None) for s in series_list]
                   for k in shifts]
    result = []
    for k, evaluated in zip(shifts, shifted, strict=True):
        for s in evaluated:
            name = f"timeShift({s.name}, {unit}, {k})"
            result.append(s.copy(name=name, path_expression=name, start=anchor.start, end=anchor.end,
                                 tags={**s.tags, "timeShiftUnit": unit, "timeShift": k}))
    return result


def _generated(ctx: RequestContext, name: str, step: int, values: Any) -> list[Series]:
    return [Series(name, ctx.start, ctx.end, step, values, x_files_factor=request_x_files_factor(ctx))]


def _positive_step(function: str, step: int) -> int:
    if step <= 0:
        raise InputError(f"cannot call {function} step={step!r}: must be positive")
    return step


TIME_NAME = Param("name", ParamType.string, required=True)
TIME_STEP = Param("step", ParamType.integer, default=60)


@series_function("timeFunction", group="Transform", params=[TIME_NAME, TIME_STEP], aliases=("time",))
def time_function(ctx: RequestContext, name: str, step: int = 60) -> list[Series]:
    """A series called ``name`` whose value is its own timestamp, every ``step`` seconds (short form: ``time``)."""
    times = np.arange(ctx.start, ctx.end, _positive_step("timeFunction", step), dtype=np.float64)
    return _generated(ctx, name, step, times)


@series_function(
    "sinFunction",
    group="Transform",
    params=[TIME_NAME, Param("amplitude", ParamType.integer, default=1), TIME_STEP],
    aliases=("sin",),
)
def sin_function(ctx: RequestContext, name: str, amplitude: int = 1, step: int = 60) -> list[Series]:
    """A sine wave of the timestamp times ``amplitude``, every ``step`` seconds (short form: ``sin``)."""
    times = np.arange(ctx.start, ctx.end, _positive_step("sinFunction", step), dtype=np.float64)
    return _generated(ctx, name, step, python_math(lambda t: math.sin(t) * amplitude, times))


@series_function("randomWalkFunction", group="Special", params=[TIME_NAME, TIME_STEP], aliases=("randomWalk",))
def random_walk_function(ctx: RequestContext, name: str, step: int = 60) -> list[Series]:
    """A random walk from 0, each step adding a uniform value in [-0.5, 0.5) (short form: ``randomWalk``).

    Handy for trying graphs without data; every request draws a new walk.
    """
    count = len(range(ctx.start, ctx.end, _positive_step("randomWalkFunction", step)))
    steps = np.random.default_rng().random(count) - 0.5
    walk = np.concatenate(([0.0], np.cumsum(steps[:-1]))) if count else steps
    [series] = _generated(ctx, name, step, walk)
    return [series.copy(int_points=np.arange(count) == 0)]  # graphite starts the walk at the int 0


# --- smartSummarize, compressPeriodicGaps ----------------------------------------------------

ALIGN_UNITS = ("seconds", "minutes", "hours", "days", "weeks", "months", "years")


def _align_unit(align_to: str) -> str:
    """graphite's ``getUnitString``: the unit a string starts with."""
    for prefix, unit in (("s", "seconds"), ("min", "minutes"), ("h", "hours"), ("d", "days"),
                         ("w", "weeks"), ("mon", "months"), ("y", "years")):
        if align_to.startswith(prefix):
            return unit
    raise InputError(f"cannot call smartSummarize alignTo={align_to!r}: not a time unit")


def _aligned_start(ctx: RequestContext, align_to: str) -> int:
    """The request start truncated to the ``alignTo`` unit in the request's zone."""
    unit = _align_unit(align_to)
    s = datetime.datetime.fromtimestamp(ctx.start, ctx.tz)
    if unit == "years":
        aligned = s.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    elif unit == "months":
        aligned = s.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    elif unit == "weeks":
        weekday = 1 if align_to[-1].isalpha() else int(align_to[-1])
        midnight = s.replace(hour=0, minute=0, second=0, microsecond=0)
        aligned = midnight - datetime.timedelta(days=(s.isoweekday() - weekday) % 7)
    elif unit == "days":
        aligned = s.replace(hour=0, minute=0, second=0, microsecond=0)
    elif unit == "hours":
        aligned = s.replace(minute=0, second=0, microsecond=0)
    elif unit == "minutes":
        aligned = s.replace(second=0, microsecond=0)
    else:
        aligned = s.replace(microsecond=0)
    return int(aligned.timestamp())


def _smart_summarize_window(arguments: Mapping[str, Any], ctx: RequestContext, step: int) -> tuple[int, int]:
    align_to = arguments["alignTo"]
    if align_to is None or isinstance(align_to, bool):
        return 0, 0
    return ctx.start - _aligned_start(ctx, align_to), 0


@series_function(
    "smartSummarize",
    group="Transform",
    params=[
        SERIES_LIST,
        Param("intervalString", ParamType.interval, required=True, suggestions=INTERVAL_SUGGESTIONS),
        Param("func", ParamType.aggFunc, default="sum"),
        Param("alignTo", ParamType.string, options=(None, *ALIGN_UNITS, True, False), enforce_options=False),
    ],
    window=_smart_summarize_window,
    widens_empty=True,
)
def smart_summarize(
    ctx: RequestContext,
    series_list: list[Series],
    interval_string: str,
    func: str = "sum",
    align_to: str | None = None,
    *,
    widened: list[Series] | None = None,
) -> list[Series]:
    """Like ``summarize``, but buckets start at the series' start, not at multiples of the interval.

    With ``alignTo`` (``years``, ``months``, ``weeks`` (``weeks4``: Thursday),
    ``days``, ``hours``, ``minutes``, ``seconds``) the start is first
    truncated to that unit, reading data from before the requested start.
    ``true``/``false`` (the old ``alignToFrom``) are ignored.
    """
    interval = _positive_interval("smartSummarize", interval_string)
    canonical_agg(func)
    if align_to is not None and not isinstance(align_to, bool):
        _align_unit(align_to)
        if widened is not None:
            series_list = widened
    result = []
    for s in series_list:
        values, aligned_end, ints = summarize_values(s, func, interval, s.start, s.end)
        name = f'smartSummarize({s.name}, "{interval_string}", "{func}")'
        tags = {**s.tags, "smartSummarize": interval_string, "smartSummarizeFunction": func}
        result.append(copied(s, name, values).copy(end=aligned_end, step=interval, tags=tags, int_points=ints))
    return result


def _periodic_interval(values: list[float | None], step: int) -> tuple[int, int] | None:
    """graphite's guess of a periodic series' real period: (first index, interval) or None.

    It looks at the first truthy values (0 counts as missing); as in
    graphite, a truthy first point is skipped as the first sighting.
    """
    first_seen = second_seen = 0
    for i, value in enumerate(values):
        if value:
            if first_seen > 0:
                second_seen = i
                break
            first_seen = i
    guess = second_seen - first_seen
    third = second_seen + guess
    if guess > 1 and third <= len(values) - 2 and values[third] and values[third - 1] is None \
            and values[third + 1] is None:
        return first_seen, guess * step
    return None


@series_function("compressPeriodicGaps", group="Transform", params=[SERIES_LIST])
def compress_periodic_gaps(ctx: RequestContext, series_list: list[Series]) -> list[Series]:
    """Drop regularly spaced gaps by guessing the real period from the first values.

    A series stored at a finer step than it is written (a value every
    5 minutes in a 1-minute archive) becomes ``summarize(..., "last")`` at
    its own period; a series where no period is found is only renamed.
    """
    result = []
    for s in series_list:
        name = f"compressPeriodicGaps({s.name})"
        renamed = s.copy(name=name, path_expression=name)
        guess = _periodic_interval(s.to_list(), s.step)
        if guess is None:
            result.append(renamed)
            continue
        first, interval = guess
        new_start = s.start + first * s.step
        tail = None if s.int_points is None else s.int_points[first:]
        values, _, ints = summarize_values(
            renamed.copy(start=new_start, values=s.values[first:], int_points=tail), "last", interval, new_start, s.end
        )
        new_end = new_start + interval * (len(values) - 1)
        result.append(renamed.copy(start=new_start, end=new_end, step=interval, values=values, options={},
                                   int_points=ints))
    return result
