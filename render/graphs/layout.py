"""Line-graph layout: series and options in, a :class:`Scene` of primitives out.

The steps and their order are graphite-web 1.1.10's ``LineGraph.drawGraph``,
because each step takes room from the plot area the next one sees: title on
top, vertical titles at the sides, legend below, room for the time labels,
then the y labels (whose width depends on the y range, which depends on how
many points fit the width, so that loop runs until the area settles), then
grid, then the series.

Per-series graph options (``Series.options``), as graphite's graph functions
set them: ``color`` (colour name or hex), ``lineWidth``, ``dashed`` (dash
length), ``stacked`` (fill down to the previous stacked series or zero),
``secondYAxis``, ``alpha``, ``drawAsInfinite`` (a positive value is a vertical
line across the plot: deploy markers) and ``invisible``. An ``areaBetween``
pair is graphite's: the lower series ``stacked`` + ``invisible``, the upper
``stacked`` (an ``areaBetween`` option on both does the same); the band is
filled between them and, unlike graphite, ``areaMode=stacked`` does not pile
the upper series onto the lower one.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence
from datetime import tzinfo
from typing import Any
from urllib.parse import unquote_plus

import numpy as np

from render.graphs import axes
from render.graphs.colors import (
    LEGEND_BOX_BORDER,
    NO_DATA_COLOR,
    RGBA,
    parse_color,
    to_hex,
    with_alpha,
)
from render.graphs.fonts import Typeface, printable, title_size, typeface
from render.graphs.options import GraphOptionError, GraphOptions
from render.graphs.scene import Area, Box, Fill, Item, Polyline, Scene, Segments, Text
from render.series import Series, consolidate_values

LEGEND_PADDING = 5
MAJOR_GRID_WIDTH = 0.4
MINOR_GRID_WIDTH = 0.3
X_MINOR_GRID_WIDTH = 0.25
X_MAJOR_GRID_WIDTH = 0.33
BORDER_WIDTH = 0.5
#: y is clamped into this band so +-inf values draw as lines off the edge, not errors.
FAR_OFF = 1e6


@dataclasses.dataclass
class _Trace:
    """One series as it will be drawn (mutable while the layout is worked out)."""

    series: Series
    color: RGBA
    line_width: float
    dash: float | None
    alpha: float
    right_axis: bool
    infinite: bool
    filled: bool
    invisible: bool
    between: bool
    values: np.ndarray = None  # type: ignore[assignment]
    x_step: float = 0.0
    points_per_pixel: int = 1


def _series_color(series: Series) -> RGBA | None:
    raw = series.options.get("color")
    if raw is None:
        return None
    if isinstance(raw, tuple):
        return raw
    try:
        return parse_color(str(raw))
    except ValueError as error:
        raise GraphOptionError("color", raw, f"{error} (series {series.name})") from None


def _number_option(series: Series, key: str, default: float | None) -> float | None:
    raw = series.options.get(key)
    if raw is None or raw is False:
        return default
    if raw is True:
        return default
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise GraphOptionError(key, raw, f"not a number (series {series.name})") from None
    if not math.isfinite(value) or value < 0:
        raise GraphOptionError(key, raw, f"must be a finite number >= 0 (series {series.name})")
    return value


def _dash_option(series: Series) -> float | None:
    raw = series.options.get("dashed")
    if raw is None or raw is False:
        return None
    if raw is True:
        return 5.0
    return _number_option(series, "dashed", None) or None


def _traces(series_list: Sequence[Series], options: GraphOptions, two_axes: bool) -> list[_Trace]:
    """Colours and per-series styles, in graphite's order of precedence."""
    palette = itertools.cycle(options.color_list)
    traces = []
    previous_between = False
    for series in series_list:
        right = bool(series.options.get("secondYAxis"))
        color = _series_color(series)
        width = _number_option(series, "lineWidth", None)
        dash = _dash_option(series)
        if two_axes:
            side_width = options.right_width if right else options.left_width
            side_dash = options.right_dashed if right else options.left_dashed
            side_color = options.right_color if right else options.left_color
            width = side_width if side_width is not None else width
            dash = side_dash if side_dash is not None else dash
            color = side_color if side_color is not None else color
        if color is None:
            color = next(palette)
        between_option = bool(series.options.get("areaBetween"))
        lower = between_option and not previous_between
        previous_between = between_option and lower
        invisible = bool(series.options.get("invisible")) or lower
        traces.append(
            _Trace(
                series=series,
                color=color,
                line_width=options.line_width if width is None else width,
                dash=dash,
                alpha=_number_option(series, "alpha", 1.0),
                right_axis=right,
                infinite=bool(series.options.get("drawAsInfinite")),
                filled=bool(series.options.get("stacked")) or between_option,
                invisible=invisible,
                between=between_option or invisible or "areaBetween" in series.tags,
            )
        )
    return traces


