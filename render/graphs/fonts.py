"""Fonts and text measurement for graph layout.

Layout needs text sizes before anything is drawn (label widths push the plot
area in, legend rows push it up), like graphite's cairo ``text_extents``.
Sizes are in pixels: figures are made at 72 dpi, so a point is a pixel in
PNG, SVG and PDF alike. Widths come from Pillow's FreeType binding, which
also draws the PNG's text (matplotlib 3.11 lays out and renders text glyph by
glyph in Python, most of a graph's time); the font object belongs to one
render, nothing is shared between requests.
"""

from __future__ import annotations

import dataclasses
import math
import unicodedata

from matplotlib.font_manager import FontProperties, findfont, get_font
from PIL import ImageFont

from render.graphs.options import GraphOptions

DPI = 72
#: graphite's default font name; cairo's "Sans" is fontconfig's sans-serif.
GRAPHITE_SANS = "sans"


@dataclasses.dataclass(frozen=True)
class Typeface:
    """One font at one size, with cairo-like extents (``max_ascent`` etc.) in pixels."""

    properties: FontProperties
    size: float
    max_ascent: float
    max_descent: float
    font: ImageFont.FreeTypeFont

    @property
    def max_height(self) -> float:
        return self.max_ascent + self.max_descent

    def width(self, text: str) -> float:
        """Advance width of ``text`` in pixels."""
        return self.font.getlength(text)


def typeface(options: GraphOptions, size: float | None = None) -> Typeface:
    """The request's font (fontName/fontBold/fontItalic) at ``size`` (default fontSize)."""
    size = options.font_size if size is None else size
    name = options.font_name
    families = ["sans-serif"] if name.lower() == GRAPHITE_SANS else [name, "sans-serif"]
    properties = FontProperties(
        family=families,
        size=size,
        weight="bold" if options.font_bold else "normal",
        style="italic" if options.font_italic else "normal",
    )
    path = findfont(properties)
    font = get_font(path)
    scale = size / font.units_per_EM
    return Typeface(
        properties,
        size,
        font.ascender * scale,
        -font.descender * scale,
        # BASIC: no shaping, like cairo's toy text API graphite uses; faster and total.
        ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.BASIC),
    )


def printable(text: str) -> str:
    """``text`` without control characters or lone surrogates, which fonts cannot draw."""
    return "".join(c for c in text if unicodedata.category(c) not in ("Cc", "Cs"))


def title_size(options: GraphOptions) -> float:
    """graphite draws titles ``floor(ln(size))`` larger than the other text."""
    return options.font_size + math.floor(math.log(options.font_size))
