"""``format=json`` (and graphite's two other JSON dialects, dygraph and rickshaw).

graphite-web serialises with the standard ``json.dumps`` (floats by ``repr``,
``", "``/``": "`` separators) and then patches the text: ``NaN,`` becomes
``null,`` and ``Infinity,`` becomes ``1e9999,``. The patch is textual, so it
also applies inside names; it is reproduced here the same way so the bytes
match. Missing values are NaN inside a :class:`Series` and go through the same
patch, which is why a value is always followed by a comma in ``[value, ts]``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

from render.formats.base import OutputOptions, Rendered, optional_values
from render.series import Series, consolidate_to_max_datapoints

JSON = "application/json"
JAVASCRIPT = "text/javascript"


def graphite_dumps(data: object, pretty: bool = False) -> str:
    """``json.dumps`` followed by graphite's NaN/Infinity text substitution."""
    text = json.dumps(data, indent=2 if pretty else None)
    return text.replace("NaN,", "null,").replace("Infinity,", "1e9999,")


def wrap(text: str, options: OutputOptions, content_type: str = JSON) -> Rendered:
    """The JSON text as a response, wrapped as ``callback(...)`` when jsonp asks for it."""
    if options.jsonp is not None:
        return Rendered(f"{options.jsonp}({text})".encode(), JAVASCRIPT)
    return Rendered(text.encode(), content_type)


def datapoints(series: Series) -> list[tuple[float, int]]:
    """``(value, timestamp)`` pairs (JSON arrays) with ``range(start, end + 1, step)``."""
    timestamps = range(int(series.start), int(series.end) + 1, int(series.step))
    return list(zip(series.values.tolist(), timestamps, strict=False))


def _present(point: tuple[float, int]) -> bool:
    return not math.isnan(point[0])


def render_json(series_list: Sequence[Series], options: OutputOptions) -> Rendered:
    """graphite's ``renderViewJson``: ``[{"target", "tags", "datapoints"}, ...]``.

    Nothing is emitted unless at least one series has values; maxDataPoints
    consolidates each series (graphite's nudged buckets); noNullPoints drops
    missing points and then series left with none.
    """
    output: list[dict[str, object]] = []
    if any(len(s) for s in series_list):
        if options.max_data_points is not None:
            series_list = consolidate_to_max_datapoints(series_list, options.max_data_points)
        for series in series_list:
            points = datapoints(series)
            if options.no_null_points:
                points = [p for p in points if _present(p)]
                if not points:
                    continue
            output.append(
                {"target": series.name, "tags": dict(series.tags), "datapoints": points}
            )
    return wrap(graphite_dumps(output, options.pretty), options)


def _dygraph_value(value: float | None) -> str:
    if value is None:
        return "null"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)


def render_dygraph(series_list: Sequence[Series], options: OutputOptions) -> Rendered:
    """graphite's ``renderViewDygraph``: ``{"labels" : [...], "data" : [[ms, v...], ...]}``.

    Rows follow the first series' timestamps; a shorter series is padded with
    null and a longer one cut (graphite-web fails on both).
    """
    if not series_list:
        return wrap("{}", options)
    first = series_list[0]
    timestamps = range(int(first.start), int(first.end), int(first.step))
    columns = [[_dygraph_value(v) for v in optional_values(s)] for s in series_list]
    lines = []
    for row, timestamp in enumerate(timestamps):
        cells = "".join(", " + (c[row] if row < len(c) else "null") for c in columns)
        lines.append(f"[{timestamp}000{cells}]")
    labels = json.dumps(["Time", *(s.name for s in series_list)])
    return wrap(f'{{"labels" : {labels}, "data" : [{", ".join(lines)}]}}', options)


def render_rickshaw(series_list: Sequence[Series], options: OutputOptions) -> Rendered:
    """graphite's ``renderViewRickshaw``: ``[{"target", "datapoints": [{"x", "y"}, ...]}]``.

    Infinite values come out as ``Infinity`` (graphite does not patch this one).
    """
    output = []
    for series in series_list:
        timestamps = range(int(series.start), int(series.end), int(series.step))
        points = [{"x": x, "y": y} for x, y in zip(timestamps, optional_values(series), strict=False)]
        output.append({"target": series.name, "datapoints": points})
    return wrap(json.dumps(output, indent=2 if options.pretty else None), options)
