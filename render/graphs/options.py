"""Graph request parameters, parsed once into a frozen :class:`GraphOptions`.

graphite-web coerces graph parameters loosely (``views.parseOptions``): digit
strings become ints, ``d.d`` floats, ``true``/``false`` booleans, and an empty
value or ``default`` means "not given"; bad values then fail somewhere inside
cairo with a 500. Here every parameter is checked up front and a bad one is a
:class:`GraphOptionError` naming it: ``cannot draw <param>=<value>: <reason>``.
Defaults are graphite-web 1.1.10's (``glyph.py`` and its default template).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote_plus

from render.graphs.colors import (
    DEFAULT_BACKGROUND,
    DEFAULT_COLOR_LIST,
    DEFAULT_FOREGROUND,
    DEFAULT_MAJOR_GRID,
    DEFAULT_MINOR_GRID,
    RGBA,
    parse_color,
)

MAX_SIDE = 8192
MAX_PIXELS = 16_000_000
MAX_TEXT = 1000
MAX_FONT_SIZE = 200.0
MAX_LINE_WIDTH = 100.0
#: Legend is hidden by default above this many series (graphite's LEGEND_MAX_ITEMS).
LEGEND_MAX_ITEMS = 10

LINE_MODES = ("slope", "staircase", "connected")
AREA_MODES = ("none", "first", "all", "stacked")
UNIT_SYSTEMS = ("si", "binary", "sec", "msec", "none")
AXIS_SIDES = ("left", "right")
GRAPH_TYPES = ("line", "pie")

_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


class GraphOptionError(ValueError):
    """A graph parameter that cannot be drawn; the message names it and its value."""

    def __init__(self, param: str, value: object, reason: str) -> None:
        super().__init__(f"cannot draw {param}={value}: {reason}")
        self.param = param
        self.value = value
        self.reason = reason


def _number(name: str, raw: str, low: float = -math.inf, high: float = math.inf) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise GraphOptionError(name, raw, "not a number") from None
    if math.isnan(value) or math.isinf(value):
        raise GraphOptionError(name, raw, "not a finite number")
    if not low <= value <= high:
        raise GraphOptionError(name, raw, f"must be between {low:g} and {high:g}")
    return value


def _integer(name: str, raw: str, low: int, high: int) -> int:
    value = _number(name, raw, low, high)
    if value != int(value):
        raise GraphOptionError(name, raw, "not a whole number")
    return int(value)


def _flag(name: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise GraphOptionError(name, raw, "not true or false")


def _choice(name: str, raw: str, choices: tuple[str, ...]) -> str:
    lowered = raw.strip().lower()
    if lowered not in choices:
        raise GraphOptionError(name, raw, f"must be one of {', '.join(choices)}")
    return lowered


def _color(name: str, raw: str) -> RGBA:
    try:
        return parse_color(unquote_plus(raw))
    except ValueError as error:
        raise GraphOptionError(name, raw, str(error)) from None


def _text(name: str, raw: str) -> str:
    text = unquote_plus(raw)
    if len(text) > MAX_TEXT:
        raise GraphOptionError(name, raw[:40] + "...", f"longer than {MAX_TEXT} characters")
    return text


def _dash(name: str, raw: str) -> float | None:
    """A dash length: a number, or true for graphite's default dash of 5."""
    lowered = raw.strip().lower()
    if lowered in _TRUE[:3]:
        return 5.0
    if lowered in _FALSE[:3]:
        return None
    length = _number(name, raw, 0.0, MAX_LINE_WIDTH * 10)
    return length or None


def _y_bound(name: str, raw: str) -> float | str:
    """yMax-like bounds also take ``max``: the data's maximum without rounding up."""
    if raw.strip().lower() == "max":
        return "max"
    return _number(name, raw)


def _log_base(name: str, raw: str) -> float:
    if raw.strip().lower() == "e":
        return math.e
    value = _number(name, raw)
    if value <= 1.0:
        raise GraphOptionError(name, raw, "a logarithmic base must be e or greater than 1")
    return value


