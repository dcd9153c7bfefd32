"""Target evaluation, Carbyne's Evaluator vs graphite-web 1.1.10's evaluateTarget, same whisper files.

Series are 1 hour at 10 s (360 points) under ``bench.host<h>.cpu<c>``. Each
case checks both engines return the same series, then times them; graphite-web
is timed with a plain loop (best of several runs) and the ratio
``graphite_s / carbyne_s`` (how many times faster Carbyne is) goes in
``extra_info``. No carbon cache on either side.
Run: ``python3 -m pytest benchmarks/test_bench_render_eval.py --benchmark-only``.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest

from benchmarks.graphite_web import setup_graphite_web
from render.datasource import DataSource
from render.evaluator import Evaluator
from render.functions.registry import RequestContext, default_registry
from storage import whisper
from storage.paths import metric_path

NOW = 1_700_000_000 - 1_700_000_000 % 3600
STEP = 10
SIZES = (1, 100, 1000)


def metric_names(count: int) -> list[str]:
    return [f"bench.host{i // 100:02d}.cpu{i % 100:02d}" for i in range(count)]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1000 files: 10 s for 6 h, 1 min for 7 d; the last hour filled (a gap every 13 points)."""
    root = tmp_path_factory.mktemp("render-bench")
    rng = np.random.default_rng(7)
    for name in metric_names(max(SIZES)):
        path = metric_path(root, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        whisper.create(str(path), [(STEP, 2160), (60, 10080)], 0.0, "average")
        values = rng.random(360) * 100
        whisper.update_many(
            str(path),
            [(NOW - k * STEP, float(v)) for k, v in enumerate(values) if k % 13 != 5],
            now=NOW,
        )
    return root


class _NoCache:
    def query(self, metric: str) -> list:
        return []


@pytest.fixture(scope="module")
def graphite(data_dir: Path):
    """``run(target)``: graphite-web's evaluateTarget over ``data_dir`` for the last hour."""
    setup_graphite_web()
    import pytz
    from graphite import storage
    from graphite.finders.standard import StandardFinder
    from graphite.readers import utils
    from graphite.render import datalib
    from graphite.render.evaluator import evaluateTarget
    from graphite.util import epoch_to_dt

    saved = datalib.STORE, utils.CarbonLink
    datalib.STORE = storage.Store(finders=[StandardFinder([str(data_dir)])])
    utils.CarbonLink = _NoCache

    def run(target: str):
        context = {
            "startTime": epoch_to_dt(NOW - 3600), "endTime": epoch_to_dt(NOW), "now": epoch_to_dt(NOW),
            "localOnly": False, "template": {}, "tzinfo": pytz.utc, "forwardHeaders": {},
            "sourceIdHeaders": {}, "data": [], "prefetched": {}, "xFilesFactor": 0.0,
            "maxDataPoints": None, "targets": [target], "maxStep": None,
        }
        return evaluateTarget(context, target)

    yield run
    datalib.STORE, utils.CarbonLink = saved


def _same(ours, theirs) -> None:
    assert [s.name for s in ours] == [s.name for s in theirs]
    for mine, their in zip(ours, theirs, strict=True):
        assert (mine.start, mine.end, mine.step) == (their.start, their.end, their.step)
        expected = [math.nan if v is None else v for v in their]
        np.testing.assert_allclose(mine.values, expected, rtol=1e-12, equal_nan=True)


def _best_time(run, rounds: int) -> float:
    best = math.inf
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def compare(benchmark, graphite, data_dir: Path, target: str, rounds: int) -> None:
    missing = [n for n in ("sumSeries", "movingAverage", "aliasByNode") if n + "(" in target
               and n not in default_registry()]
    if missing:
        pytest.skip(f"not in the registry yet: {missing}")
    evaluator = Evaluator(DataSource(data_dir))
    ctx = RequestContext(start=NOW - 3600, end=NOW, now=NOW)

    def ours():
        return evaluator.evaluate([target], ctx)

    _same(ours(), graphite(target))
    graphite_s = _best_time(lambda: graphite(target), rounds)
    result = benchmark.pedantic(ours, rounds=rounds, iterations=1, warmup_rounds=1)
    assert result
    carbyne_s = benchmark.stats.stats.min
    benchmark.extra_info.update({
        "target": target,
        "series": len(result),
        "carbyne_s": round(carbyne_s, 6),
        "graphite_s": round(graphite_s, 6),
        "ratio_graphite_over_carbyne": round(graphite_s / carbyne_s, 2),
    })


@pytest.mark.parametrize("count", SIZES)
def test_plain_glob(benchmark, graphite, data_dir, count: int) -> None:
    pattern = {1: "bench.host00.cpu00", 100: "bench.host00.*", 1000: "bench.*.*"}[count]
    compare(benchmark, graphite, data_dir, pattern, rounds=20 if count < 1000 else 5)


@pytest.mark.parametrize(
    "target",
    ["sumSeries(bench.*.*)", "movingAverage(bench.*.*,5)", "aliasByNode(bench.*.*,1,2)"],
)
def test_functions_over_1000_series(benchmark, graphite, data_dir, target: str) -> None:
    compare(benchmark, graphite, data_dir, target, rounds=5)
