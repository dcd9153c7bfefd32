"""Calculate: moving windows and derived lines (graphite's "Calculate" group).

The moving-window functions look back before the requested start, so they
declare a window: the evaluator fetches their first argument that much
earlier and hands it over as ``widened``; the output then starts where the
request does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from render.functions.aggregation import (
    canonical_agg,
    check_percent,
    percentile,
    percentile_is_int,
    reduce_axis,
    reduce_values,
    reduced_ints,
    request_x_files_factor,
)
from render.functions.params import InputError, Param, ParamType, date_seconds, interval_seconds
from render.functions.registry import RequestContext, series_function
from render.functions.special import constant_line
from render.series import Series, whole_ints

SERIES_LIST = Param("seriesList", ParamType.seriesList, required=True)
WINDOW_SUGGESTIONS = (5, 7, 10, "1min", "5min", "10min", "30min", "1hour")
WINDOW_SIZE = Param("windowSize", ParamType.intOrInterval, required=True, suggestions=WINDOW_SUGGESTIONS)
X_FILES_FACTOR = Param("xFilesFactor", ParamType.float)
#: Series computed together: their temporaries stay small enough to be reused, not page-faulted in.
MOVING_ROWS = 128
#: Window values a reduction that materialises its windows (median, stddev, ...) holds at once:
#: ``movingMedian(x,"1d")`` over a week of 10 s data would otherwise copy 60480 x 8640 floats.
WINDOW_CELLS = 1 << 22


def preview_seconds(window_size: int | float | str, step: int) -> int:
    """How far before the request a window of ``window_size`` reaches.

    An interval string gives its length; a point count, that many of the
    largest step among the series.
    """
    if isinstance(window_size, str):
        return abs(interval_seconds(window_size))
    if window_size < 0:
        # graphite-web answers a negative point count with nulls only (one more than the series
        # has values, read over a window starting later): nothing worth copying
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
    Sums start from zero and add the non-missing values one offset at a time,
    as graphite's ``sum`` does, so the floats are its own (``-0.0`` alone
    sums to ``0.0``). Work happens in place: on this scale every temporary is
    a fresh multi-megabyte allocation, paid for in page faults.
    """
    rows, n = matrix.shape
    count = max(n - points, 0)
    if count == 0 or points <= 0:
        return np.full((rows, count), np.nan)
    body = matrix[:, 1:]
    valid = ~np.isnan(body)
    non_null = np.zeros((rows, count), dtype=np.int32)
    for k in range(points):
        np.add(non_null, valid[:, k : k + count], out=non_null)
    if func in ("sum", "average", "avg_zero"):
        reduced = np.zeros((rows, count))
        for k in range(points):
            np.add(reduced, body[:, k : k + count], out=reduced, where=valid[:, k : k + count])
        if func != "sum":
            with np.errstate(invalid="ignore", divide="ignore"):
                np.divide(reduced, non_null, out=reduced)
    elif func in ("min", "max"):
        # Python's min/max: a later value replaces only a strictly smaller/larger one, so the first
        # of equal values stays (-0.0 before 0.0 stays -0.0)
        beats = np.less if func == "min" else np.greater
        reduced = body[:, :count].copy()
        for k in range(1, points):
            later = body[:, k : k + count]
            np.copyto(reduced, later, where=beats(later, reduced) | np.isnan(reduced))
    elif func == "count":
        reduced = non_null.astype(np.float64)
    else:
        # reduce_axis copies the windows it is given (masks, sorted values): a block at a time
        reduced = np.empty((rows, count))
        block = max(1, WINDOW_CELLS // (rows * points))
        for first in range(0, count, block):
            last = min(count, first + block)
            windows = sliding_window_view(body[:, first : last + points - 1], points, axis=1)
            if func == "multiply":  # graphite multiplies only the non-missing values
                windows = np.where(np.isnan(windows), 1.0, windows)
            reduced[:, first:last] = reduce_axis(windows, func, axis=2)
    missing = non_null <= 0
    if not (x_files_factor <= 0).all():  # otherwise every window with a value has enough
        missing |= ~(non_null / points >= x_files_factor[:, np.newaxis])
    np.copyto(reduced, np.nan, where=missing)
    return reduced


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
    for (_, step), group in groups.items():
        points = preview // step if isinstance(window_size, str) else int(window_size)
        for first in range(0, len(group), MOVING_ROWS):
            members = group[first : first + MOVING_ROWS]
            matrix = np.stack([source[i].values for i in members])
            xff = np.array([source[i].x_files_factor if x_files_factor is None else x_files_factor
                            for i in members], dtype=np.float64)
            windowed = _window_values(matrix, points, canonical, xff)
            windowed.flags.writeable = False  # its rows become the series' values without a copy
            for i, row in zip(members, windowed, strict=True):
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
                int_points=_window_ints(s, len(values[index]), canonical),
                options={},  # graphite's copy() drops graph options
            )
        )
    return result


