"""Graph rendering: render.graphs (matplotlib Agg/SVG/PDF) vs graphite-web 1.1.10's cairo glyph.

Workloads: 10 series x 360 points at the default 330x250 (the target is under
100 ms per PNG), the same as SVG and PDF, and a deploy-overlay graph (two
series and a drawAsInfinite event) at 640x300. graphite-web's ``LineGraph``
mutates its series, so it gets fresh ``TimeSeries`` each round (built outside
the timing). Answers are checked: both PNGs have the requested size, and on the
deploy graph both engines put the event's vertical line in the same column
(within 2 px), i.e. the same layout.
Run: ``python3 -m pytest benchmarks/test_bench_graphs.py``.
"""

from __future__ import annotations

import importlib.metadata
import io
import os
import sys
from datetime import UTC

import numpy as np
import pytest
from PIL import Image

from render.graphs import render_graph
from render.series import Series

START = 1_699_999_200
STEP = 60
POINTS = 360
END = START + POINTS * STEP
EVENT_INDEX = 250


def _values() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [rng.random(POINTS).cumsum() for _ in range(10)]


def _deploy_values() -> list[np.ndarray]:
    t = np.arange(POINTS)
    event = np.full(POINTS, np.nan)
    event[EVENT_INDEX] = 1.0
    return [120 + 15 * np.sin(t / 9), 40 + 6 * np.cos(t / 7), event]


DEPLOY_NAMES = ["api.latency", "api.errors", 'drawAsInfinite(events("deploy"))']
DEPLOY_PARAMS = {"width": "640", "height": "300", "title": "deploy"}


@pytest.fixture(scope="module")
def graphite_glyph():
    webapp = importlib.metadata.distribution("graphite-web").locate_file("opt/graphite/webapp")
    if str(webapp) not in sys.path:
        sys.path.insert(0, str(webapp))
    storage = os.path.join(
        os.environ.get("TMPDIR", "/tmp"), f"carbyne-bench-graphite-{os.getpid()}"
    )
    os.makedirs(os.path.join(storage, "log", "webapp"), exist_ok=True)
    os.environ.setdefault("GRAPHITE_STORAGE_DIR", storage)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "graphite.settings")
    import django

    django.setup()
    try:
        from graphite.render import glyph
        from graphite.render.datalib import TimeSeries
    except ImportError as error:  # cairocffi needs libcairo2
        pytest.skip(f"graphite-web's glyph cannot draw here: {error}")
    return glyph, TimeSeries


def _pixels(body: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(body)).convert("RGB"))


def _event_column(pixels: np.ndarray) -> int:
    """The column most covered by the event's red (cairo antialiases it over two columns)."""
    channels = pixels.astype(int)
    reddish = (channels[:, :, 0] - channels[:, :, 1] > 60) & (
        channels[:, :, 0] - channels[:, :, 2] > 40
    )
    hits = reddish.sum(axis=0)
    assert hits.max() > 0.5 * pixels.shape[0]
    return int(hits.argmax())


def _ten_series() -> list[Series]:
    return [Series(f"servers.web{i}.cpu", START, END, STEP, v) for i, v in enumerate(_values())]


@pytest.mark.parametrize("fmt", ["png", "svg", "pdf"])
def test_ten_series_360_points(benchmark, ratio_table, graphite_glyph, fmt):
    series_list = _ten_series()
    body, content_type = benchmark(render_graph, series_list, {}, fmt, START, END, UTC)
    assert content_type.startswith(
        {"png": "image/png", "svg": "image/svg", "pdf": "application"}[fmt]
    )
    if fmt == "png":
        assert _pixels(body).shape == (250, 330, 3)
    glyph, time_series = graphite_glyph

    def graphite() -> bytes:
        data = [time_series(s.name, START, END, STEP, s.values.tolist()) for s in series_list]
        buffer = io.BytesIO()
        glyph.LineGraph(data=data, width=330, height=250, outputFormat=fmt, tz="UTC").output(buffer)
        return buffer.getvalue()

    if fmt == "png":
        assert _pixels(graphite()).shape == (250, 330, 3)
    reference = ratio_table.time_median(graphite, rounds=15)
    ratio_table.add(benchmark, f"graph 10x360 {fmt}", "graphite-web glyph (cairo)", reference)
    benchmark.extra_info["carbyne_ms"] = round(benchmark.stats.stats.median * 1000, 1)
    benchmark.extra_info["graphite_ms"] = round(reference * 1000, 1)


def test_deploy_overlay(benchmark, ratio_table, graphite_glyph):
    values = _deploy_values()
    series_list = [
        Series(name, START, END, STEP, v, options={"drawAsInfinite": True} if i == 2 else None)
        for i, (name, v) in enumerate(zip(DEPLOY_NAMES, values, strict=True))
    ]
    body, _ = benchmark(render_graph, series_list, DEPLOY_PARAMS, "png", START, END, UTC)
    ours = _pixels(body)
    glyph, time_series = graphite_glyph

    def graphite() -> bytes:
        data = []
        for name, v in zip(DEPLOY_NAMES, values, strict=True):
            series = time_series(name, START, END, STEP, [None if np.isnan(x) else x for x in v])
            if name.startswith("drawAsInfinite"):
                series.options["drawAsInfinite"] = True
            data.append(series)
        buffer = io.BytesIO()
        glyph.LineGraph(data=data, width=640, height=300, title="deploy", outputFormat="png",
                        tz="UTC").output(buffer)  # fmt: skip
        return buffer.getvalue()

    theirs = _pixels(graphite())
    assert ours.shape == theirs.shape == (300, 640, 3)
    assert abs(_event_column(ours) - _event_column(theirs)) <= 2
    reference = ratio_table.time_median(graphite, rounds=15)
    ratio_table.add(
        benchmark, "graph deploy overlay 640x300 png", "graphite-web glyph (cairo)", reference
    )
    benchmark.extra_info["carbyne_ms"] = round(benchmark.stats.stats.median * 1000, 1)
    benchmark.extra_info["graphite_ms"] = round(reference * 1000, 1)
