"""``format=csv``: one ``name,YYYY-MM-DD HH:MM:SS,value`` row per point.

graphite-web writes rows with the ``csv`` module's excel dialect (``\\r\\n``
line ends, quoting only when needed), floats by ``repr``, a missing value as
an empty field, and the timestamp in the request's time zone.
"""

from __future__ import annotations

import csv
import datetime
import io
from collections.abc import Sequence

import numpy as np

from render.formats.base import OutputOptions, Rendered, optional_values
from render.series import Series

CSV = "text/csv"
_UTC_NAMES = frozenset({"UTC", "Etc/UTC", "Etc/UCT", "UCT", "GMT", "Etc/GMT", "Zulu", "Etc/Zulu", "Universal"})


def _fixed_offset(tz: datetime.tzinfo) -> int | None:
    """Seconds east of UTC when ``tz`` never changes its offset, else None."""
    if isinstance(tz, datetime.timezone):
        return int(tz.utcoffset(None).total_seconds())
    if getattr(tz, "key", None) in _UTC_NAMES:
        return 0
    return None


def wall_times(start: int, step: int, count: int, tz: datetime.tzinfo) -> list[str]:
    """``YYYY-MM-DD HH:MM:SS`` of ``start + i * step`` in ``tz`` for ``i < count``.

    A fixed-offset zone (UTC, the default) is formatted in one vectorised
    pass; others go through ``datetime.fromtimestamp`` point by point, so
    daylight-saving changes land exactly where the zone database puts them.
    """
    offset = _fixed_offset(tz)
    if offset is None:
        return [
            datetime.datetime.fromtimestamp(start + i * step, tz).strftime("%Y-%m-%d %H:%M:%S")
            for i in range(count)
        ]
    seconds = np.arange(count, dtype=np.int64) * step + (start + offset)
    text = np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s")
    return [t.replace("T", " ") for t in text.tolist()]


def render_csv(series_list: Sequence[Series], options: OutputOptions) -> Rendered:
    """graphite's ``renderViewCsv`` (maxDataPoints and jsonp do not apply)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, dialect="excel")
    for series in series_list:
        values = optional_values(series)
        times = wall_times(int(series.start), int(series.step), len(values), options.tz)
        writer.writerows(zip([series.name] * len(values), times, values, strict=True))
    return Rendered(buffer.getvalue().encode(), CSV)
