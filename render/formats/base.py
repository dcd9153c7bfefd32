"""What every renderer takes and returns."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from render.series import Series


class UnknownFormat(ValueError):
    """A ``format`` Carbyne does not render."""


@dataclass(frozen=True)
class OutputOptions:
    """The request options output formats read (graphite's ``requestOptions``).

    ``jsonp`` is the callback name when the response must be wrapped;
    ``max_data_points`` and ``no_null_points`` only affect json, ``tz`` only
    csv, as in graphite-web.
    """

    tz: datetime.tzinfo = datetime.UTC
    jsonp: str | None = None
    pretty: bool = False
    max_data_points: int | None = None
    no_null_points: bool = False


@dataclass(frozen=True)
class Rendered:
    """A response body and its ``Content-Type``."""

    body: bytes
    content_type: str


@dataclass(frozen=True)
class Format:
    """A named renderer."""

    name: str
    render: Callable[[Sequence[Series], OutputOptions], Rendered]


def series_info(series: Series) -> dict[str, object]:
    """graphite's ``TimeSeries.getInfo()``: the dict pickle and msgpack carry per series.

    Plain Python types only, so pickles never reference numpy.
    """
    return {
        "name": str(series.name),
        "start": int(series.start),
        "end": int(series.end),
        "step": int(series.step),
        "values": series.output_list(),
        "pathExpression": str(series.path_expression),
        "valuesPerPoint": 1,
        "consolidationFunc": str(series.consolidation_func),
        "xFilesFactor": float(series.x_files_factor),
    }
