"""``graphType=pie``: one slice per series, as graphite-web's ``PieGraph`` draws it.

Each series becomes one number by ``pieMode`` (``average``, ``maximum`` or
``minimum`` of its non-missing values; a series with none counts 0), and a
target written ``name:value`` is a slice of its own. Slices start at twelve
o'clock and go clockwise in ``colorList`` order; the title and legend are
the line graph's; labels sit half way out from the centre, showing the
share (``%12.50``, graphite's spelling) or the value, and are left out
below ``valueLabelsMin``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from datetime import tzinfo

import numpy as np

from render.graphs.colors import RGBA, parse_color, to_hex, with_alpha
from render.graphs.layout import _Layout, _no_data
from render.graphs.options import GraphOptionError, GraphOptions
from render.graphs.scene import Fill, Scene, Text
from render.series import Series

PIE_MODES = ("average", "maximum", "minimum")
PIE_LABELS = ("horizontal", "rotated")
VALUE_LABELS = ("none", "number", "percent")
#: Straight pieces per full turn of a slice's arc.
ARC_STEPS = 360

Slice = tuple[str, float]


def pie_value(series: Series, mode: str) -> float:
    """graphite's ``PieFunction(mode)`` of one series, ``or 0``: missing values are skipped."""
    values = series.values[~np.isnan(series.values)]
    if not len(values):
        return 0.0
    if mode == "average":
        return float(np.cumsum(values)[-1] / len(values))
    return float(values.max() if mode == "maximum" else values.min())


def literal_slice(target: str) -> Slice | None:
    """A ``name:value`` target as a slice; None for any other target.

    Raises ValueError when the value after the first colon is not a number.
    """
    if ":" not in target:
        return None
    name, _, value = target.partition(":")
    try:
        return name, float(value)
    except ValueError:
        raise ValueError(f"cannot draw target={target!r}: a pie slice is name:number") from None


def _choice(params: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    value = params.get(name) or default
    if value not in choices:
        raise GraphOptionError(name, value, f"expected one of {', '.join(choices)}")
    return value


@dataclasses.dataclass(frozen=True)
class PieOptions:
    """The pie's own parameters, checked (the rest are the line graph's :class:`GraphOptions`)."""

    mode: str = "average"
    labels: str = "horizontal"
    value_labels: str = "percent"
    labels_min: float = 5.0
    labels_color: RGBA = parse_color("black")

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> PieOptions:
        """``pieMode``, ``pieLabels``, ``valueLabels``, ``valueLabelsMin``, ``valueLabelsColor``.

        Raises :class:`GraphOptionError` naming the first bad one.
        """
        minimum = params.get("valueLabelsMin") or "5"
        try:
            labels_min = float(minimum)
        except ValueError:
            raise GraphOptionError("valueLabelsMin", minimum, "not a number") from None
        color = params.get("valueLabelsColor") or "black"
        try:
            labels_color = parse_color(color)
        except ValueError as error:
            raise GraphOptionError("valueLabelsColor", color, str(error)) from None
        return cls(
            _choice(params, "pieMode", PIE_MODES, "average"),
            _choice(params, "pieLabels", PIE_LABELS, "horizontal"),
            _choice(params, "valueLabels", VALUE_LABELS, "percent"),
            labels_min,
            labels_color,
        )


class _PieLayout(_Layout):
    """The line graph's title and legend around slices instead of axes."""

    def __init__(self, slices: Sequence[Slice], options: GraphOptions, pie: PieOptions, tz: tzinfo) -> None:
        super().__init__([Series(name, 0, 1, 1, [value]) for name, value in slices], options, tz)
        self.slices = list(slices)
        self.pie = pie

    def run_pie(self) -> Scene:
        self.draw_titles()
        if not (self.options.graph_only or self.options.hide_legend):
            # graphite's pie lists every slice in the legend, however many, unless hideLegend is set
            self.options = dataclasses.replace(self.options, hide_legend=False)
            self.draw_legend()
        left, top, right, bottom = self.area
        x0, y0 = (left + right) / 2, (top + bottom) / 2
        radius = min(right - left, bottom - top) / 2 * 0.95
        total = sum(value for _, value in self.slices)
        alpha = self.options.area_alpha if self.options.area_alpha is not None else 1.0
        theta = 1.5 * math.pi
        drawn = []
        for (name, value), trace in zip(self.slices, self.traces, strict=True):
            share = value / total
            phi = theta + 2 * math.pi * share
            steps = max(2, math.ceil(abs(phi - theta) / (2 * math.pi) * ARC_STEPS))
            angles = np.linspace(theta, phi, steps + 1)
            polygon = np.column_stack((
                np.concatenate(([x0], x0 + radius * np.cos(angles), [x0])),
                np.concatenate(([y0], y0 + radius * np.sin(angles), [y0])),
            ))
            self.items.append(Fill([polygon], with_alpha(trace.color, alpha), label=name))
            drawn.append((name, value, share, (theta + phi) / 2 % (2 * math.pi), trace.color))
            theta = phi
        if self.pie.value_labels != "none":
            for _, value, share, middle, _ in drawn:
                self._value_label(value, share, middle, x0, y0, radius)
        o = self.options
        metadata = {"pie": [{"name": n, "value": v, "percent": s, "color": to_hex(c)} for n, v, s, _, c in drawn]}
        return Scene(o.width, o.height, o.background, tuple(self.items), metadata=metadata)

    def _value_label(self, value: float, share: float, middle: float, x0: float, y0: float,
                     radius: float) -> None:
        if self.pie.value_labels == "percent":
            if share * 100 < self.pie.labels_min:
                return
            text = f"%{share * 100:.2f}"
        else:
            if value < self.pie.labels_min:
                return
            text = f"{value:.2f}" if value < 10 and value != int(value) else str(int(value))
        x = x0 + radius / 2 * math.cos(middle)
        y = y0 + radius / 2 * math.sin(middle)
        rotation = 0.0
        if self.pie.labels == "rotated":
            angle = middle - math.pi if math.pi / 2 < middle <= 1.5 * math.pi else middle
            rotation = -math.degrees(angle)  # cairo turns clockwise on screen; Text counter-clockwise
        face = self.face
        label = Text(text, x, y + face.max_ascent / 2, face, self.pie.labels_color, self.width(face, text),
                     align="center", rotation=rotation, role="value")
        self.items.append(label)


def layout_pie(slices: Sequence[Slice], options: GraphOptions, pie: PieOptions, tz: tzinfo) -> Scene:
    """The scene of a pie of ``slices``; no slices (or a zero total) give graphite's "No Data"."""
    if not slices or sum(value for _, value in slices) == 0:
        return _no_data(options)
    return _PieLayout(slices, options, pie, tz).run_pie()
