"""``format=raw``: ``name,start,end,step|v1,v2,...`` and a newline per series.

Values are written with ``repr`` as graphite-web does, so a missing value is
``None`` and an infinite one ``inf``; ``end`` is the exclusive end. The value
list comes from ``native.render_json.raw_values`` (its twin:
:func:`raw_values_py`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from render.formats.base import OutputOptions, Rendered
from render.series import Series

try:
    from native.render_json import raw_values as _native_raw_values
except ImportError:  # not built: the readable twin serves
    _native_raw_values = None

TEXT = "text/plain"


def raw_values_py(values: np.ndarray) -> bytes:
    """``','.join(map(repr, values))`` with NaN as None: the twin of ``native.render_json.raw_values``."""
    return ",".join(map(repr, [None if math.isnan(v) else v for v in values.tolist()])).encode()


raw_values = _native_raw_values if _native_raw_values is not None else raw_values_py


def raw_line(series: Series) -> bytes:
    """One series as graphite's raw line (with its newline)."""
    header = f"{series.name},{int(series.start)},{int(series.end)},{int(series.step)}|"
    if series.int_points is not None:  # ints print without a decimal point; the kernel knows floats only
        return header.encode() + ",".join(map(repr, series.output_list())).encode() + b"\n"
    return header.encode() + raw_values(series.values) + b"\n"


def render_raw(series_list: Sequence[Series], options: OutputOptions) -> Rendered:
    """graphite's ``renderViewRaw``."""
    return Rendered(b"".join(raw_line(s) for s in series_list), TEXT)
