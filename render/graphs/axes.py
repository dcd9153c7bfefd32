"""Axis arithmetic for line graphs: y ranges, steps and labels; x grid and label times.

The rules follow graphite-web 1.1.10's ``glyph.py`` so a Carbyne graph picks
the same y range, the same label values and texts, and the same time grid:

* y: the data range (or yMin/yMax/yLimit) is covered by 4, 5 or 6 (yDivisors)
  equal steps of 1, 2 or 5 x 10^n (powers of two for ``yUnitSystem=binary``),
  choosing the step that wastes least room ("slop"); log axes label powers of
  the base.
* labels use the unit system's prefixes (``k``, ``M``, ``Ki``, ...).
* x: a table keyed by seconds per pixel picks grid and label spacing and a
  strftime format.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta, tzinfo

#: Values within this fraction of a step count as on the step (rounding noise).
EPSILON = 0.0001

UNIT_PREFIXES: dict[str, tuple[tuple[str, float], ...]] = {
    "si": (("P", 1000.0**5), ("T", 1000.0**4), ("G", 1000.0**3), ("M", 1000.0**2), ("k", 1000.0)),
    "binary": (
        ("Pi", 1024.0**5), ("Ti", 1024.0**4), ("Gi", 1024.0**3), ("Mi", 1024.0**2), ("Ki", 1024.0),
    ),
    "sec": (("Y", 31_536_000.0), ("M", 2_592_000.0), ("D", 86_400.0), ("H", 3600.0), ("m", 60.0)),
    "msec": (
        ("Y", 31_536_000_000.0), ("M", 2_592_000_000.0), ("D", 86_400_000.0),
        ("H", 3_600_000.0), ("m", 60_000.0), ("s", 1000.0),
    ),
    "none": (),
}  # fmt: skip


class AxisError(ValueError):
    """An axis that cannot be drawn (e.g. a log axis over values <= 0)."""


def scale_to_unit(value: float, step: float | None, system: str) -> tuple[float, str]:
    """``value`` divided by the largest prefix it (and ``step``) reaches, and that prefix."""
    for prefix, size in UNIT_PREFIXES[system]:
        if abs(value) >= size and (step is None or step >= size):
            scaled = value / size
            if scaled - math.floor(scaled) < 1e-11 and value > 1:
                scaled = float(math.floor(scaled))
            return scaled, prefix
    if value - math.floor(value) < 1e-11 and value > 1:
        value = float(math.floor(value))
    return value, ""


@dataclasses.dataclass(frozen=True)
class YAxis:
    """One y axis: the drawn range, label positions and texts, log base if any."""

    bottom: float
    top: float
    step: float | None
    label_values: tuple[float, ...]
    labels: tuple[str, ...]
    log_base: float | None = None

    @property
    def low(self) -> float:
        """The value at the bottom edge of the plot (lowest label, else bottom)."""
        return min(self.label_values) if self.label_values else self.bottom

    @property
    def high(self) -> float:
        """The value at the top edge of the plot (highest label, else top)."""
        return max(self.label_values) if self.label_values else self.top


def _limits(
    data_min: float,
    data_max: float,
    axis_min: float | None,
    axis_max: float | str | None,
    axis_limit: float | None,
) -> tuple[float, float, str, str, float | None]:
    """Apply yMin/yMax/yLimit: (min, max, min source, max source, remaining limit)."""
    low, high, low_src, high_src = data_min, data_max, "data", "data"
    if axis_min is not None:
        low, low_src = axis_min, "min"
    if axis_max == "max":
        high_src = "extremum"
    elif axis_max is not None:
        high, high_src = float(axis_max), "max"
    limit = axis_limit
    if limit is not None and limit < high:
        high, high_src, limit = limit, "limit", None
    if low < high:
        return low, high, low_src, high_src, limit
    min_fixed = low_src == "min"
    max_fixed = high_src in ("max", "limit")
    if min_fixed and max_fixed:
        raise AxisError(f"the {low_src} must be less than the {high_src}")
    if min_fixed:
        high = low + _delta(low)
    elif max_fixed:
        low = high - _delta(high)
    else:
        delta = _delta(max(abs(low), abs(high)))
        middle = (low + high) / 2.0
        low, high = middle - delta, middle + delta
    return low, high, low_src, high_src, limit


def _delta(x: float) -> float:
    return 1.0 if abs(x) < 1e-9 else 0.1 * abs(x)


def _candidate_steps(min_step: float, binary: bool) -> Iterator[float]:
    """Round steps >= min_step, increasing: 1/2/5 x 10^n, or 2^n for binary units."""
    base, mantissas = (2.0, (1.0,)) if binary else (10.0, (1.0, 2.0, 5.0))
    exponent = math.floor(math.log(min_step, base) - EPSILON)
    while True:
        multiplier = base**exponent
        for mantissa in mantissas:
            value = mantissa * multiplier
            if value >= min_step * (1.0 - EPSILON):
                yield value
        exponent += 1


def _slop(low: float, high: float, step: float, divisor: int) -> float | None:
    bottom = step * math.floor(low / step + EPSILON)
    top = bottom + step * divisor
    if top >= high - EPSILON * step:
        return max(top - high, low - bottom)
    return None


def choose_step(low: float, high: float, divisors: Sequence[int], binary: bool) -> float:
    """The round step whose 4-6 divisions cover [low, high] with the least slack."""
    span = high - low
    best_slop = best_step = None
    for step in _candidate_steps(span / max(divisors), binary):
        if best_slop is not None and step * min(divisors) >= 2 * best_slop + span:
            break
        for divisor in divisors:
            slop = _slop(low, high, step, divisor)
            if slop is not None and (best_slop is None or slop < best_slop):
                best_slop, best_step = slop, step
    assert best_step is not None
    return best_step


def _label(value: float, step: float | None, span: float, system: str) -> str:
    value, prefix = scale_to_unit(value, step, system)
    span_scaled, span_prefix = scale_to_unit(span, step, system)
    suffix = f" {prefix} " if prefix else " "
    if value < 0.1:
        return f"{value:g}{suffix}"
    if value < 1.0:
        return f"{value:.2f}{suffix}"
    if span_scaled > 3 or span_prefix != prefix:
        return f"{value:.1f}{suffix}"
    if span_scaled > 0.1:
        return f"{value:.2f}{suffix}"
    return f"{value:g}{suffix}"


def linear_axis(
    data_min: float,
    data_max: float,
    *,
    axis_min: float | None = None,
    axis_max: float | str | None = None,
    axis_limit: float | None = None,
    step: float | None = None,
    divisors: Sequence[int] = (4, 5, 6),
    unit_system: str = "si",
) -> YAxis:
    """A linear axis over the data range, honouring yMin/yMax/yLimit/yStep."""
    low, high, low_src, high_src, limit = _limits(
        data_min, data_max, axis_min, axis_max, axis_limit
    )
    if step is None:
        if (high - low) / max(divisors) == 0:
            # flat, or so narrow a step underflows to 0 (graphite fails with a math domain error)
            if low == 0 or high == 0:
                low, high = (-1.0, 0.0) if low < 0 else (0.0, 1.0)
            else:
                low, high = sorted((low * 0.9, high * 1.1))
        step = choose_step(low, high, divisors, unit_system == "binary")
    bottom = step * math.floor(low / step + EPSILON) if low_src == "data" else low
    if high_src == "data":
        top = step * math.ceil(high / step - EPSILON)
        if limit is not None and top > limit + EPSILON * step:
            top = limit
    else:
        top = high
    span = top - bottom
    if span == 0:
        top, span = top + 1, span + 1
    if span > 1000.0 * step:
        step = choose_step(low, high, divisors, unit_system == "binary")
    first = step * math.ceil(bottom / step - EPSILON)
    # graphite tests each value against the top; counting by one division instead rounds
    # differently far from 0 (1e12 with a step of 0.2), so the count only bounds the loop
    limit = top + EPSILON * step
    count = int(math.floor((limit - first) / step)) + 1
    values = tuple(v for v in (first + i * step for i in range(max(count, 0) + 2)) if v <= limit)
    labels = tuple(_label(v, step, span, unit_system) for v in values)
    return YAxis(bottom, top, step, values, labels)


def log_axis(
    data_min: float,
    data_max: float,
    base: float,
    *,
    axis_min: float | None = None,
    axis_max: float | str | None = None,
    axis_limit: float | None = None,
    unit_system: str = "si",
) -> YAxis:
    """A logarithmic axis from the power of ``base`` below the data to the one above."""
    low, high, *_ = _limits(data_min, data_max, axis_min, axis_max, axis_limit)
    if low <= 0:
        raise AxisError("a logarithmic scale needs values greater than zero")
    bottom = base ** math.floor(math.log(low, base))
    top = base ** math.ceil(math.log(high, base))
    if top == bottom:
        top *= base
    span = top - bottom
    values = []
    value = base ** math.ceil(math.log(bottom, base) - EPSILON)
    while value < top * (1.0 + EPSILON):
        values.append(value)
        value *= base
    labels = tuple(_label(v, None, span, unit_system) for v in values)
    return YAxis(bottom, top, None, tuple(values), labels, log_base=base)


# --- x axis -----------------------------------------------------------------------

SEC, MIN, HOUR, DAY = 1, 60, 3600, 86400
DATE_FORMAT = "%m/%d"


@dataclasses.dataclass(frozen=True)
class TimeScale:
    """Grid and label spacing for one seconds-per-pixel band (graphite's xAxisConfigs)."""

    seconds_per_pixel: float
    minor_unit: int
    minor_step: float
    major_unit: int
    major_step: float
    label_unit: int
    label_step: float
    label_format: str
    max_interval: float = math.inf


def _scale(spp, minor, minor_n, major, major_n, label, label_n, fmt, max_interval=math.inf):
    return TimeScale(spp, minor, minor_n, major, major_n, label, label_n, fmt, max_interval)


TIME_SCALES = (
    _scale(0.00, SEC, 5, MIN, 1, SEC, 5, "%H:%M:%S", 10 * MIN),
    _scale(0.07, SEC, 10, MIN, 1, SEC, 10, "%H:%M:%S", 20 * MIN),
    _scale(0.14, SEC, 15, MIN, 1, SEC, 15, "%H:%M:%S", 30 * MIN),
    _scale(0.27, SEC, 30, MIN, 2, MIN, 1, "%H:%M", 2 * HOUR),
    _scale(0.5, MIN, 1, MIN, 2, MIN, 1, "%H:%M", 2 * HOUR),
    _scale(1.2, MIN, 1, MIN, 4, MIN, 2, "%H:%M", 3 * HOUR),
    _scale(2, MIN, 1, MIN, 10, MIN, 5, "%H:%M", 6 * HOUR),
    _scale(5, MIN, 2, MIN, 10, MIN, 10, "%H:%M", 12 * HOUR),
    _scale(10, MIN, 5, MIN, 20, MIN, 20, "%H:%M", 1 * DAY),
    _scale(30, MIN, 10, HOUR, 1, HOUR, 1, "%H:%M", 2 * DAY),
    _scale(60, MIN, 30, HOUR, 2, HOUR, 2, "%H:%M", 2 * DAY),
    _scale(100, HOUR, 2, HOUR, 4, HOUR, 4, "%a %H:%M", 6 * DAY),
    _scale(255, HOUR, 6, HOUR, 12, HOUR, 12, DATE_FORMAT + " %H:%M", 10 * DAY),
    _scale(600, HOUR, 6, DAY, 1, DAY, 1, DATE_FORMAT, 14 * DAY),
    _scale(1000, HOUR, 12, DAY, 1, DAY, 1, DATE_FORMAT, 365 * DAY),
    _scale(2000, DAY, 1, DAY, 2, DAY, 2, DATE_FORMAT, 365 * DAY),
    _scale(4000, DAY, 2, DAY, 4, DAY, 4, DATE_FORMAT, 365 * DAY),
    _scale(8000, DAY, 3.5, DAY, 7, DAY, 7, DATE_FORMAT, 365 * DAY),
    _scale(16000, DAY, 7, DAY, 14, DAY, 14, DATE_FORMAT, 365 * DAY),
    _scale(32000, DAY, 15, DAY, 30, DAY, 30, DATE_FORMAT, 365 * DAY),
    _scale(64000, DAY, 30, DAY, 60, DAY, 60, DATE_FORMAT + " %Y"),
    _scale(100000, DAY, 60, DAY, 120, DAY, 120, DATE_FORMAT + " %Y"),
    _scale(120000, DAY, 120, DAY, 240, DAY, 240, DATE_FORMAT + " %Y"),
)


def time_scale(time_range: float, graph_width: float) -> TimeScale:
    """The finest scale whose spacing suits this many seconds per pixel."""
    seconds_per_pixel = time_range / graph_width
    fitting = [
        s
        for s in TIME_SCALES
        if s.seconds_per_pixel <= seconds_per_pixel and s.max_interval >= time_range
    ]
    return fitting[-1] if fitting else TIME_SCALES[-1]


def _first_tick(start: datetime, unit: int, step: float) -> datetime:
    if unit == SEC:
        return start.replace(microsecond=0, second=start.second - start.second % int(step))
    if unit == MIN:
        return start.replace(
            microsecond=0, second=0, minute=start.minute - start.minute % int(step)
        )
    if unit == HOUR:
        return start.replace(
            microsecond=0, second=0, minute=0, hour=start.hour - start.hour % int(step)
        )
    return start.replace(microsecond=0, second=0, minute=0, hour=0)


def tick_times(start: int, end: int, tz: tzinfo, unit: int, step: float) -> list[datetime]:
    """Ticks every ``step`` ``unit``s in ``tz`` from the first at or after start, before end.

    Ticks start on a round wall-clock time; sub-day steps then advance in real
    seconds (so a DST change neither repeats nor skips a tick), day steps from
    local midnight to local midnight.
    """
    start_dt = datetime.fromtimestamp(start, tz)
    seconds = unit * step
    tick = _first_tick(start_dt, unit, step)
    ticks = []
    if unit >= DAY:
        while tick.timestamp() < start:
            tick += timedelta(seconds=seconds)
        while tick.timestamp() < end:
            ticks.append(tick)
            tick += timedelta(seconds=seconds)
        return ticks
    moment = tick.timestamp()
    while moment < start:
        moment += seconds
    while moment < end:
        ticks.append(datetime.fromtimestamp(moment, tz))
        moment += seconds
    return ticks
