"""``format=json`` (and graphite's two other JSON dialects, dygraph and rickshaw).

graphite-web serialises with the standard ``json.dumps`` (floats by ``repr``,
``", "``/``": "`` separators) and then patches the text: ``NaN,`` becomes
``null,`` and ``Infinity,`` becomes ``1e9999,``. The patch is textual, so it
also applies inside names; it is reproduced here the same way so the bytes
match. Missing values are NaN inside a :class:`Series` and go through the same
patch, which is why a value is always followed by a comma in ``[value, ts]``.

``format=json`` without ``pretty`` is written piecewise: each series' head
(target and tags) as ``json.dumps`` writes it, with the same patch; then
``native.render_json.series_json`` writes the whole list in one buffer, every
datapoints text straight from its float64 array (``repr``-exact floats,
``null``/``1e9999`` already in place). Its readable twin is
:func:`series_json_py`; the patch cannot straddle the pieces because a
datapoints text never holds ``NaN`` or ``Infinity``.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping, Sequence

import numpy as np

from render.formats.base import OutputOptions, Rendered
from render.series import Series, consolidate_to_max_datapoints

try:
    from native import render_json as _native
except ImportError:  # not built: the readable twins serve
    _native = None

JSON = "application/json"
JAVASCRIPT = "text/javascript"
#: Most threads one JSON body is written by (the kernel gives each at least 16,384 points).
MAX_WRITER_THREADS = 4


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


def datapoints(series: Series) -> list[tuple[float | int | None, int]]:
    """``(value, timestamp)`` pairs (JSON arrays) with ``range(start, end + 1, step)``.

    Missing values stay NaN (the text patch turns them into ``null``).
    """
    timestamps = range(int(series.start), int(series.end) + 1, int(series.step))
    values = [math.nan if v is None else v for v in series.output_list()]
    return list(zip(values, timestamps, strict=False))


def value_text(value: float, is_int: bool = False) -> str:
    """One value as graphite's patched ``json.dumps`` writes it inside ``[value, ts]``.

    ``is_int``: graphite holds it as a Python int, written without a decimal point.
    """
    if math.isnan(value):
        return "null"
    if math.isinf(value):
        return "1e9999" if value > 0 else "-1e9999"
    return str(int(value)) if is_int else repr(value)


def datapoints_text_py(
    values: np.ndarray, start: int, step: int, count: int, skip_missing: bool = False,
    int_points: np.ndarray | None = None,
) -> tuple[bytes, int]:
    """``[[v, ts], ...]`` for the first ``count`` values and how many pairs it holds.

    What ``native.render_json.series_json`` writes per series, in Python;
    ``skip_missing`` leaves NaN values out (noNullPoints); values marked in
    ``int_points`` are written as ints (the native writer has no such marks).
    """
    if count < 0 or count > len(values):
        raise ValueError(f"cannot write count={count}: the series has {len(values)} values")
    ints = [False] * count if int_points is None else int_points[:count].tolist()
    pairs = [
        f"[{value_text(value, is_int)}, {start + i * step}]"
        for i, (value, is_int) in enumerate(zip(values[:count].tolist(), ints, strict=True))
        if not (skip_missing and math.isnan(value))
    ]
    return ("[" + ", ".join(pairs) + "]").encode(), len(pairs)


def series_json_py(
    heads: list[bytes],
    columns: list[np.ndarray],
    starts: np.ndarray,
    steps: np.ndarray,
    counts: np.ndarray,
    skip_missing: bool = False,
    threads: int = 1,
) -> bytes:
    """``[`` head datapoints ``}``, ... ``]``: the twin of ``native.render_json.series_json``.

    With ``skip_missing`` NaN values are left out and a series left with no
    points is dropped. ``threads`` is accepted for the same signature; the
    twin writes in one thread.
    """
    if not len(heads) == len(columns) == len(starts) == len(steps) == len(counts):
        raise ValueError(
            f"cannot write series={len(heads)}: heads, columns, starts, steps and counts differ in length"
        )
    parts = []
    for head, values, start, step, count in zip(heads, columns, starts.tolist(), steps.tolist(),
                                                counts.tolist(), strict=True):
        text, written = datapoints_text_py(values, start, step, count, skip_missing)
        if skip_missing and not written:
            continue
        parts.append(head + text + b"}")
    return b"[" + b", ".join(parts) + b"]"


series_json = _native.series_json if _native is not None else series_json_py

# what json.dumps writes between quotes unchanged (printable ASCII but " and \)
_VERBATIM = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")


def _json_string(text: str) -> str:
    return f'"{text}"' if _VERBATIM.fullmatch(text) else json.dumps(text)


def _json_tags(tags: Mapping[str, str]) -> str:
    return "{" + ", ".join(f"{_json_string(k)}: {_json_string(v)}" for k, v in tags.items()) + "}"


def series_head(series: Series) -> bytes:
    """``{"target": ..., "tags": ..., "datapoints": `` as graphite's patched json.dumps writes it."""
    head = f'{{"target": {_json_string(series.name)}, "tags": {_json_tags(series.tags)}, "datapoints": '
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
    body = _series_list_json(series_list, options.no_null_points)
    if options.jsonp is not None:
        return Rendered(options.jsonp.encode() + b"(" + body + b")", JAVASCRIPT)
    return Rendered(body, JSON)


def _series_list_json(series_list: Sequence[Series], skip_missing: bool) -> bytes:
    """The JSON list: runs of all-float series from the native writer, series with ints from the twin.

    A list of floats only (fetched data) is one native call, its buffer returned as it is.
    """
    if all(s.int_points is None for s in series_list):
        return _native_list(series_list, skip_missing)
    pieces: list[bytes] = []
    run: list[Series] = []

    def flush_run() -> None:
        if run:
            body = _native_list(run, skip_missing)
            if len(body) > 2:
                pieces.append(body[1:-1])
            run.clear()

    for series in series_list:
        if series.int_points is None:
            run.append(series)
            continue
        flush_run()
        text, written = datapoints_text_py(series.values, int(series.start), int(series.step),
                                           point_count(series), skip_missing, series.int_points)
        if written or not skip_missing:
            pieces.append(series_head(series) + text + b"}")
    flush_run()
    return b"[" + b", ".join(pieces) + b"]"


def _native_list(series_list: Sequence[Series], skip_missing: bool) -> bytes:
    return series_json(
        [series_head(s) for s in series_list],
        [s.values for s in series_list],
        np.array([s.start for s in series_list], dtype=np.int64),
        np.array([s.step for s in series_list], dtype=np.int64),
        np.array([point_count(s) for s in series_list], dtype=np.int64),
        skip_missing,
        writer_threads(),
    )


def writer_threads() -> int:
    """Threads the native writer may use for a long list: the CPUs this process may run on, up to 4."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_WRITER_THREADS))


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
    columns = [[_dygraph_value(v) for v in s.output_list()] for s in series_list]
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
        points = [{"x": x, "y": y} for x, y in zip(timestamps, series.output_list(), strict=False)]
        output.append({"target": series.name, "datapoints": points})
    return wrap(json.dumps(output, indent=2 if options.pretty else None), options)
