"""The drawing primitives a graph layout produces and a backend paints.

Coordinates are pixels from the image's top-left corner, y growing down,
as in graphite's cairo code. Polylines use NaN to break the line.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from render.graphs.colors import RGBA
from render.graphs.fonts import Typeface


@dataclasses.dataclass(frozen=True)
class Area:
    """The plot rectangle: series are clipped to it."""

    left: float
    top: float
    right: float
    bottom: float

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def height(self) -> float:
        return self.bottom - self.top


@dataclasses.dataclass(frozen=True)
class Text:
    """A line of text anchored at (``x``, baseline ``y``) by its left, center or right.

    ``width`` is its measured advance (the painter aligns with it);
    ``rotation`` is in counter-clockwise degrees about the anchor.
    """

    text: str
    x: float
    y: float
    face: Typeface
    color: RGBA
    width: float
    align: str = "left"
    rotation: float = 0.0
    role: str = "label"

    @property
    def start(self) -> tuple[float, float]:
        """Where the baseline begins, after alignment and rotation."""
        shift = {"left": 0.0, "center": self.width / 2, "right": self.width}[self.align]
        angle = math.radians(self.rotation)
        return self.x - shift * math.cos(angle), self.y + shift * math.sin(angle)


@dataclasses.dataclass(frozen=True)
class Box:
    """A rectangle, filled or outlined."""

    x: float
    y: float
    width: float
    height: float
    color: RGBA
    fill: bool = True
    line_width: float = 1.0


@dataclasses.dataclass(frozen=True, eq=False)
class Polyline:
    """A series' line (NaN-separated pieces), clipped to the plot area."""

    xs: np.ndarray
    ys: np.ndarray
    color: RGBA
    width: float
    dash: float | None = None
    label: str = ""


@dataclasses.dataclass(frozen=True, eq=False)
class Segments:
    """Independent straight segments ``[(x0, y0), (x1, y1)]``: grid lines, infinite values."""

    segments: np.ndarray
    color: RGBA
    width: float
    clip: bool = False
    dash: float | None = None
    label: str = ""


@dataclasses.dataclass(frozen=True, eq=False)
class Fill:
    """Filled polygons (an area under or between series), clipped to the plot area."""

    polygons: Sequence[np.ndarray]
    color: RGBA
    label: str = ""


Item = Text | Box | Polyline | Segments | Fill


@dataclasses.dataclass(frozen=True)
class Scene:
    """Everything to paint, in order, on a ``width`` x ``height`` background.

    ``area`` is None for an image without a plot ("No Data"). ``start_time``
    and ``pixels_per_second`` place a timestamp: see :meth:`x_for`.
    ``metadata`` is what graphite embeds in its SVGs for scripts (axes,
    area, series data and colours).
    """

    width: int
    height: int
    background: RGBA
    items: tuple[Item, ...]
    area: Area | None = None
    start_time: int = 0
    pixels_per_second: float = 0.0
    line_offset: float = 0.0
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def x_for(self, timestamp: float) -> float:
        """The x (pixels) where a value at ``timestamp`` is drawn."""
        if self.area is None:
            raise ValueError("cannot place timestamp: the graph has no plot area")
        return (
            self.area.left
            + self.line_offset
            + (timestamp - self.start_time) * self.pixels_per_second
        )

    def texts(self, role: str | None = None) -> list[Text]:
        """The text items, optionally only those of one role (title, legend, ylabel, xlabel...)."""
        return [i for i in self.items if isinstance(i, Text) and (role is None or i.role == role)]
