"""Whole HTTP answers of the render API: Carbyne's Flask app vs graphite-web 1.1.10's Django views.

Both read the same whisper files (200 series, 1 day at 60 s: 1,440 points
each, a gap every 17 points) with no carbon cache, through their test
clients (no sockets). Each case first checks the two bodies are identical,
then times Carbyne with pytest-benchmark and graphite-web with a plain loop;
``extra_info["ratio"]`` is ``graphite_s / carbyne_s``.
Run: ``python3 -m pytest benchmarks/test_bench_render_api.py --benchmark-only``.
"""
from __future__ import annotations

import contextlib
import importlib.metadata
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from render.app import create_app
from render.config import RenderConfig
from storage import whisper
from storage.paths import metric_path

NOW = 1_700_000_000 - 1_700_000_000 % 3600
STEP = 60
POINTS = 1440
SERIES = 200
ROUNDS = 5
WINDOW = {"from": str(NOW - 86400), "until": str(NOW), "now": str(NOW)}

CASES = {
    "json 200x1440": {"target": "bench.*.*", "format": "json"},
    "json 200x1440 maxDataPoints=300": {"target": "bench.*.*", "format": "json", "maxDataPoints": "300"},
    "json sumSeries+aliasSub (Grafana)": {
        "target": 'aliasSub(sumSeries(bench.*.*), "(^.*$)", "\\1 A")', "format": "json", "maxDataPoints": "800",
    },
    "raw 200x1440": {"target": "bench.*.*", "format": "raw"},
    "csv 200x1440": {"target": "bench.*.*", "format": "csv"},
}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("render-api-bench")
    rng = np.random.default_rng(11)
    for i in range(SERIES):
        path = metric_path(root, f"bench.host{i // 20:02d}.cpu{i % 20:02d}")
        path.parent.mkdir(parents=True, exist_ok=True)
        whisper.create(str(path), [(STEP, 2 * POINTS)], 0.0, "average")
        values = np.round(rng.random(POINTS) * 100, 3)
        whisper.update_many(
            str(path), [(NOW - k * STEP, float(v)) for k, v in enumerate(values) if k % 17 != 3], now=NOW
        )
    return root


@pytest.fixture(scope="module")
def graphite(data_dir: Path):
    """graphite-web's Django test client reading ``data_dir``."""
    webapp = str(importlib.metadata.distribution("graphite-web").locate_file("opt/graphite/webapp"))
    if webapp not in sys.path:
        sys.path.append(webapp)
    from django.conf import settings

    if not settings.configured:
        if "GRAPHITE_STORAGE_DIR" not in os.environ:
            storage = tempfile.mkdtemp(prefix="carbyne-bench-api-")
            os.makedirs(os.path.join(storage, "log", "webapp"))
            os.environ["GRAPHITE_STORAGE_DIR"] = storage
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "graphite.settings")
        import django

        with contextlib.redirect_stdout(None), contextlib.redirect_stderr(None):
            django.setup()
    from django.core.management import call_command
    from django.test import Client
    from graphite.finders.standard import StandardFinder
    from graphite.readers import whisper as whisper_reader
    from graphite.storage import STORE

    call_command("migrate", verbosity=0, interactive=False)  # treejson reads a user profile
    saved = (STORE.finders, whisper_reader.merge_with_carbonlink)
    STORE.finders = [StandardFinder([str(data_dir)])]
    # no carbon cache on either side (graphite-web would try 127.0.0.1:7002 per metric)
    whisper_reader.merge_with_carbonlink = lambda metric, start, step, values, *rest: values
    try:
        yield Client()
    finally:
        STORE.finders, whisper_reader.merge_with_carbonlink = saved


@pytest.fixture(scope="module")
def carbyne(data_dir: Path):
    return create_app(RenderConfig(data_dir=data_dir)).test_client()


@pytest.mark.parametrize("case", list(CASES))
def test_render_api(case, benchmark, ratio_table, carbyne, graphite) -> None:
    params = {**WINDOW, **CASES[case]}
    ours = carbyne.get("/render", query_string=params)
    theirs = graphite.get("/render", params)
    assert ours.status_code == theirs.status_code == 200
    assert ours.data == theirs.content, case

    benchmark.pedantic(lambda: carbyne.get("/render", query_string=params), rounds=ROUNDS, iterations=1)
    reference = ratio_table.time_median(lambda: graphite.get("/render", params), ROUNDS)
    ratio_table.add(benchmark, f"/render {case}", "Flask app", reference)


def test_metrics_find(benchmark, ratio_table, carbyne, graphite) -> None:
    params = {"query": "bench.*.*"}
    assert carbyne.get("/metrics/find", query_string=params).data == graphite.get("/metrics/find", params).content
    benchmark.pedantic(lambda: carbyne.get("/metrics/find", query_string=params), rounds=ROUNDS, iterations=1)
    reference = ratio_table.time_median(lambda: graphite.get("/metrics/find", params), ROUNDS)
    ratio_table.add(benchmark, "/metrics/find treejson 200 leaves", "Flask app", reference)
