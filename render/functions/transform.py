"""Transform: functions that change each series' values one series at a time (graphite's "Transform" group)."""

from __future__ import annotations

import datetime
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from render.functions.aggregation import canonical_agg, reduce_axis
from render.functions.params import InputError, Param, ParamType, interval_seconds
from render.functions.registry import RequestContext, series_function
from render.series import Series, stack_values

SERIES_LIST = Param("seriesList", ParamType.seriesList, required=True)
INTERVAL_SUGGESTIONS = ("10min", "1h", "1d")


def _renamed(series: Series, name: str, values: np.ndarray | None = None, **tags: Any) -> Series:
    """graphite's in-place rename: new name, path expression = name, extra tags."""
    changes: dict[str, Any] = {"name": name, "path_expression": name, "tags": {**series.tags, **tags}}
    if values is not None:
        changes["values"] = values
    return series.copy(**changes)


def _round6(values: np.ndarray) -> np.ndarray:
    """Python's ``round(v, 6)`` (correctly rounded) for every value, NaN kept."""
    return np.array([v if math.isnan(v) else round(v, 6) for v in values.tolist()], dtype=np.float64)


def _power(values: np.ndarray, exponent: float) -> np.ndarray:
    """graphite's ``safePow``: missing on domain errors and on overflow."""
    with np.errstate(all="ignore"):
        result = np.power(values, exponent)
    overflow = np.isinf(result) & np.isfinite(values)
    return np.where(overflow, np.nan, result)


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
    return [_renamed(s, f"absolute({s.name})", np.abs(s.values), absolute=1) for s in series_list]


@series_function("invert", group="Transform", params=[SERIES_LIST])
def invert(ctx: RequestContext, series_list: list[Series]) -> list[Series]:
    """``1/value`` for every value; 0 gives a missing value."""
    return [_renamed(s, f"invert({s.name})", _power(s.values, -1.0), invert=1) for s in series_list]


@series_function("pow", group="Transform", params=[SERIES_LIST, Param("factor", ParamType.float, required=True)])
def pow_(ctx: RequestContext, series_list: list[Series], factor: float) -> list[Series]:
    """Raise every value to the power ``factor``; impossible results are missing."""
    return [_renamed(s, f"pow({s.name},{float(factor):g})", _power(s.values, factor), pow=factor)
            for s in series_list]


@series_function("squareRoot", group="Transform", params=[SERIES_LIST])
def square_root(ctx: RequestContext, series_list: list[Series]) -> list[Series]:
    """The square root of every value; negative values give missing values."""
    return [_renamed(s, f"squareRoot({s.name})", _power(s.values, 0.5), squareRoot=1) for s in series_list]


def _derived(series: Series, name: str, values: np.ndarray, **tags: Any) -> Series:
    """graphite's ``series.copy(name=...)``: path expression becomes the new name too."""
    return series.copy(name=name, path_expression=name, values=values, tags={**series.tags, **tags})


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
    return [_derived(s, f"derivative({s.name})", s.values - _previous(s.values), derivative=1)
            for s in series_list]


def _non_negative_delta(
    values: np.ndarray, max_value: float | None, min_value: float | None
) -> np.ndarray:
    """graphite's ``_nonNegativeDelta`` over a whole series.

    Values above ``max_value`` or below ``min_value`` are dropped (and are
    not the previous value of the next point). A decrease is a counter wrap:
    ``max_value + 1 + v - prev - (min_value or 0)`` with ``max_value``, else
    ``v - min_value`` with ``min_value``, else missing.
    """
    kept = values.copy()
    if max_value is not None:
        kept[kept > max_value] = np.nan
    if min_value is not None:
        kept[kept < min_value] = np.nan
    prev = _previous(kept)
    delta = kept - prev
    decreased = delta < 0
    if max_value is not None:
        wrapped = max_value + 1 + kept - prev - (min_value or 0)
    elif min_value is not None:
        wrapped = kept - min_value
    else:
        wrapped = np.full_like(kept, np.nan)
    return np.where(decreased, wrapped, delta)


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
        _derived(s, f"nonNegativeDerivative({s.name})", _non_negative_delta(s.values, max_value, min_value),
                 nonNegativeDerivative=1)
        for s in series_list
    ]


@series_function("perSecond", group="Transform", params=DELTA_PARAMS)
def per_second(
    ctx: RequestContext, series_list: list[Series], max_value: float | None = None, min_value: float | None = None
) -> list[Series]:
    """``nonNegativeDerivative`` divided by the step: a counter's rate per second (6 decimals)."""
    return [
        _derived(
            s,
            f"perSecond({s.name})",
            _round6(_non_negative_delta(s.values, max_value, min_value) / s.step),
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
        running = np.cumsum(np.where(valid, s.values, 0.0))
        result.append(_derived(s, f"integral({s.name})", np.where(valid, running, np.nan), integral=1))
    return result


@series_function("delay", group="Transform", params=[SERIES_LIST, Param("steps", ParamType.integer, required=True)])
def delay(ctx: RequestContext, series_list: list[Series], steps: int) -> list[Series]:
    """Shift values ``steps`` points later (earlier if negative), padding with missing values."""
    result = []
    for s in series_list:
        shifted = np.full(len(s), np.nan)
        n = len(s)
        if 0 <= steps < n:
            shifted[steps:] = s.values[: n - steps]
        elif -n < steps < 0:
            shifted[: n + steps] = s.values[-steps:]
        result.append(_derived(s, f"delay({s.name},{steps})", shifted, delay=steps))
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
) -> tuple[np.ndarray, int]:
    """graphite's ``_summarizeValues``: one value per ``interval`` bucket from ``new_start``.

    A bucket holds the points whose timestamps fall in it (up to the
    series' end); its value is ``func`` over them, missing unless the count
    of non-missing points over ``interval / step`` reaches the series'
    xFilesFactor. Returns the values and the end after the last bucket.
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
    return values, new_start + buckets * interval


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
        values, aligned_end = summarize_values(s, func, interval, new_start, new_end)
        if align_to_from:
            new_end = aligned_end
        name = f'summarize({s.name}, "{interval_string}", "{func}"{", true" if align_to_from else ""})'
        tags = {**s.tags, "summarize": interval_string, "summarizeFunction": func}
        result.append(
            s.copy(name=name, path_expression=name, start=new_start, end=new_end, step=interval,
                   values=values, tags=tags)
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


def _hit_buckets(series: Series, interval: int) -> tuple[int, list[float | None]]:
    """graphite's hitcount spreading: each value * seconds of its step inside each bucket."""
    step = int(series.step)
    count = math.ceil((series.end - series.start) / interval)
    buckets: list[list[float]] = [[] for _ in range(count)]
    new_start = int(series.end - count * interval)
    for i, value in enumerate(series.values.tolist()):
        if math.isnan(value):
            continue
        start_time = int(series.start + i * step)
        start_bucket, start_mod = divmod(start_time - new_start, interval)
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
        result.append(
            _derived(s, name, np.array(values, dtype=np.float64), hitcount=interval_string).copy(
                start=new_start, step=interval
            )
        )
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
        result.append(s.copy(name=name, path_expression=name, values=_fill_runs(s.values, limit)))
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
            width = max(len(s), len(defaults))
            values = np.full(width, np.nan)
            values[: len(s)] = s.values
            fill = np.full(width, np.nan)
            fill[: len(defaults)] = defaults
            values = np.where(np.isnan(values), fill, values)
        else:
            values = np.where(np.isnan(s.values), float(default), s.values)
        result.append(s.copy(name=name, path_expression=name, values=values, tags=tags))
    return result

