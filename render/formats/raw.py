"""``format=raw``: ``name,start,end,step|v1,v2,...`` and a newline per series.

Values are written with ``repr`` as graphite-web does, so a missing value is
``None`` and an infinite one ``inf``; ``end`` is the exclusive end.
"""

from __future__ import annotations

from collections.abc import Sequence

from render.formats.base import OutputOptions, Rendered, optional_values
from render.series import Series

TEXT = "text/plain"


def raw_line(series: Series) -> str:
    """One series as graphite's raw line (with its newline)."""
    header = f"{series.name},{int(series.start)},{int(series.end)},{int(series.step)}"
    return f"{header}|{','.join(map(repr, optional_values(series)))}\n"


def render_raw(series_list: Sequence[Series], options: OutputOptions) -> Rendered:
    """graphite's ``renderViewRaw``."""
    return Rendered("".join(raw_line(s) for s in series_list).encode(), TEXT)