def _window_ints(series: Series, count: int, func: str) -> np.ndarray | None:
    """Which of ``series``' ``count`` moving-window results graphite holds as ints (see ``reduced_ints``)."""
    if count == 0 or (series.int_points is None and func != "count"):
        return None
    points = len(series.values) - count
    ints = np.zeros(len(series.values), dtype=bool) if series.int_points is None else series.int_points
    windows = sliding_window_view(series.values[1:], points)
    flags = sliding_window_view(ints[1:], points)
    out = np.empty(count, dtype=bool)
    block = max(1, WINDOW_CELLS // max(points, 1))  # reduced_ints copies its windows too
    for first in range(0, count, block):
        part = reduced_ints(windows[first : first + block], flags[first : first + block], func, axis=1)
        if part is None:  # decided by func and the series alone: the same for every block
            return None
        out[first : first + block] = part
    return out


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


def _ema(values: np.ndarray, points: int, constant: float) -> tuple[np.ndarray, bool]:
    """The rounded averages, and whether the first is graphite's int 0 (``safeAvg(...) or 0``)."""
    seed = values[:points]
    seed = seed[~np.isnan(seed)]
    ema = float(np.cumsum(seed)[-1] / len(seed)) if len(seed) else 0.0
    seeded_with_int = ema == 0  # a tiny mean that rounds to 0.0 stays a float
    if seeded_with_int:
        ema = 0.0  # graphite's int 0, also for a -0.0 mean
    out = [round(ema, 6)]
    for value in values[points:].tolist():
        if value != value:
            out.append(None)
            continue
        ema = constant * value + (1 - constant) * ema
        out.append(round(ema, 6))
    return np.array(out, dtype=np.float64), seeded_with_int


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
                values=(ema := _ema(s.values, points, constant))[0],
                tags={**s.tags, "exponentialMovingAverage": window_size},
                # graphite seeds with ``safeAvg(...) or 0``: an empty or zero mean starts from the int 0
                int_points=np.arange(len(ema[0])) == 0 if ema[1] else None,
                options={},  # graphite's copy() drops graph options
            )
        )
    return result


@series_function("nPercentile", group="Calculate", params=[SERIES_LIST, Param("n", ParamType.float, required=True)])
def n_percentile(ctx: RequestContext, series_list: list[Series], n: float) -> list[Series]:
    """A line at the n-th percentile of each series' values (series without values are dropped)."""
    check_percent("nPercentile", n)
    result = []
    for s in series_list:
        value = percentile(s.values, n)
        if value is None:
            continue
        name = f"nPercentile({s.name}, {n:g})"
        points = int((s.end - s.start) / s.step)
        result.append(
            s.copy(name=name, path_expression=name, values=np.full(points, value), tags={**s.tags, "nPercentile": n},
                   int_points=np.full(points, percentile_is_int(s.values, s.int_points, n)),  # one of its own
                   options={})  # graphite's copy() drops graph options
        )
    return result


# --- aggregateLine, identity, stdev -------------------------------------------------------