def _divisors(name: str, raw: str) -> tuple[int, ...]:
    parts = [p for p in raw.split(",") if p.strip()]
    if not parts or len(parts) > 10:
        raise GraphOptionError(name, raw, "must list 1 to 10 divisors")
    divisors = []
    for part in parts:
        try:
            divisors.append(_integer(name, part, 1, 100))
        except GraphOptionError as error:
            raise GraphOptionError(name, raw, f"{part!r}: {error.reason}") from None
    return tuple(divisors)


def _color_list(name: str, raw: str) -> tuple[RGBA, ...]:
    parts = [p.strip() for p in unquote_plus(raw).split(",") if p.strip()]
    if not parts:
        raise GraphOptionError(name, raw, "lists no colours")
    colors = []
    for part in parts:
        try:
            colors.append(parse_color(part))
        except ValueError as error:
            raise GraphOptionError(name, raw, f"{part!r} is {error}") from None
    return tuple(colors)


def _positive(low: float, high: float) -> Callable[[str, str], float]:
    return lambda name, raw: _number(name, raw, low, high)


def _whole(low: int, high: int) -> Callable[[str, str], int]:
    return lambda name, raw: _integer(name, raw, low, high)


def _one_of(choices: tuple[str, ...]) -> Callable[[str, str], str]:
    return lambda name, raw: _choice(name, raw, choices)


# graphite parameter -> (field, parser). Aliases come first so the modern name wins.
_PARSERS: tuple[tuple[str, str, Callable[[str, str], Any]], ...] = (
    ("graphType", "graph_type", _one_of(GRAPH_TYPES)),
    ("width", "width", _whole(1, MAX_SIDE)),
    ("height", "height", _whole(1, MAX_SIDE)),
    ("margin", "margin", _whole(0, MAX_SIDE)),
    ("bgcolor", "background", _color),
    ("fgcolor", "foreground", _color),
    ("majorGridLineColor", "major_grid_color", _color),
    ("minorGridLineColor", "minor_grid_color", _color),
    ("colorList", "color_list", _color_list),
    ("fontName", "font_name", _text),
    ("fontSize", "font_size", _positive(1.0, MAX_FONT_SIZE)),
    ("fontBold", "font_bold", _flag),
    ("fontItalic", "font_italic", _flag),
    ("title", "title", _text),
    ("vtitle", "vtitle", _text),
    ("vtitleRight", "vtitle_right", _text),
    ("lineMode", "line_mode", _one_of(LINE_MODES)),
    ("thickness", "line_width", _positive(0.0, MAX_LINE_WIDTH)),
    ("lineWidth", "line_width", _positive(0.0, MAX_LINE_WIDTH)),
    ("areaMode", "area_mode", _one_of(AREA_MODES)),
    ("areaAlpha", "area_alpha", _positive(0.0, 1.0)),
    ("hideLegend", "hide_legend", _flag),
    ("hideNullFromLegend", "hide_null_from_legend", _flag),
    ("uniqueLegend", "unique_legend", _flag),
    ("hideAxes", "hide_axes", _flag),
    ("hideXAxis", "hide_x_axis", _flag),
    ("hideYAxis", "hide_y_axis", _flag),
    ("hideGrid", "hide_grid", _flag),
    ("graphOnly", "graph_only", _flag),
    ("minXStep", "min_x_step", _positive(0.01, MAX_SIDE)),
    ("minorY", "minor_y", _whole(0, 100)),
    ("min", "y_min", _number),
    ("yMin", "y_min", _number),
    ("max", "y_max", _y_bound),
    ("yMax", "y_max", _y_bound),
    ("yLimit", "y_limit", _number),
    ("yStep", "y_step", _positive(1e-300, math.inf)),
    ("yMinLeft", "y_min_left", _number),
    ("yMinRight", "y_min_right", _number),
    ("yMaxLeft", "y_max_left", _y_bound),
    ("yMaxRight", "y_max_right", _y_bound),
    ("yLimitLeft", "y_limit_left", _number),
    ("yLimitRight", "y_limit_right", _number),
    ("yStepLeft", "y_step_left", _positive(1e-300, math.inf)),
    ("yStepRight", "y_step_right", _positive(1e-300, math.inf)),
    ("yDivisors", "y_divisors", _divisors),
    ("drawNullAsZero", "draw_null_as_zero", _flag),
    ("yUnitSystem", "y_unit_system", _one_of(UNIT_SYSTEMS)),
    ("logBase", "log_base", _log_base),
    ("yAxisSide", "y_axis_side", _one_of(AXIS_SIDES)),
    ("leftWidth", "left_width", _positive(0.0, MAX_LINE_WIDTH)),
    ("rightWidth", "right_width", _positive(0.0, MAX_LINE_WIDTH)),
    ("leftColor", "left_color", _color),
    ("rightColor", "right_color", _color),
    ("leftDashed", "left_dashed", _dash),
    ("rightDashed", "right_dashed", _dash),
    ("xFormat", "x_format", _text),
    ("connectedLimit", "connected_limit", _whole(0, 2**31)),
)


