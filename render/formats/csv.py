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

from render.formats.base import OutputOptions, Rendered, optional_values
from render.series import Series

CSV = "text/csv"


def render_csv(series_list: Sequence[Series], options: OutputOptions) -> Rendered:
    """graphite's ``renderViewCsv`` (maxDataPoints and jsonp do not apply)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, dialect="excel")
    for series in series_list:
        start, step = int(series.start), int(series.step)
        for i, value in enumerate(optional_values(series)):
            when = datetime.datetime.fromtimestamp(start + i * step, options.tz)
            writer.writerow((series.name, when.strftime("%Y-%m-%d %H:%M:%S"), value))
    return Rendered(buffer.getvalue().encode(), CSV)