@series_function(
    "aggregateLine",
    group="Calculate",
    params=[SERIES_LIST, Param("func", ParamType.aggFunc, default="average"),
            Param("keepStep", ParamType.boolean, default=False)],
)
def aggregate_line(
    ctx: RequestContext, series_list: list[Series], func: str = "average", keep_step: bool = False
) -> list[Series]:
    """A horizontal line at ``func`` of each series (average by default), e.g. ``aggregateLine(x, 6.5)``.

    The line spans the request with three points, or with ``keepStep`` has
    the series' own points.
    """
    canonical = canonical_agg(func)
    result = []
    for s in series_list:
        value = reduce_values(s.values, canonical)
        ints = reduced_ints(s.values, s.int_points, canonical)
        if ints is not None and ints and value is not None:  # graphite counts with len(); int sums stay ints
            value = int(value)
        name = f"aggregateLine({s.name}, {'None' if value is None else format(value, 'g')})"
        if keep_step:
            line = s.copy(name=name, path_expression=name, values=np.full(len(s), np.nan if value is None else value),
                          options={}, int_points=np.full(len(s), isinstance(value, int)))
        else:
            line = constant_line(ctx, value, "aggregateLine").copy(name=name, path_expression=name)
        result.append(line)
    return result


@series_function("identity", group="Calculate", params=[Param("name", ParamType.string, required=True)])
def identity(ctx: RequestContext, name: str) -> list[Series]:
    """A series called ``name`` whose value is its timestamp, one point a minute.

    Compare it with a series whose values are timestamps to show an age.
    """
    values = np.arange(ctx.start, ctx.end, 60, dtype=np.float64)
    return [Series(name, ctx.start, ctx.end, 60, values, path_expression=f'identity("{name}")',
                   x_files_factor=request_x_files_factor(ctx), int_points=whole_ints(values))]


def _rolling_stdev(values: list[float | None], points: int, tolerance: float) -> list[float | None]:
    """graphite's running population standard deviation over the last ``points`` values.

    Running sums are updated point by point in graphite's order, so results
    (including its rounding) are the same.
    """
    out: list[float | None] = []
    valid = 0
    total = 0.0
    squares = 0.0
    for index, new in enumerate(values):
        dropped = values[index - points] if index >= points else None
        if dropped is not None:
            valid -= 1
            total -= dropped
            squares -= dropped**2
        if new is not None:
            valid += 1
            total += new
            squares += new**2
        if valid > 0 and valid / points >= tolerance:
            spread = valid * squares - total**2
            out.append(math.sqrt(spread) / valid if spread >= 0 else None)
        else:
            out.append(None)
    return out


@series_function(
    "stdev",
    group="Calculate",
    params=[SERIES_LIST, Param("points", ParamType.integer, required=True),
            Param("windowTolerance", ParamType.float, default=0.1)],
)
def stdev(ctx: RequestContext, series_list: list[Series], points: int, window_tolerance: float = 0.1) -> list[Series]:
    """Standard deviation of the last ``points`` values at each point.

    A point is missing when the share of values in its window is below
    ``windowTolerance`` (0.1: up to 90% may be missing). The window does not
    reach before the requested start.
    """
    # graphite-web divides by points (0: ZeroDivisionError at the first value) and a negative
    # window reads values ahead of the point (IndexError near the end): refused.
    if points <= 0:
        raise InputError(f"cannot call stdev points={points!r}: must be positive")
    result = []
    for s in series_list:
        name = f"stdev({s.name},{int(points)})"
        values = _rolling_stdev(s.to_list(), points, window_tolerance)
        result.append(
            s.copy(name=name, path_expression=name, values=values, tags={**s.tags, "stdev": points}, options={})
        )
    return result


# --- linearRegression ----------------------------------------------------------------------


def _source_range(arguments: Mapping[str, Any], ctx: RequestContext) -> tuple[int, int]:
    start, end = arguments["startSourceAt"], arguments["endSourceAt"]
    return (
        ctx.start if start is None else date_seconds("linearRegression", "startSourceAt", start, ctx.tz, ctx.now),
        ctx.end if end is None else date_seconds("linearRegression", "endSourceAt", end, ctx.tz, ctx.now),
    )


def _regression_window(arguments: Mapping[str, Any], ctx: RequestContext, step: int) -> tuple[int, int]:
    start, end = _source_range(arguments, ctx)
    return ctx.start - start, end - ctx.end