def _runs(valid: np.ndarray) -> list[tuple[int, int]]:
    """``(start, stop)`` of each stretch of True."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], valid.view(np.int8), [0]))))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def _group_runs(
    runs: list[tuple[int, int]], line_mode: str, connected_limit: int | None
) -> list[list[tuple[int, int]]]:
    """Runs drawn as one unbroken path: in ``connected`` mode, across gaps up to the limit."""
    if line_mode != "connected":
        return [[run] for run in runs]
    limit = math.inf if connected_limit is None else connected_limit
    groups: list[list[tuple[int, int]]] = []
    for run in runs:
        if groups and run[0] - groups[-1][-1][1] <= limit:
            groups[-1].append(run)
        else:
            groups.append([run])
    return groups


def _path(
    group: list[tuple[int, int]], xs: np.ndarray, ys: np.ndarray, line_mode: str, x_step: float
) -> tuple[np.ndarray, np.ndarray]:
    """One unbroken path through ``group``'s points, graphite style.

    Staircase holds each value for one step; slope and connected join the
    points and, where a gap follows, run flat to the gap's first slot (a
    quirk of graphite's path building kept so graphs look the same).
    """
    n = len(xs)
    px: list[np.ndarray] = []
    py: list[np.ndarray] = []
    for start, stop in group:
        if line_mode == "staircase":
            px.append(np.column_stack((xs[start:stop], xs[start:stop] + x_step)).ravel())
            py.append(np.repeat(ys[start:stop], 2))
        else:
            px.append(xs[start:stop])
            py.append(ys[start:stop])
            if stop < n:
                px.append(xs[stop : stop + 1])
                py.append(ys[stop - 1 : stop])
    return np.concatenate(px), np.concatenate(py)


class _Layout:
    """Works out one graph; state lives only for one call of :func:`layout_graph`."""

    def __init__(self, series_list: Sequence[Series], options: GraphOptions, tz: tzinfo) -> None:
        self.options = options
        self.tz = tz
        self.items: list[Item] = []
        self.face = typeface(options)
        self.title_face = typeface(options, title_size(options))
        margin = options.margin
        self.graph_only = options.graph_only
        if self.graph_only:
            margin = 0
            self.area = [0.0, 0.0, float(options.width), float(options.height)]
        else:
            self.area = [
                margin + 10.0,
                float(margin),
                float(options.width - margin),
                float(options.height - margin),
            ]
        self.margin = margin
        self.two_axes = any(s.options.get("secondYAxis") for s in series_list)
        self.axis_side = "left" if self.two_axes or self.graph_only else options.y_axis_side
        self.hide_axes = options.hide_axes or self.graph_only
        self.hide_grid = options.hide_grid or self.hide_axes
        self.line_mode = options.line_mode
        if self.line_mode == "slope" and any(len(s) == 1 for s in series_list):
            self.line_mode = "staircase"
        self.traces = _traces(series_list, options, self.two_axes)
        self.start_time = min(s.start for s in series_list)
        if self.line_mode == "staircase":
            self.end_time = max(s.end for s in series_list)
        else:
            self.end_time = max(s.end - s.step for s in series_list)
        self.time_range = max(self.end_time - self.start_time, 1)
        self.y_axes: dict[str, axes.YAxis] = {}
        self.widths: dict[tuple[float, str], float] = {}
        self.label_widths: dict[str, float] = {}

    # --- text around the plot -----------------------------------------------------

    def width(self, face: Typeface, text: str) -> float:
        """Measured text width, remembered for this graph (y labels are measured repeatedly)."""
        key = (face.size, text)
        if key not in self.widths:
            self.widths[key] = face.width(text)
        return self.widths[key]

    def _label(self, text: str, x: float, baseline: float, face: Typeface, **kw) -> Text:
        text = printable(text)
        return Text(text, x, baseline, face, self.options.foreground, self.width(face, text), **kw)

    def _text(self, text: str, x: float, top: float, face: Typeface, **kw) -> None:
        """Text whose top (graphite's valign=top) is at ``top``."""
        self.items.append(self._label(text, x, top + face.max_ascent, face, **kw))

    def draw_titles(self) -> None:
        options, face = self.options, self.title_face
        if options.title and not self.graph_only:
            y = self.area[1]
            for line in options.title.split("\n"):
                self._text(line, options.width / 2, y, face, align="center", role="title")
                y += face.max_height
            self.area[1] = y if self.axis_side == "right" else y + self.margin
        if options.vtitle and not self.graph_only:
            x = self.area[0] + face.max_height
            for line in options.vtitle.split("\n"):
                self.items.append(
                    self._label(
                        line,
                        x,
                        options.height / 2,
                        face,
                        align="center",
                        rotation=90.0,
                        role="vtitle",
                    )
                )
                x += face.max_height
            self.area[0] = x + self.margin + face.max_height
        if options.vtitle_right and self.two_axes:
            x = self.area[2] - face.max_height
            for line in options.vtitle_right.split("\n"):
                self.items.append(
                    self._label(
                        line,
                        x,
                        options.height / 2,
                        face,
                        align="center",
                        rotation=-90.0,
                        role="vtitle",
                    )
                )
                x -= face.max_height
            self.area[2] = x - self.margin - face.max_height

    def draw_legend(self) -> None:
        options = self.options
        if options.legend_hidden(len(self.traces)):
            return
        entries: list[tuple[str, RGBA, bool]] = []
        seen: set[str] = set()
        for trace in self.traces:
            name = printable(unquote_plus(trace.series.name))
            if not name:
                continue
            if options.hide_null_from_legend and np.isnan(trace.series.values).all():
                continue
            if options.unique_legend:
                if name in seen:
                    continue
                seen.add(name)
            entries.append((name, trace.color, trace.right_axis))
        if not entries:
            return
        face = self.face
        longest = max((name for name, _, _ in entries), key=len)
        box = face.max_height - 1
        line_height = face.max_height + 1
        label_width = self.width(face, longest) + 2 * (box + LEGEND_PADDING)
        # graphite divides the whole width, letting the last column run off the
        # image when the legend starts right of a y axis; count only the room left.
        columns = max(1, math.floor((options.width - self.area[0]) / label_width))
        rows = math.ceil(len(entries) / columns)
        self.area[3] -= rows * line_height + LEGEND_PADDING
        x = left = self.area[0]
        y = self.area[3] + 2 * LEGEND_PADDING
        border = parse_color(LEGEND_BOX_BORDER)
        for index, (name, color, right) in enumerate(entries):
            if right:
                box_x, text_x, align = x + label_width + LEGEND_PADDING, x + label_width, "right"
            else:
                box_x, text_x, align = x, x + box + LEGEND_PADDING, "left"
            self.items.append(Box(box_x, y, box, box, color))
            self.items.append(Box(box_x, y, box, box, border, fill=False))
            self._text(name, text_x, y, face, align=align, role="legend")
            x += label_width
            if (index + 1) % columns == 0:
                x = left
                y += line_height

    # --- data to pixels ------------------------------------------------------------

    @property
    def graph_width(self) -> float:
        return max(self.area[2] - self.area[0] - (self.options.line_width + 1), 1.0)

    def consolidate(self) -> None:
        """Merge points so no two are closer than minXStep pixels (graphite's consolidateDataPoints)."""
        pixels = self.graph_width
        for trace in self.traces:
            series = trace.series
            points = self.time_range / series.step
            best = pixels / points
            per_pixel = 1
            if best < self.options.min_x_step:
                drawable = max(int(pixels / self.options.min_x_step), 1)
                per_pixel = math.ceil(points / drawable)
                trace.x_step = pixels * per_pixel / points
            else:
                trace.x_step = best
            if per_pixel != trace.points_per_pixel or trace.values is None:
                values = series.values
                if per_pixel > 1:
                    values = consolidate_values(
                        values, per_pixel, series.consolidation_func, series.x_files_factor
                    )
                trace.values = values
                trace.points_per_pixel = per_pixel

    def _data_limits(self, traces: list[_Trace]) -> tuple[float, float]:
        """graphite's dataLimits: the finite range of the non-infinite series."""
        finite = [t.values for t in traces if not t.infinite]
        missing = any(np.isnan(t.values).any() for t in traces)
        usable = [v[np.isfinite(v)] for v in finite]
        usable = [v for v in usable if len(v)]
        if not usable:
            return 0.0, 1.0
        low = min(float(v.min()) for v in usable)
        if self.options.area_mode == "stacked":
            length = min(len(v) for v in finite)
            stack = np.vstack([v[:length] for v in finite])
            sums = np.where(np.isfinite(stack), stack, 0.0).sum(axis=0)
            high = float(sums.max()) if length else low
        else:
            high = max(float(v.max()) for v in usable)
        if self.options.draw_null_as_zero and missing:
            low = min(low, 0.0) if low > 0 else low
            high = max(high, 0.0) if high < 0 else high
        return low, high

    def _axis(self, traces: list[_Trace], side: str | None) -> axes.YAxis:
        o = self.options
        if side is None:
            bounds = (o.y_min, o.y_max, o.y_limit, o.y_step)
        elif side == "left":
            bounds = (o.y_min_left, o.y_max_left, o.y_limit_left, o.y_step_left)
        else:
            bounds = (o.y_min_right, o.y_max_right, o.y_limit_right, o.y_step_right)
        axis_min, axis_max, axis_limit, step = bounds
        low, high = self._data_limits(traces)
        try:
            if o.log_base:
                return axes.log_axis(
                    low, high, o.log_base, axis_min=axis_min, axis_max=axis_max,
                    axis_limit=axis_limit, unit_system=o.y_unit_system,
                )  # fmt: skip
            return axes.linear_axis(
                low, high, axis_min=axis_min, axis_max=axis_max, axis_limit=axis_limit,
                step=step, divisors=o.y_divisors, unit_system=o.y_unit_system,
            )  # fmt: skip
        except axes.AxisError as error:
            name = {None: "yMin", "left": "yMinLeft", "right": "yMinRight"}[side]
            param = "logBase" if o.log_base else name
            value = o.log_base if o.log_base else axis_min
            raise GraphOptionError(param, value, str(error)) from None

    def setup_y_axes(self) -> None:
        face = self.face
        if self.two_axes:
            left = [t for t in self.traces if not t.right_axis]
            right = [t for t in self.traces if t.right_axis]
            self.y_axes = {"left": self._axis(left, "left"), "right": self._axis(right, "right")}
        else:
            self.y_axes = {"left": self._axis(self.traces, None)}
        if self.hide_axes:
            self.label_widths = {side: 0.0 for side in self.y_axes}
            return
        self.label_widths = {
            side: max((self.width(face, label) for label in axis.labels), default=0.0)
            for side, axis in self.y_axes.items()
        }
        if self.two_axes:
            self.area[0] = max(self.area[0], self.margin + self.label_widths["left"] * 1.02)
            self.area[2] = min(self.area[2], self.options.width - self.label_widths["right"] * 1.02)
        elif not self.options.hide_y_axis:
            if self.axis_side == "left":
                self.area[0] = max(self.area[0], self.margin + self.label_widths["left"] * 1.02)
            else:
                self.area[2] = min(
                    self.area[2], self.options.width - self.label_widths["left"] * 1.02
                )

    def y_for(self, values: np.ndarray, side: str = "left") -> np.ndarray:
        """Pixel rows for ``values`` on an axis (NaN where not drawable, e.g. <= 0 on log)."""
        axis = self.y_axes[side]
        top, bottom = self.area[1], self.area[3]
        low, high = axis.low, axis.high
        values = np.asarray(values, dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            if axis.log_base:
                log = math.log(axis.log_base)
                relative = np.where(values > 0, np.log(values) / log, np.nan) - math.log(low) / log
                span = math.log(high) / log - math.log(low) / log
            else:
                relative = values - low
                span = high - low
            if span == 0:  # a single label: fall back to the axis' own range
                span = (axis.top - axis.bottom) or 1.0
            ys = bottom - relative * ((bottom - top) / span)
        return np.clip(ys, 0.0, FAR_OFF)

    # --- axes, grid ---------------------------------------------------------------

    def draw_labels(self) -> None:
        face, o = self.face, self.options
        left, right = self.area[0], self.area[2]
        middle = face.max_height / 2 - face.max_descent
        if not o.hide_y_axis:
            for side, axis in self.y_axes.items():
                width = self.label_widths[side]
                if side == "right":
                    x, align = right + width * 0.02 + 3, "left"
                elif self.axis_side == "right":
                    x, align = right + width * 0.02, "left"
                else:
                    x, align = left - width * 0.02, "right"
                ys = self.y_for(np.array(axis.label_values), side)
                for label, y in zip(axis.labels, ys.tolist(), strict=True):
                    if not math.isnan(y):
                        self.items.append(
                            self._label(label, x, y + middle, face, align=align, role="ylabel")
                        )
        if not o.hide_x_axis:
            scale = self.time_scale
            fmt = o.x_format or scale.label_format
            top = self.area[3] + face.max_ascent
            for tick in axes.tick_times(
                self.start_time, self.end_time, self.tz, scale.label_unit, scale.label_step
            ):
                x = left + (tick.timestamp() - self.start_time) * self.pixels_per_second
                self._text(tick.strftime(fmt), x, top, face, align="center", role="xlabel")

    def draw_grid(self) -> None:
        o = self.options
        left, top, right, bottom = self.area
        axis = self.y_axes["left"]
        values = list(axis.label_values)
        majors = self.y_for(np.array(values))
        major_rows = [y for y in majors.tolist() if not math.isnan(y)]
        minors: list[float] = []
        top_factor = axis.log_base**2 if axis.log_base else 1.0
        for lower, upper in zip(values, values[1:], strict=False):
            low, high = sorted((lower, upper))
            distance = (high - low) / (1 + o.minor_y)
            for k in range(o.minor_y):
                value = low + (k + 1) * distance
                if value < top_factor * axis.top:
                    minors.append(value)
        minor_rows = [y for y in self.y_for(np.array(minors)).tolist() if not math.isnan(y)]
        self._horizontal(major_rows, o.major_grid_color, MAJOR_GRID_WIDTH, left, right)
        self._horizontal(minor_rows, o.minor_grid_color, MINOR_GRID_WIDTH, left, right)
        scale = self.time_scale
        for unit, step, color, width in (
            (scale.minor_unit, scale.minor_step, o.minor_grid_color, X_MINOR_GRID_WIDTH),
            (scale.major_unit, scale.major_step, o.major_grid_color, X_MAJOR_GRID_WIDTH),
        ):
            xs = [
                left + (t.timestamp() - self.start_time) * self.pixels_per_second
                for t in axes.tick_times(self.start_time, self.end_time, self.tz, unit, step)
            ]
            self._vertical([x for x in xs if x < right], color, width, top, bottom)
        self._vertical([right, left], o.major_grid_color, BORDER_WIDTH, top, bottom)

    def _horizontal(
        self, rows: list[float], color: RGBA, width: float, left: float, right: float
    ) -> None:
        if rows:
            segments = np.array([[(left, y), (right, y)] for y in rows])
            self.items.append(Segments(segments, color, width))

    def _vertical(
        self, columns: list[float], color: RGBA, width: float, top: float, bottom: float
    ) -> None:
        if columns:
            segments = np.array([[(x, bottom), (x, top)] for x in columns])
            self.items.append(Segments(segments, color, width))

    # --- series -------------------------------------------------------------------

    def _order_and_stack(self) -> list[_Trace]:
        o = self.options
        traces = list(self.traces)
        if any(t.filled for t in traces):
            traces = [t for t in traces if t.filled] + [t for t in traces if not t.filled]
        if o.area_mode == "stacked" and not self.two_axes:
            total = None
            for trace in traces:
                if trace.infinite:
                    continue
                trace.filled = True
                if trace.between:
                    continue
                values = trace.values
                if total is None:
                    total = np.zeros(len(values))
                if len(total) < len(values):
                    total = np.concatenate((total, np.zeros(len(values) - len(total))))
                stacked = values + total[: len(values)]
                total[: len(values)] = np.where(np.isnan(values), total[: len(values)], stacked)
                trace.values = stacked
        elif o.area_mode == "first" and traces:
            traces[0].filled = True
        elif o.area_mode == "all":
            for trace in traces:
                if not trace.infinite:
                    trace.filled = True
        return traces

    def draw_series(self) -> None:
        o = self.options
        traces = self._order_and_stack()
        left = self.area[0]
        offset = o.line_width / 2.0
        envelopes: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        strokes: list[tuple[_Trace, np.ndarray, np.ndarray]] = []
        for trace in traces:
            series = trace.series
            side = "right" if trace.right_axis and self.two_axes else "left"
            values = trace.values
            if o.draw_null_as_zero:
                values = np.where(np.isnan(values), 0.0, values)
            n = len(values)
            first = (series.start - self.start_time) / series.step / trace.points_per_pixel
            xs = left + offset + (first + np.arange(n)) * trace.x_step
            color = with_alpha(trace.color, trace.alpha)
            if trace.infinite:
                marks = values > 0
                if marks.any():
                    self._infinite_lines(xs[marks], color, trace)
                values = np.where(marks, np.nan, values)
            ys = self.y_for(values, side)
            valid = ~np.isnan(ys)
            groups = _group_runs(_runs(valid), self.line_mode, o.connected_limit)
            if not groups:
                continue
            if trace.filled:
                self._fill(trace, xs, ys, groups, side, envelopes, o.area_alpha)
                if o.area_alpha is not None:
                    strokes.append((trace, xs, ys))
                continue
            if not trace.invisible:
                self._line(trace, xs, ys, groups, color, trace.line_width)
        for trace, xs, ys in strokes:
            groups = _group_runs(_runs(~np.isnan(ys)), self.line_mode, o.connected_limit)
            self._line(trace, xs, ys, groups, trace.color, o.line_width, dash=None)

    def _line(self, trace, xs, ys, groups, color, width, dash="series") -> None:
        pieces = [_path(g, xs, ys, self.line_mode, trace.x_step) for g in groups]
        gap = np.array([np.nan])
        px = np.concatenate([p for x, _ in pieces for p in (x, gap)][:-1])
        py = np.concatenate([p for _, y in pieces for p in (y, gap)][:-1])
        self.items.append(
            Polyline(
                px, py, color, width, trace.dash if dash == "series" else dash, trace.series.name
            )
        )

    def _infinite_lines(self, xs: np.ndarray, color: RGBA, trace: _Trace) -> None:
        top, bottom = self.area[1], self.area[3]
        segments = np.empty((len(xs), 2, 2))
        segments[:, 0, 0] = segments[:, 1, 0] = xs
        segments[:, 0, 1], segments[:, 1, 1] = bottom, top
        self.items.append(
            Segments(
                segments,
                color,
                trace.line_width,
                clip=True,
                dash=trace.dash,
                label=trace.series.name,
            )
        )

    def _fill(self, trace, xs, ys, groups, side, envelopes, area_alpha) -> None:
        """Fill from the series down to what earlier filled series cover (or to zero).

        graphite clips each filled area out of the drawable region, so a later
        area only shows outside earlier ones; on a shared time grid that is
        the band between this series and the envelope of the earlier ones.
        """
        zero = float(self.y_for(np.array([0.0]), side)[0])
        if math.isnan(zero):
            zero = self.area[3]
        key = (side, float(xs[0]), trace.x_step, len(xs))
        above, below = envelopes.get(key, (np.full(len(xs), zero), np.full(len(xs), zero)))
        up = ys <= zero
        floor = np.where(up, above, below)
        edge = np.where(up, np.minimum(ys, above), np.maximum(ys, below))
        edge = np.where(np.isnan(ys), np.nan, edge)
        envelopes[key] = (
            np.where(up & ~np.isnan(ys), np.minimum(above, ys), above),
            np.where(~up & ~np.isnan(ys), np.maximum(below, ys), below),
        )
        if trace.invisible:
            return
        polygons = []
        for group in groups:
            top_x, top_y = _path(group, xs, edge, self.line_mode, trace.x_step)
            _, base_y = _path(group, xs, floor, self.line_mode, trace.x_step)
            polygons.append(
                np.column_stack(
                    (np.concatenate((top_x, top_x[::-1])), np.concatenate((top_y, base_y[::-1])))
                )
            )
        alpha = trace.alpha if area_alpha is None else area_alpha
        color = (trace.color[0], trace.color[1], trace.color[2], trace.color[3] * alpha)
        self.items.append(Fill(polygons, color, trace.series.name))

    # --- the whole graph ----------------------------------------------------------

    def run(self) -> Scene:
        self.draw_titles()
        self.draw_legend()
        if not self.hide_axes and not self.options.hide_x_axis:
            self.area[3] -= self.face.max_ascent * 2
        for _ in range(10):
            before = (self.area[0], self.area[2])
            self.consolidate()
            self.setup_y_axes()
            if (self.area[0], self.area[2]) == before:
                break
        self.pixels_per_second = self.graph_width / self.time_range
        self.time_scale = axes.time_scale(self.time_range, self.graph_width)
        if not self.hide_axes:
            self.draw_labels()
            if not self.hide_grid:
                self.draw_grid()
        self.draw_series()
        o = self.options
        return Scene(
            o.width, o.height, o.background, tuple(self.items), Area(*self.area),
            self.start_time, self.pixels_per_second, o.line_width / 2.0, self.metadata(),
        )  # fmt: skip

    def metadata(self) -> dict[str, Any]:
        """graphite's SVG ``metadata`` object: x range, area, font, y axis, drawn lines."""
        o = self.options
        left, top, right, bottom = self.area
        data: dict[str, Any] = {
            "x": {"start": self.start_time, "end": self.end_time},
            "options": {"lineWidth": o.line_width},
            "font": {"name": o.font_name, "size": o.font_size, "bold": o.font_bold, "italic": o.font_italic},
            "area": {"xmin": left, "xmax": right, "ymin": top, "ymax": bottom},
            "series": [
                {
                    "name": t.series.name, "start": t.series.start, "end": t.series.end,
                    "step": t.series.step, "valuesPerPoint": t.points_per_pixel,
                    "color": to_hex(t.color),
                    "data": [None if math.isnan(v) else v for v in t.values.tolist()],
                    "options": {k: v if isinstance(v, bool | int | float | str) else str(v)
                                for k, v in t.series.options.items()},
                }
                for t in self.traces
                if not t.filled
            ],
        }  # fmt: skip
        if not self.two_axes:
            axis = self.y_axes["left"]
            data["y"] = {
                "top": axis.top, "bottom": axis.bottom, "step": axis.step,
                "labels": list(axis.labels), "labelValues": list(axis.label_values),
            }  # fmt: skip
        return data


def _no_data(options: GraphOptions) -> Scene:
    face = typeface(options, max(math.log(options.width * options.height), 1.0))
    text = Text(
        "No Data", options.width / 2, options.height / 2 + face.max_ascent, face,
        parse_color(NO_DATA_COLOR), face.width("No Data"), "center", role="nodata",
    )  # fmt: skip
    return Scene(options.width, options.height, options.background, (text,))


def layout_graph(series_list: Sequence[Series], options: GraphOptions, tz: tzinfo) -> Scene:
    """The scene graphite would draw for these series and options, times shown in ``tz``.

    No series, or series spanning no time, give graphite's red "No Data" image.
    """
    if not series_list:
        return _no_data(options)
    span = max(s.end for s in series_list) - min(s.start for s in series_list)
    if span <= 0:
        return _no_data(options)
    return _Layout(series_list, options, tz).run()
