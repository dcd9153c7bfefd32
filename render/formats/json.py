"""``format=json`` (and graphite's two other JSON dialects, dygraph and rickshaw).

graphite-web serialises with the standard ``json.dumps`` (floats by ``repr``,
``", "``/``": "`` separators) and then patches the text: ``NaN,`` becomes
``null,`` and ``Infinity,`` becomes ``1e9999,``. The patch is textual, so it
also applies inside names; it is reproduced here the same way so the bytes
match. Missing values are NaN inside a :class:`Series` and go through the same
patch, which is why a value is always followed by a comma in ``[value, ts]``.

``format=json`` without ``pretty`` is written piecewise: each series' header
(target and tags) by ``json.dumps`` with the same patch, its datapoints by
``native.render_json.datapoints_json`` straight from the float64 array
(``repr``-exact floats, ``null``/``1e9999`` already in place). Its readable
twin is :func:`datapoints_text_py`; the patch cannot straddle the pieces
because a datapoints text never holds ``NaN`` or ``Infinity``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import numpy as np

from render.formats.base import OutputOptions, Rendered, optional_values
from render.series import Series, consolidate_to_max_datapoints

try:
    from native.render_json import datapoints_json as _native_datapoints
except ImportError:  # not built: the readable twin serves
    _native_datapoints = None

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


def point_count(series: Series) -> int:
    """How many ``[value, timestamp]`` pairs graphite writes: values zipped with ``range(start, end + 1, step)``."""
    return min(len(series.values), len(range(int(series.start), int(series.end) + 1, int(series.step))))


def datapoints(series: Series) -> list[tuple[float, int]]:
    """``(value, timestamp)`` pairs (JSON arrays) with ``range(start, end + 1, step)``."""
    timestamps = range(int(series.start), int(series.end) + 1, int(series.step))
    return list(zip(series.values.tolist(), timestamps, strict=False))


def value_text(value: float) -> str:
    """One value as graphite's patched ``json.dumps`` writes it inside ``[value, ts]``."""
    if math.isnan(value):
        return "null"
    if math.isinf(value):
        return "1e9999" if value > 0 else "-1e9999"
    return repr(value)


def datapoints_text_py(
    values: np.ndarray, start: int, step: int, count: int, skip_missing: bool = False
) -> tuple[bytes, int]:
    """``[[v, ts], ...]`` for the first ``count`` values and how many pairs it holds.

    The pure twin of ``native.render_json.datapoints_json``; ``skip_missing``
    leaves NaN values out (noNullPoints).
    """
    if count < 0 or count > len(values):
        raise ValueError(f"cannot write count={count}: the series has {len(values)} values")
    pairs = [
        f"[{value_text(value)}, {start + i * step}]"
        for i, value in enumerate(values[:count].tolist())
        if not (skip_missing and math.isnan(value))
    ]
    return ("[" + ", ".join(pairs) + "]").encode(), len(pairs)


datapoints_text = _native_datapoints if _native_datapoints is not None else datapoints_text_py


def _series_head(series: Series) -> bytes:
    """``{"target": ..., "tags": ..., "datapoints": `` with graphite's text patch applied."""
    head = f'{{"target": {json.dumps(series.name)}, "tags": {json.dumps(dict(series.tags))}, "datapoints": '
    return _patch(head).encode()


def _patch(text: str) -> str:
    return text.replace("NaN,", "null,").replace("Infinity,", "1e9999,")


def render_json(series_list: Sequence[Series], options: OutputOptions) -> Rendered:
    """graphite's ``renderViewJson``: ``[{"target", "tags", "datapoints"}, ...]``.

    Nothing is emitted unless at least one series has values; maxDataPoints
    consolidates each series (graphite's nudged buckets); noNullPoints drops
    missing points and then series left with none.
    """
    if not any(len(s) for s in series_list):
        return wrap(graphite_dumps([], options.pretty), options)
    if options.max_data_points is not None:
        series_list = consolidate_to_max_datapoints(series_list, options.max_data_points)
    if options.pretty:
        return wrap(graphite_dumps(_json_objects(series_list, options.no_null_points), True), options)
    parts = []
    for series in series_list:
        text, written = datapoints_text(
            series.values, int(series.start), int(series.step), point_count(series), options.no_null_points
        )
        if options.no_null_points and not written:
            continue
        parts.append(_series_head(series) + text + b"}")
    body = b"[" + b", ".join(parts) + b"]"
    if options.jsonp is not None:
        return Rendered(options.jsonp.encode() + b"(" + body + b")", JAVASCRIPT)
    return Rendered(body, JSON)


def _json_objects(series_list: Sequence[Series], no_null_points: bool) -> list[dict[str, object]]:
    """The list graphite hands ``json.dumps`` (used for ``pretty`` output)."""
    output: list[dict[str, object]] = []
    for series in series_list:
        points = datapoints(series)
        if no_null_points:
            points = [p for p in points if not math.isnan(p[0])]
            if not points:
                continue
        output.append({"target": series.name, "tags": dict(series.tags), "datapoints": points})
    return output


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