def regression_line(source: Series) -> tuple[float, float] | None:
    """graphite's least-squares ``(factor, offset)`` of ``source``'s values over time; None if undefined."""
    points = [(i, v) for i, v in enumerate(source.to_list()) if v is not None]
    n = len(points)
    sum_i = sum(i for i, _ in points)
    sum_v = sum(v for _, v in points)
    sum_ii = sum(i * i for i, _ in points)
    sum_iv = sum(i * v for i, v in points)
    denominator = float(n * sum_ii - sum_i * sum_i)
    if denominator == 0:
        return None
    factor = (n * sum_iv - sum_i * sum_v) / denominator / source.step
    offset = (sum_ii * sum_v - sum_iv * sum_i) / denominator - factor * source.start
    return factor, offset


@series_function(
    "linearRegression",
    group="Calculate",
    params=[SERIES_LIST, Param("startSourceAt", ParamType.date), Param("endSourceAt", ParamType.date)],
    window=_regression_window,
)
def linear_regression(
    ctx: RequestContext,
    series_list: list[Series],
    start_source_at: int | float | str | None = None,
    end_source_at: int | float | str | None = None,
    *,
    widened: list[Series] | None = None,
) -> list[Series]:
    """The least-squares line through each series, fitted on ``[startSourceAt, endSourceAt]``.

    The source range defaults to the requested one (times as in
    ``from``/``until``); the line is drawn over the requested range. Series
    with fewer than two values give no line.
    """
    start, end = _source_range({"startSourceAt": start_source_at, "endSourceAt": end_source_at}, ctx)
    sources = series_list if widened is None else widened
    result = []
    for source, s in zip(sources, series_list, strict=False):
        line = regression_line(source)
        if line is None:
            continue
        factor, offset = line
        name = f"linearRegression({s.name}, {start}, {end})"
        times = s.start + np.arange(len(s.values), dtype=np.int64) * s.step
        result.append(
            s.copy(name=name, path_expression=name, values=offset + times * factor,
                   tags={**s.tags, "linearRegressions": f"{start}, {end}"}, options={},
                   consolidation_func="average")  # a new TimeSeries in graphite: default consolidation
        )
    return result


# --- Holt-Winters --------------------------------------------------------------------------

HW_ALPHA = HW_GAMMA = 0.1
HW_BETA = 0.0035
BOOTSTRAP = Param("bootstrapInterval", ParamType.interval, default="7d", suggestions=("7d", "30d"))
SEASONALITY = Param("seasonality", ParamType.interval, default="1d", suggestions=("1d", "7d"))
DELTA = Param("delta", ParamType.integer, default=3)


def holt_winters(values: list[float | None], season_length: int) -> tuple[list[float | None], list[float]]:
    """graphite's ``holtWintersAnalysis``: one-step-ahead predictions and seasonal deviations.

    Triple exponential smoothing with α = γ = 0.1, β = 0.0035 and a season
    of ``season_length`` points. A missing value yields the pending
    prediction, resets the slope and season terms to 0 and leaves the next
    prediction missing.
    """
    intercepts: list[float | None] = []
    slopes: list[float] = []
    seasonals: list[float] = []
    predictions: list[float | None] = []
    deviations: list[float] = []

    def season_ago(series: list[float], i: int) -> float:
        return series[i - season_length] if i >= season_length else 0

    next_prediction: float | None = None
    for i, actual in enumerate(values):
        if actual is None:
            intercepts.append(None)
            slopes.append(0)
            seasonals.append(0)
            predictions.append(next_prediction)
            deviations.append(0)
            next_prediction = None
            continue
        if i == 0:
            last_intercept, last_slope, prediction = actual, 0, actual
        else:
            last_intercept = intercepts[-1] if intercepts[-1] is not None else actual
            last_slope = slopes[-1]
            prediction = next_prediction
        last_seasonal = season_ago(seasonals, i)
        next_last_seasonal = season_ago(seasonals, i + 1)
        last_deviation = season_ago(deviations, i)
        intercept = HW_ALPHA * (actual - last_seasonal) + (1 - HW_ALPHA) * (last_intercept + last_slope)
        slope = HW_BETA * (intercept - last_intercept) + (1 - HW_BETA) * last_slope
        seasonal = HW_GAMMA * (actual - intercept) + (1 - HW_GAMMA) * last_seasonal
        next_prediction = intercept + slope + next_last_seasonal
        deviation = HW_GAMMA * math.fabs(actual - (prediction or 0)) + (1 - HW_GAMMA) * last_deviation
        intercepts.append(intercept)
        slopes.append(slope)
        seasonals.append(seasonal)
        predictions.append(prediction)
        deviations.append(deviation)
    return predictions, deviations


