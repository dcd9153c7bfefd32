"""Whole HTTP answers of the render API: Carbyne's Flask app vs graphite-web 1.1.10's Django views.

Both read the same whisper files with no carbon cache, through their test
clients (no sockets). Each case first checks the two bodies are identical,
then times Carbyne with pytest-benchmark and graphite-web with a plain loop;
``extra_info["ratio"]`` is ``graphite_s / carbyne_s`` (medians).

Two data sets:

* issue 4's: 1,000 series of 1 hour at 10 s (360 points, a gap every 13),
  files of 10 s for 6 h + 1 min for 7 d; JSON of 1, 100 and 1,000 series and
  of sumSeries / movingAverage / aliasByNode over the 1,000. These cases also
  carry ``goal_ms`` (the issue's target) and ``carbyne_ms``/``graphite_ms``;
  benchmarks/RESULTS-render.md quotes them.
* 200 series, 1 day at 60 s (1,440 points, a gap every 17): JSON with and
  without maxDataPoints, a Grafana-style aliasSub(sumSeries), raw and csv.

Run: ``python3 -m pytest benchmarks/test_bench_render_api.py --benchmark-only``.
"""
from __future__ import annotations

import contextlib
import gc
from pathlib import Path

import numpy as np
import pytest

from benchmarks.graphite_web import setup_graphite_web
from render.app import create_app
from render.config import RenderConfig
from render.wsgi import tune_gc
from storage import whisper
from storage.paths import metric_path

NOW = 1_700_000_000 - 1_700_000_000 % 3600
STEP = 60
POINTS = 1440
SERIES = 200
ROUNDS = 5
WINDOW = {"from": str(NOW - 86400), "until": str(NOW), "now": str(NOW)}

HOUR_STEP = 10
HOUR_SERIES = 1000
HOUR_WINDOW = {"from": str(NOW - 3600), "until": str(NOW), "now": str(NOW)}

#: issue 4's cases: (target, series in the answer, rounds, goal in ms)
HOUR_CASES = {
    "json 1 series x 360": ("bench.host00.cpu00", 1, 50, 1.0),
    "json 100 series x 360": ("bench.host00.*", 100, 30, 5.0),
    "json 1000 series x 360": ("bench.*.*", 1000, 15, 40.0),
    "json sumSeries over 1000": ("sumSeries(bench.*.*)", 1, 15, 40.0),
    "json movingAverage over 1000": ("movingAverage(bench.*.*,5)", 1000, 11, 40.0),
    "json aliasByNode over 1000": ("aliasByNode(bench.*.*,1,2)", 1000, 11, 40.0),
}

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
def hour_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1,000 files: 10 s for 6 h, 1 min for 7 d; the last hour filled (a gap every 13 points)."""
    root = tmp_path_factory.mktemp("render-api-hour")
    rng = np.random.default_rng(7)
    for i in range(HOUR_SERIES):
        path = metric_path(root, f"bench.host{i // 100:02d}.cpu{i % 100:02d}")
        path.parent.mkdir(parents=True, exist_ok=True)
        whisper.create(str(path), [(HOUR_STEP, 2160), (60, 10080)], 0.0, "average")
        values = rng.random(360) * 100
        whisper.update_many(
            str(path), [(NOW - k * HOUR_STEP, float(v)) for k, v in enumerate(values) if k % 13 != 5], now=NOW
        )
    return root


@contextlib.contextmanager
def graphite_reading(data_dir: Path):
    """graphite-web's Django test client reading ``data_dir``."""
    setup_graphite_web()
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
def graphite(data_dir: Path):
    with graphite_reading(data_dir) as client:
        yield client


@pytest.fixture(scope="module")
def carbyne(data_dir: Path):
    return create_app(RenderConfig(data_dir=data_dir)).test_client()


@pytest.fixture(scope="module")
def hour_clients(hour_dir: Path):
    """(Carbyne, graphite-web) test clients over the issue's files; one app, as one worker.

    The process's garbage collector is tuned as a Carbyne render worker's is
    (``render.wsgi.tune_gc``); graphite-web, timed in the same process, gets
    the same setting.
    """
    thresholds = gc.get_threshold()
    with graphite_reading(hour_dir) as graphite:
        app = create_app(RenderConfig(data_dir=hour_dir)).test_client()
        tune_gc()
        try:
            yield app, graphite
        finally:
            gc.unfreeze()
            gc.set_threshold(*thresholds)


@pytest.mark.parametrize("case", list(HOUR_CASES))
def test_render_issue_goals(case, benchmark, ratio_table, hour_clients) -> None:
    """issue 4: JSON over 1 h at 10 s, against graphite-web and the goal."""
    target, series, rounds, goal_ms = HOUR_CASES[case]
    params = {**HOUR_WINDOW, "target": target, "format": "json"}
    carbyne, graphite = hour_clients
    ours = carbyne.get("/render", query_string=params)
    theirs = graphite.get("/render", params)
    assert ours.status_code == theirs.status_code == 200
    assert ours.data == theirs.content, case
    assert ours.data.count(b'"target": ') == series
    benchmark.pedantic(lambda: carbyne.get("/render", query_string=params), rounds=rounds, iterations=1,
                       warmup_rounds=1)
    reference = ratio_table.time_median(lambda: graphite.get("/render", params), max(5, rounds // 3))
    ratio_table.add(benchmark, f"/render {case}", "Flask app", reference)
    carbyne_ms = benchmark.stats.stats.median * 1e3
    benchmark.extra_info.update({
        "carbyne_ms": round(carbyne_ms, 3),
        "carbyne_min_ms": round(benchmark.stats.stats.min * 1e3, 3),
        "graphite_ms": round(reference * 1e3, 3),
        "goal_ms": goal_ms,
        "goal_ratio": round(reference * 1e3 / goal_ms, 1),
        "meets_goal": carbyne_ms <= goal_ms,
    })


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
