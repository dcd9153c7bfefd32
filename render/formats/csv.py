"""``format=csv``: one ``name,YYYY-MM-DD HH:MM:SS,value`` row per point.

graphite-web writes rows with the ``csv`` module's excel dialect (``\\r\\n``
line ends, quoting only when needed), floats by ``repr``, a missing value as
an empty field, and the timestamp in the request's time zone. Here the name
field is quoted once per series by the ``csv`` module itself and the rows are
written by ``native.render_json.csv_rows`` (twin: :func:`csv_rows_py`).
"""

from __future__ import annotations

import csv
import datetime
import io
import math
from collections.abc import Sequence

import numpy as np

from render.formats.base import OutputOptions, Rendered
from render.series import Series

try:
    from native.render_json import csv_rows as _native_csv_rows
except ImportError:  # not built: the readable twin serves
    _native_csv_rows = None

CSV = "text/csv"
WALL_TIME_CHARS = len("YYYY-MM-DD HH:MM:SS")
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


def csv_rows_py(name: bytes, values: np.ndarray, times: bytes) -> bytes:
    """``name,time,value\\r\\n`` per value (``times``: 19 characters each, end to end).

    The twin of ``native.render_json.csv_rows``: ``repr`` values, an empty
    field for NaN.
    """
    if len(times) != len(values) * WALL_TIME_CHARS:
        raise ValueError(f"cannot write count={len(values)}: times hold {len(times)} characters, "
                         f"not {WALL_TIME_CHARS} per value")
    rows = []
    for i, value in enumerate(values.tolist()):
        time = times[i * WALL_TIME_CHARS:(i + 1) * WALL_TIME_CHARS]
        rows.append(name + b"," + time + b"," + ("" if math.isnan(value) else repr(value)).encode() + b"\r\n")
    return b"".join(rows)


csv_rows = _native_csv_rows if _native_csv_rows is not None else csv_rows_py


def name_field(name: str) -> bytes:
    """The series name as the csv module writes it inside a row (quoted when it must be)."""
    buffer = io.StringIO()
    csv.writer(buffer, dialect="excel").writerow([name, "-"])
    return buffer.getvalue()[: -len(",-\r\n")].encode()


def _series_rows(series: Series, tz: datetime.tzinfo) -> bytes:
    times = wall_times(int(series.start), int(series.step), len(series.values), tz)
    text = "".join(times).encode()
    # a year outside 1000-9999, or ints among the values: the csv module itself
    if len(text) != len(times) * WALL_TIME_CHARS or series.int_points is not None:
        buffer = io.StringIO()
        values = series.output_list()
        csv.writer(buffer, dialect="excel").writerows(
            zip([series.name] * len(values), times, values, strict=True))
        return buffer.getvalue().encode()
    return csv_rows(name_field(series.name), series.values, text)


def render_csv(series_list: Sequence[Series], options: OutputOptions) -> Rendered:
    """graphite's ``renderViewCsv`` (maxDataPoints and jsonp do not apply)."""
    return Rendered(b"".join(_series_rows(s, options.tz) for s in series_list), CSV)