def _bootstrap_window(arguments: Mapping[str, Any], ctx: RequestContext, step: int) -> tuple[int, int]:
    return interval_seconds(arguments["bootstrapInterval"]), 0


class _Forecast:
    """One source series' Holt-Winters forecast and deviation over the requested range."""

    def __init__(self, source: Series, bootstrap: int, seasonality: str, function: str):
        season_length = interval_seconds(seasonality) // source.step
        if season_length < 2:  # graphite-web fails with an IndexError on shorter seasons
            raise InputError(
                f"cannot call {function} seasonality={seasonality!r}: must be at least two steps of {source.name}"
            )
        predictions, deviations = holt_winters(source.to_list(), season_length)
        skip = bootstrap // source.step
        self.source = source
        self.start = source.start + bootstrap
        self.predictions = np.array(predictions[skip:], dtype=np.float64)
        self.deviations = np.array(deviations[skip:], dtype=np.float64)
        # the first prediction is the first value itself, an int where graphite's was one
        self.prediction_ints = None
        if skip == 0 and len(self.predictions) and source.int_points is not None and source.int_points[0]:
            self.prediction_ints = np.zeros(len(self.predictions), dtype=bool)
            self.prediction_ints[0] = not np.isnan(self.predictions[0])
        # graphite adds both tags to the source series' own tags, which every result then shares
        self.tags = {**source.tags, "holtWintersForecast": 1, "holtWintersDeviation": 1}

    def series(self, name: str, values: np.ndarray, tags: Mapping[str, Any], path_expression: str,
               int_points: np.ndarray | None = None) -> Series:
        s = self.source
        return Series(name, self.start, s.end, s.step, values, tags=tags, path_expression=path_expression,
                      x_files_factor=s.x_files_factor, int_points=int_points)

    def bands(self, delta: int) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper): the forecast ∓ ``delta`` deviations; missing where the forecast is."""
        scaled = delta * self.deviations
        return self.predictions - scaled, self.predictions + scaled


def _forecasts(
    function: str, series_list: list[Series], bootstrap_interval: str, seasonality: str,
    widened: list[Series] | None,
) -> list[_Forecast]:
    """Forecasts of the bootstrapped series (without ``widened``, of the series alone, with no bootstrap)."""
    bootstrap = interval_seconds(bootstrap_interval) if widened is not None else 0
    return [_Forecast(s, bootstrap, seasonality, function) for s in (series_list if widened is None else widened)]


@series_function(
    "holtWintersForecast",
    group="Calculate",
    params=[SERIES_LIST, BOOTSTRAP, SEASONALITY],
    window=_bootstrap_window,
    widens_empty=True,  # graphite forecasts every series of its re-evaluation
)
def holt_winters_forecast(
    ctx: RequestContext,
    series_list: list[Series],
    bootstrap_interval: str = "7d",
    seasonality: str = "1d",
    *,
    widened: list[Series] | None = None,
) -> list[Series]:
    """Holt-Winters forecast of each series, trained on ``bootstrapInterval`` (7d) of data before the range.

    ``seasonality`` (1d) is the length of the repeating pattern.
    """
    result = []
    for forecast in _forecasts("holtWintersForecast", series_list, bootstrap_interval, seasonality, widened):
        name = f"holtWintersForecast({forecast.source.name})"
        result.append(forecast.series(name, forecast.predictions, forecast.tags, name, forecast.prediction_ints))
    return result


def _bands(
    function: str, series_list: list[Series], delta: int, bootstrap_interval: str, seasonality: str,
    widened: list[Series] | None,
) -> list[Series]:
    result = []
    for forecast in _forecasts(function, series_list, bootstrap_interval, seasonality, widened):
        lower, upper = forecast.bands(delta)
        tags = {**forecast.tags, "holtWintersConfidenceUpper": 1, "holtWintersConfidenceLower": 1}
        name = forecast.source.name
        pattern = forecast.source.path_expression
        result.append(forecast.series(f"holtWintersConfidenceLower({name})", lower, tags, pattern))
        result.append(forecast.series(f"holtWintersConfidenceUpper({name})", upper, tags, pattern))
    return result


@series_function(
    "holtWintersConfidenceBands",
    group="Calculate",
    params=[SERIES_LIST, DELTA, BOOTSTRAP, SEASONALITY],
    window=_bootstrap_window,
    widens_empty=True,
)
def holt_winters_confidence_bands(
    ctx: RequestContext,
    series_list: list[Series],
    delta: int = 3,
    bootstrap_interval: str = "7d",
    seasonality: str = "1d",
    *,
    widened: list[Series] | None = None,
) -> list[Series]:
    """The Holt-Winters forecast ± ``delta`` times its seasonal deviation: a lower and an upper band per series."""
    return _bands("holtWintersConfidenceBands", series_list, delta, bootstrap_interval, seasonality, widened)


def _padded(values: np.ndarray, length: int) -> np.ndarray:
    out = np.full(length, np.nan)
    out[: min(length, len(values))] = values[:length]
    return out


@series_function(
    "holtWintersAberration",
    group="Calculate",
    params=[SERIES_LIST, DELTA, BOOTSTRAP, SEASONALITY],
    window=_bootstrap_window,
)
def holt_winters_aberration(
    ctx: RequestContext,
    series_list: list[Series],
    delta: int = 3,
    bootstrap_interval: str = "7d",
    seasonality: str = "1d",
    *,
    widened: list[Series] | None = None,
) -> list[Series]:
    """How far each value lies outside its Holt-Winters confidence bands (0 inside them or when missing)."""
    bands = {
        s.name: s
        for s in _bands("holtWintersAberration", series_list, delta, bootstrap_interval, seasonality, widened)
    }
    result = []
    for s in series_list:
        lower_band = bands.get(f"holtWintersConfidenceLower({s.name})")
        upper_band = bands.get(f"holtWintersConfidenceUpper({s.name})")
        if lower_band is None or upper_band is None:
            raise InputError(f"cannot call holtWintersAberration seriesList={s.name!r}: no bootstrap data")
        lower = _padded(lower_band.values, len(s))
        upper = _padded(upper_band.values, len(s))
        values = np.where(s.values > upper, s.values - upper, np.where(s.values < lower, s.values - lower, 0.0))
        inside = ~(s.values > upper) & ~(s.values < lower)  # graphite appends the int 0 there
        name = f"holtWintersAberration({s.name})"
        result.append(Series(name, s.start, s.end, s.step, values, tags={**s.tags, "holtWintersAberration": 1},
                             x_files_factor=s.x_files_factor, int_points=inside))
    return result


@series_function(
    "holtWintersConfidenceArea",
    group="Calculate",
    params=[SERIES_LIST, DELTA, BOOTSTRAP, SEASONALITY],
    window=_bootstrap_window,
    widens_empty=True,
)
def holt_winters_confidence_area(
    ctx: RequestContext,
    series_list: list[Series],
    delta: int = 3,
    bootstrap_interval: str = "7d",
    seasonality: str = "1d",
    *,
    widened: list[Series] | None = None,
) -> list[Series]:
    """The area between the Holt-Winters confidence bands of exactly one series (draw with areaMode=stacked)."""
    bands = _bands("holtWintersConfidenceArea", series_list, delta, bootstrap_interval, seasonality, widened)
    if len(bands) != 2:
        raise InputError(
            f"cannot call holtWintersConfidenceArea seriesList={len(bands) // 2} series: must be exactly 1 series"
        )
    lower, upper = bands
    name = f"areaBetween({upper.path_expression})".replace("areaBetween", "holtWintersConfidenceArea")
    tags = {**upper.tags, "holtWintersConfidenceArea": 1}
    return [
        lower.copy(name=name, path_expression=name, tags=tags, options={"stacked": True, "invisible": True}),
        upper.copy(name=name, path_expression=name, tags=tags, options={"stacked": True}),
    ]