@dataclasses.dataclass(frozen=True)
class GraphOptions:
    """Everything a line graph needs from the request, validated.

    ``None`` means "not given" where graphite distinguishes that from any
    value (``hide_legend`` None hides the legend only above
    :data:`LEGEND_MAX_ITEMS` series; ``y_min`` None fits the data).
    """

    graph_type: str = "line"
    width: int = 330
    height: int = 250
    margin: int = 10
    background: RGBA = parse_color(DEFAULT_BACKGROUND)
    foreground: RGBA = parse_color(DEFAULT_FOREGROUND)
    major_grid_color: RGBA = parse_color(DEFAULT_MAJOR_GRID)
    minor_grid_color: RGBA = parse_color(DEFAULT_MINOR_GRID)
    color_list: tuple[RGBA, ...] = tuple(parse_color(c) for c in DEFAULT_COLOR_LIST)
    font_name: str = "Sans"
    font_size: float = 10.0
    font_bold: bool = False
    font_italic: bool = False
    title: str = ""
    vtitle: str = ""
    vtitle_right: str = ""
    line_mode: str = "slope"
    line_width: float = 1.2
    area_mode: str = "none"
    area_alpha: float | None = None
    hide_legend: bool | None = None
    hide_null_from_legend: bool = False
    unique_legend: bool = False
    hide_axes: bool = False
    hide_x_axis: bool = False
    hide_y_axis: bool = False
    hide_grid: bool = False
    graph_only: bool = False
    min_x_step: float = 1.0
    minor_y: int = 1
    y_min: float | None = None
    y_max: float | str | None = None
    y_limit: float | None = None
    y_step: float | None = None
    y_min_left: float | None = None
    y_min_right: float | None = None
    y_max_left: float | str | None = None
    y_max_right: float | str | None = None
    y_limit_left: float | None = None
    y_limit_right: float | None = None
    y_step_left: float | None = None
    y_step_right: float | None = None
    y_divisors: tuple[int, ...] = (4, 5, 6)
    draw_null_as_zero: bool = False
    y_unit_system: str = "si"
    log_base: float | None = None
    y_axis_side: str = "left"
    left_width: float | None = None
    right_width: float | None = None
    left_color: RGBA | None = None
    right_color: RGBA | None = None
    left_dashed: float | None = None
    right_dashed: float | None = None
    x_format: str | None = None
    connected_limit: int | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> GraphOptions:
        """Parse graphite's graph parameters; unknown keys (targets, from, ...) are ignored.

        Raises :class:`GraphOptionError` for the first bad value.
        """
        values: dict[str, Any] = {}
        for param, field, parse in _PARSERS:
            raw = params.get(param)
            if raw is None:
                continue
            raw = str(raw)
            if raw == "" or raw.strip().lower() == "default":
                continue
            values[field] = parse(param, raw)
        options = cls(**values)
        options._check_size()
        return options

    def _check_size(self) -> None:
        if self.width * self.height > MAX_PIXELS:
            raise GraphOptionError(
                "width", self.width, f"{self.width}x{self.height} is over {MAX_PIXELS} pixels"
            )
        if 2 * self.margin >= min(self.width, self.height):
            raise GraphOptionError(
                "margin", self.margin, f"leaves no room to draw in {self.width}x{self.height}"
            )

    def legend_hidden(self, series_count: int) -> bool:
        """Whether to leave the legend out; unasked, graphite hides it above LEGEND_MAX_ITEMS series."""
        if self.graph_only:
            return True
        if self.hide_legend is None:
            return series_count > LEGEND_MAX_ITEMS
        return self.hide_legend
