"""Colours the way graphite's image renderer names and parses them.

graphite-web accepts one of its own colour aliases (which are *not* the CSS
colours: its ``blue`` is ``#6464ff``, its ``darkgreen`` is pure green) or a
hex string ``RRGGBB`` / ``RRGGBBAA``, optionally prefixed by ``#`` or by a
URL-escaped ``%23``. Everything here returns RGBA floats in 0..1, ready for
matplotlib.
"""

from __future__ import annotations

import re
from types import MappingProxyType

RGBA = tuple[float, float, float, float]

#: graphite-web 1.1.10's ``colorAliases`` (8-bit RGB).
COLOR_ALIASES = MappingProxyType(
    {
        "black": (0, 0, 0),
        "white": (255, 255, 255),
        "blue": (100, 100, 255),
        "green": (0, 200, 0),
        "red": (200, 0, 50),
        "yellow": (255, 255, 0),
        "orange": (255, 165, 0),
        "purple": (200, 100, 255),
        "brown": (150, 100, 50),
        "cyan": (0, 255, 255),
        "aqua": (0, 150, 150),
        "gray": (175, 175, 175),
        "grey": (175, 175, 175),
        "magenta": (255, 0, 255),
        "pink": (255, 100, 100),
        "gold": (200, 200, 0),
        "rose": (200, 150, 200),
        "darkblue": (0, 0, 255),
        "darkgreen": (0, 255, 0),
        "darkred": (255, 0, 0),
        "darkgray": (111, 111, 111),
        "darkgrey": (111, 111, 111),
    }
)

#: The line colours graphite cycles through when a series has no colour of its own.
DEFAULT_COLOR_LIST = (
    "blue", "green", "red", "purple", "brown", "yellow",
    "aqua", "grey", "magenta", "pink", "gold", "rose",
)  # fmt: skip

DEFAULT_BACKGROUND = "white"
DEFAULT_FOREGROUND = "black"
DEFAULT_MAJOR_GRID = "rose"
DEFAULT_MINOR_GRID = "grey"
#: The border colour of legend swatches.
LEGEND_BOX_BORDER = "darkgrey"
#: The colour of the "No Data" text.
NO_DATA_COLOR = "red"

_HEX = re.compile(r"[0-9a-fA-F]{6}(?:[0-9a-fA-F]{2})?")


def parse_color(value: str) -> RGBA:
    """RGBA floats for a graphite colour alias or ``[#|%23]RRGGBB[AA]``.

    Raises ``ValueError`` saying what was wrong; callers add which parameter.
    """
    text = str(value).strip()
    alias = COLOR_ALIASES.get(text.lower())
    if alias is not None:
        r, g, b = alias
        return (r / 255.0, g / 255.0, b / 255.0, 1.0)
    if text.startswith("#"):
        text = text[1:]
    elif text.startswith("%23"):
        text = text[3:]
    if not _HEX.fullmatch(text):
        raise ValueError("not a graphite colour name nor RRGGBB[AA] hex")
    channels = [int(text[i : i + 2], 16) / 255.0 for i in range(0, len(text), 2)]
    if len(channels) == 3:
        channels.append(1.0)
    return (channels[0], channels[1], channels[2], channels[3])


def with_alpha(color: RGBA, alpha: float) -> RGBA:
    """``color`` with its alpha multiplied by ``alpha`` (graphite's ``alpha()`` on a colour)."""
    return (color[0], color[1], color[2], color[3] * alpha)


def to_hex(color: RGBA) -> str:
    """``#rrggbb`` (or ``#rrggbbaa`` when not opaque), as graphite's SVG metadata shows colours."""
    parts = [round(c * 255) for c in color]
    if parts[3] == 255:
        parts = parts[:3]
    return "#" + "".join(f"{p:02x}" for p in parts)
