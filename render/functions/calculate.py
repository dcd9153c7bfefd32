"""Calculate: moving windows and derived lines (graphite's "Calculate" group).

The moving-window functions look back before the requested start, so they
declare a window: the evaluator fetches their first argument that much
earlier and hands it over as ``widened``; the output then starts where the
request does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from render.functions.aggregation import canonical_agg, percentile, reduce_axis
from render.functions.params import InputError, Param, ParamType, interval_seconds
from render.functions.registry import RequestContext, series_function
from render.series import Series

SERIES_LIST = Param("seriesList", ParamType.seriesList, required=True)
WINDOW_SUGGESTIONS = (5, 7, 10, "1min", "5min", "10min", "30min", "1hour")
WINDOW_SIZE = Param("windowSize", ParamType.intOrInterval, required=True, suggestions=WINDOW_SUGGESTIONS)
X_FILES_FACTOR = Param("xFilesFactor", ParamType.float)


def preview_seconds(window_size: int | float | str, step: int) -> int:
    """How far before the request a window of ``window_size`` reaches.

    An interval string gives its length; a point count, that many of the
    largest step among the series.
    """
    if isinstance(window_size, str):
        return abs(interval_seconds(window_size))
    if window_size < 0:
        raise InputError(f"cannot call a moving window windowSize={window_size!r}: must not be negative")
    return step * int(window_size)


def _moving_window(arguments: Mapping[str, Any], ctx: RequestContext, step: int) -> tuple[int, int]:
    return preview_seconds(arguments["windowSize"], step), 0


def _window_values(matrix: np.ndarray, points: int, func: str, x_files_factor: np.ndarray) -> np.ndarray:
    """Moving windows over each row: one value per window of ``points`` values.

    Output ``k`` covers ``row[k + 1 : k + 1 + points]`` (graphite starts one
    point in), so a row of ``n`` values gives ``n - points`` windows. ``func``
    sees only a window's non-missing values; a window is missing when it has
    none or their share of ``points`` is below the row's ``x_files_factor``.
    Sums and extremes are accumulated one offset at a time, in graphite's
    order.
    """
    rows, n = matrix.shape
    count = max(n - points, 0)
    if count == 0 or points <= 0:
        return np.full((rows, count), np.nan)
    body = matrix[:, 1:]
    valid = ~np.isnan(body)
    non_null = np.zeros((rows, count), dtype=np.int64)
    for k in range(points):
        non_null += valid[:, k : k + count]
    if func in ("sum", "average", "avg_zero"):
        zeroed = np.where(valid, body, 0.0)
        reduced = zeroed[:, :count].copy()
        for k in range(1, points):
            reduced += zeroed[:, k : k + count]
        if func != "sum":
            with np.errstate(invalid="ignore", divide="ignore"):
                reduced = reduced / non_null
    elif func in ("min", "max"):
        pick = np.fmin if func == "min" else np.fmax
        reduced = body[:, :count].copy()
        for k in range(1, points):
            reduced = pick(reduced, body[:, k : k + count])
    elif func == "count":
        reduced = non_null.astype(np.float64)
    else:
        windows = sliding_window_view(body, points, axis=1)
        if func == "multiply":  # graphite multiplies only the non-missing values
            windows = np.where(np.isnan(windows), 1.0, windows)
        reduced = reduce_axis(windows, func, axis=2)
    keep = (non_null > 0) & (non_null / points >= x_files_factor[:, np.newaxis])
    return np.where(keep, reduced, np.nan)


def moving(
    series_list: list[Series],
    window_size: int | float | str,
    func: str,
    x_files_factor: float | None,
    widened: list[Series] | None,
) -> list[Series]:
    """graphite's ``movingWindow`` over ``widened`` (or the request-window series).

    Series of equal length and step are computed together as one matrix.
    """
    canonical = canonical_agg(func)
    if not series_list:
        return []
    preview = preview_seconds(window_size, max(s.step for s in series_list))
    label = "moving" + func.capitalize()
    source = series_list if widened is None else widened
    groups: dict[tuple[int, int], list[int]] = {}
    for index, s in enumerate(source):
        groups.setdefault((len(s), s.step), []).append(index)
    values: dict[int, np.ndarray] = {}
    for (_, step), members in groups.items():
        points = preview // step if isinstance(window_size, str) else int(window_size)
        matrix = np.stack([source[i].values for i in members])
        xff = np.array([source[i].x_files_factor if x_files_factor is None else x_files_factor
                        for i in members], dtype=np.float64)
        for i, row in zip(members, _window_values(matrix, points, canonical, xff), strict=True):
            values[i] = row
    result = []
    for index, s in enumerate(source):
        if isinstance(window_size, str):
            name = f'{label}({s.name},"{window_size}")'
        else:
            name = f"{label}({s.name},{window_size})"
        result.append(
            s.copy(
                name=name,
                path_expression=name,
                start=s.start + preview,
                values=values[index],
                tags={**s.tags, label: window_size},
            )
        )
    return result


@series_function(
    "movingWindow",
    group="Calculate",
    params=[SERIES_LIST, WINDOW_SIZE, Param("func", ParamType.aggFunc, default="average"), X_FILES_FACTOR],
    window=_moving_window,
)
def moving_window(
    ctx: RequestContext,
    series_list: list[Series],
    window_size: int | float | str,
    func: str = "average",
    x_files_factor: float | None = None,
    *,
    widened: list[Series] | None = None,
) -> list[Series]:
    """``func`` over a moving window of the last ``windowSize`` points (or an interval like "5min").

    Each window ends at, and includes, its point. A window is missing when
    the share of non-missing points in it is below ``xFilesFactor``
    (default: the series'). Named ``moving<Func>``, e.g. ``movingMax(x,5)``.
    """
    return moving(series_list, window_size, func, x_files_factor, widened)


def _moving(name: str, func: str, doc: str):
    def body(
        ctx: RequestContext,
        series_list: list[Series],
        window_size: int | float | str,
        x_files_factor: float | None = None,
        *,
        widened: list[Series] | None = None,
    ) -> list[Series]:
        return moving(series_list, window_size, func, x_files_factor, widened)

    body.__doc__ = doc
    body.__name__ = body.__qualname__ = name
    return series_function(
        name, group="Calculate", params=[SERIES_LIST, WINDOW_SIZE, X_FILES_FACTOR], window=_moving_window
    )(body)


moving_average = _moving(
    "movingAverage",
    "average",
    """Mean of the last ``windowSize`` points (or of an interval like "5min"), current point included.

    Data from before the requested start is used, so the first values are
    complete. A window is missing when the share of non-missing points in it
    is below ``xFilesFactor`` (default: the series').""",
)
moving_sum = _moving("movingSum", "sum", """Sum of a moving window of ``windowSize`` points or an interval.""")
moving_min = _moving("movingMin", "min", """Minimum of a moving window of ``windowSize`` points or an interval.""")
moving_max = _moving("movingMax", "max", """Maximum of a moving window of ``windowSize`` points or an interval.""")
moving_median = _moving(
    "movingMedian", "median", """Median of a moving window of ``windowSize`` points or an interval."""
)


def _ema(values: np.ndarray, points: int, constant: float) -> np.ndarray:
    seed = values[:points]
    seed = seed[~np.isnan(seed)]
    ema = float(np.cumsum(seed)[-1] / len(seed)) if len(seed) else 0.0
    out = [round(ema, 6)]
    for value in values[points:].tolist():
        if value != value:
            out.append(None)
            continue
        ema = constant * value + (1 - constant) * ema
        out.append(round(ema, 6))
    return np.array(out, dtype=np.float64)


@series_function(
    "exponentialMovingAverage", group="Calculate", params=[SERIES_LIST, WINDOW_SIZE], window=_moving_window
)
def exponential_moving_average(
    ctx: RequestContext,
    series_list: list[Series],
    window_size: int | float | str,
    *,
    widened: list[Series] | None = None,
) -> list[Series]:
    """Exponential moving average: ``c * value + (1 - c) * previous``, ``c = 2 / (windowSize + 1)``.

    It starts from the plain mean of the window before the first point. For
    an interval ``windowSize`` counts its seconds in ``c``, as graphite does.
    Values are rounded to 6 decimals.
    """
    if not series_list:
        return []
    preview = preview_seconds(window_size, max(s.step for s in series_list))
    if isinstance(window_size, str):
        constant = 2.0 / (int(preview) + 1)
    else:
        constant = 2.0 / (int(window_size) + 1)
    result = []
    for s in series_list if widened is None else widened:
        if isinstance(window_size, str):
            name = f'exponentialMovingAverage({s.name},"{window_size}")'
            points = preview // s.step
        else:
            name = f"exponentialMovingAverage({s.name},{window_size})"
            points = int(window_size)
        result.append(
            s.copy(
                name=name,
                path_expression=name,
                start=s.start + preview,
                values=_ema(s.values, points, constant),
                tags={**s.tags, "exponentialMovingAverage": window_size},
            )
        )
    return result


@series_function("nPercentile", group="Calculate", params=[SERIES_LIST, Param("n", ParamType.float, required=True)])
def n_percentile(ctx: RequestContext, series_list: list[Series], n: float) -> list[Series]:
    """A line at the n-th percentile of each series' values (series without values are dropped)."""
    if not 0 < n <= 100:
        raise InputError(f"cannot call nPercentile n={n!r}: must be above 0 and at most 100")
    result = []
    for s in series_list:
        value = percentile(s.values, n)
        if value is None:
            continue
        name = f"nPercentile({s.name}, {n:g})"
        points = int((s.end - s.start) / s.step)
        result.append(
            s.copy(name=name, path_expression=name, values=np.full(points, value), tags={**s.tags, "nPercentile": n})
        )
    return result
