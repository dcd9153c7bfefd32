"""Data output formats of ``/render``: one module per format, one table naming them.

Each renderer turns the evaluated series into the exact bytes graphite-web
1.1.10 answers with (its ``renderView<Format>`` views), plus the content type.
Image formats (png, svg, pdf) are drawn by :mod:`render.graphs`; any other
name gets a clear error instead of graphite's silent PNG fallback.
"""

from __future__ import annotations

from types import MappingProxyType

from render.formats import csv, json, msgpack, pickle, raw
from render.formats.base import Format, OutputOptions, Rendered, UnknownFormat

IMAGE_FORMATS = ("png", "svg", "pdf")

FORMATS = MappingProxyType(
    {
        "json": Format("json", json.render_json),
        "csv": Format("csv", csv.render_csv),
        "raw": Format("raw", raw.render_raw),
        "pickle": Format("pickle", pickle.render_pickle),
        "msgpack": Format("msgpack", msgpack.render_msgpack),
        "dygraph": Format("dygraph", json.render_dygraph),
        "rickshaw": Format("rickshaw", json.render_rickshaw),
    }
)


def get_format(name: str) -> Format:
    """The data renderer called ``name``; UnknownFormat names the choices."""
    try:
        return FORMATS[name]
    except KeyError:
        if name in IMAGE_FORMATS:
            reason = "an image format, drawn by render.graphs"
        else:
            reason = "expected one of " + ", ".join((*FORMATS, *IMAGE_FORMATS))
        raise UnknownFormat(f"cannot render format={name!r}: {reason}") from None


__all__ = [
    "FORMATS",
    "IMAGE_FORMATS",
    "Format",
    "OutputOptions",
    "Rendered",
    "UnknownFormat",
    "get_format",
]
