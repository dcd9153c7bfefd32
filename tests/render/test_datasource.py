"""DataSource: whisper reads in one pass, cached points merged as graphite-web merges them."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import whisper
from hypothesis import given, settings
from hypothesis import strategies as st

from render.carbonlink import CarbonLinkClient
from render.datasource import DataSource, fetch_interval, merge_cached
from storage.paths import metric_path

REPO = Path(__file__).resolve().parents[2]
NOW = 1_700_000_000 - 1_700_000_000 % 3600  # an hour boundary
ARCHIVES = [(10, 360), (60, 1440)]  # 10 s for 1 h, 1 min for 1 day


def make_metric(data_dir: Path, name: str, values=None, archives=ARCHIVES, method="average",
                step=10, now=NOW) -> Path:
    """A whisper file whose value at ``now - k*step`` is ``values[k]`` (newest first)."""
    path = metric_path(data_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    whisper.create(str(path), archives, xFilesFactor=0.0, aggregationMethod=method)
    if values is None:
        values = [float(k % 7) for k in range(300)]
    points = [(now - k * step, v) for k, v in enumerate(values) if v is not None]
    whisper.update_many(str(path), points, now=now)
    return path


class FakeCarbonLink:
    def __init__(self, points: dict[str, list]) -> None:
        self.points = points
        self.queries: list[list[str]] = []

    def cache_query_bulk(self, metrics):
        metrics = list(metrics)
        self.queries.append(metrics)
        return {m: list(self.points.get(m, [])) for m in metrics}


def as_list(values) -> list:
    return [None if math.isnan(v) else v for v in np.asarray(values).tolist()]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    for name in ("srv.web1.cpu", "srv.web2.cpu", "srv.db1.cpu", "srv.db1.mem"):
        make_metric(tmp_path, name)
    return tmp_path


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (NOW - 3600, NOW),  # the 10 s archive
        (NOW - 600, NOW - 300),
        (NOW - 7200, NOW),  # past the first archive: 1 min points
        (NOW - 605, NOW - 5),  # unaligned
        (NOW - 100, NOW - 100),  # empty window: whisper still returns one point
        (NOW - 3600, NOW + 600),  # until past now is clamped
    ],
)
def test_fetch_matches_whisper(data_dir: Path, start: int, end: int) -> None:
    source = DataSource(data_dir)
    result = source.fetch(["srv.*.cpu"], start, end, NOW, x_files_factor=0.25)
    series = result["srv.*.cpu"]
    assert [s.name for s in series] == ["srv.db1.cpu", "srv.web1.cpu", "srv.web2.cpu"]
    for s in series:
        (first, until, step), values = whisper.fetch(
            str(metric_path(data_dir, s.name)), start, end, now=NOW)
        assert (s.start, s.end, s.step) == (first, until, step)
        assert as_list(s.values) == values
        assert s.path_expression == "srv.*.cpu"
        assert s.x_files_factor == 0.25
        assert dict(s.tags) == {"name": s.name}
        leaf = next(x for x in source.leaves(s.name))
        assert fetch_interval(leaf.header, start, end, NOW) == ((first, until, step), len(values))


def test_window_outside_retention_gives_no_series(data_dir: Path) -> None:
    source = DataSource(data_dir)
    assert source.fetch(["srv.web1.cpu"], NOW - 10 * 86400, NOW - 5 * 86400, NOW) == {"srv.web1.cpu": []}
    assert source.fetch(["srv.web1.cpu"], NOW + 10, NOW + 20, NOW) == {"srv.web1.cpu": []}
    leaf = source.leaves("srv.web1.cpu")[0]
    assert fetch_interval(leaf.header, NOW + 10, NOW + 20, NOW) is None


def test_patterns_share_reads_and_keep_their_own_path_expression(data_dir: Path) -> None:
    cache = FakeCarbonLink({})
    source = DataSource(data_dir, carbonlink=cache)
    result = source.fetch(["srv.db1.*", "srv.*.cpu", "nothing.*", "srv.db1.*"], NOW - 60, NOW, NOW)
    assert list(result) == ["srv.db1.*", "srv.*.cpu", "nothing.*"]
    assert [s.name for s in result["srv.db1.*"]] == ["srv.db1.cpu", "srv.db1.mem"]
    assert result["nothing.*"] == []
    shared = result["srv.db1.*"][0], result["srv.*.cpu"][0]
    assert [s.path_expression for s in shared] == ["srv.db1.*", "srv.*.cpu"]
    assert cache.queries == [["srv.db1.cpu", "srv.db1.mem", "srv.web1.cpu", "srv.web2.cpu"]]


def test_values_are_read_only(data_dir: Path) -> None:
    series = DataSource(data_dir).fetch(["srv.web1.cpu"], NOW - 60, NOW, NOW)["srv.web1.cpu"][0]
    with pytest.raises(ValueError):
        series.values[0] = 1.0


def test_corrupt_file_is_skipped(data_dir: Path, caplog) -> None:
    (data_dir / "srv" / "bad.wsp").write_bytes(b"\x00\x01garbage")
    result = DataSource(data_dir).fetch(["srv.*"], NOW - 60, NOW, NOW)
    assert result == {"srv.*": []}
    result = DataSource(data_dir).fetch(["srv.bad", "srv.web1.cpu"], NOW - 60, NOW, NOW)
    assert result["srv.bad"] == [] and len(result["srv.web1.cpu"]) == 1
    assert "srv/bad.wsp" in caplog.text


def test_leaves_found_once_can_be_reused(data_dir: Path) -> None:
    source = DataSource(data_dir)
    planned = {"srv.web*.cpu": source.leaves("srv.web*.cpu")}
    (data_dir / "srv" / "web3").mkdir()
    make_metric(data_dir, "srv.web3.cpu")
    names = [s.name for s in source.fetch(["srv.web*.cpu"], NOW - 60, NOW, NOW, leaves=planned)["srv.web*.cpu"]]
    assert names == ["srv.web1.cpu", "srv.web2.cpu"]


def test_cached_points_are_merged(tmp_path: Path) -> None:
    make_metric(tmp_path, "m.a", values=[1.0] * 10)
    make_metric(tmp_path, "m.sum", values=[1.0] * 10, method="sum")
    cache = FakeCarbonLink({
        "m.a": [(NOW - 5, 7.0), (NOW - 4, 8.0), (NOW - 20, 9.0)],  # two in one raw step: the last wins
        "m.sum": [(NOW - 3500, 2.0), (NOW - 3490, 3.0), (NOW - 3440, 4.0)],
        "m.only_in_cache": [(NOW, 1.0)],
    })
    source = DataSource(tmp_path, carbonlink=cache)
    fine = source.fetch(["m.*"], NOW - 60, NOW, NOW)["m.*"]
    assert [s.name for s in fine] == ["m.a", "m.sum"]  # a metric without a file is not listed
    assert as_list(fine[0].values)[-4:] == [1.0, 9.0, 8.0, 1.0]  # slots NOW-30..NOW
    coarse = source.fetch(["m.sum"], NOW - 7200, NOW - 3000, NOW)["m.sum"][0]
    assert coarse.step == 60
    slot = (NOW - 3540 - coarse.start) // 60  # the 1-minute slot holding NOW-3500 and NOW-3490
    assert as_list(coarse.values)[slot:slot + 2] == [5.0, 4.0]


def test_cache_from_carbyne_daemon_is_merged(tmp_path: Path) -> None:
    """Points only in Carbyne's own cache-query server show up in the fetch."""
    make_metric(tmp_path, "live.x", values=[None] * 5 + [1.0] * 5)
    script = textwrap.dedent("""
        import json, sys
        from twisted.internet import reactor
        from carbon.cache import MetricCache
        from carbon.cachequery import CacheQueryFactory, CacheQueryHandler
        from carbon.instrumentation import Stats
        from carbon.names import MetricIndex
        index, cache = MetricIndex(), MetricCache()
        for name, points in json.loads(sys.argv[1]).items():
            for ts, value in points:
                cache.store(index.id_for(name), float(ts), float(value))
        port = reactor.listenTCP(0, CacheQueryFactory(CacheQueryHandler(cache, index, Stats())),
                                 interface="127.0.0.1")
        print(port.getHost().port, flush=True)
        reactor.run()
    """)
    points = {"live.x": [[NOW - 10, 42.0], [NOW, 43.0]]}
    proc = subprocess.Popen([sys.executable, "-c", script, json.dumps(points)], stdout=subprocess.PIPE,
                            text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        port = int(proc.stdout.readline())
        with CarbonLinkClient([("127.0.0.1", port)], timeout=5) as client:
            series = DataSource(tmp_path, carbonlink=client).fetch(["live.x"], NOW - 60, NOW, NOW)["live.x"][0]
    finally:
        proc.terminate()
        proc.wait(10)
    assert as_list(series.values) == [1.0, None, None, None, 42.0, 43.0]  # NOW-50 .. NOW


def test_merge_with_absmax_method() -> None:
    merged = merge_cached(np.full(2, np.nan), 60, 60, [(60, 3.0), (70, -5.0), (80, 4.0)], "absmax", 10)
    assert as_list(merged) == [-5.0, None]
    merged = merge_cached(np.full(2, np.nan), 60, 60, [(60, 3.0), (70, -5.0), (80, 4.0)], "absmin", 10)
    assert as_list(merged) == [3.0, None]


# --- merge_cached against graphite-web's merge_with_cache ---------------------------------

METHODS = ["average", "sum", "last", "max", "min", "avg_zero"]


@given(
    raw_step=st.sampled_from([1, 10, 60]),
    factor=st.sampled_from([1, 2, 6]),
    start_slot=st.integers(0, 5),
    length=st.integers(0, 12),
    method=st.sampled_from(METHODS),
    points=st.lists(st.tuples(st.integers(0, 1500), st.integers(-50, 50)), max_size=40),
    fractional=st.booleans(),
)
@settings(max_examples=300, deadline=None)
def test_merge_matches_graphite(graphite_web, raw_step, factor, start_slot, length, method, points,
                                fractional) -> None:
    from graphite.readers.utils import merge_with_cache

    step = raw_step * factor
    start = 120 + start_slot * step
    cached = [(float(ts) + (0.5 if fractional else 0.0), float(v)) for ts, v in points]
    base = [float(i) if i % 3 else None for i in range(length)]
    theirs = merge_with_cache(list(cached), start, step, list(base), func=method, raw_step=raw_step)
    ours = merge_cached(np.array([math.nan if v is None else v for v in base]), start, step, cached,
                        method, raw_step)
    assert len(ours) == len(theirs)
    for a, b in zip(as_list(ours), theirs, strict=True):
        assert (a is None and b is None) or math.isclose(a, b, rel_tol=1e-12)


def test_file_replaced_after_planning_is_read_with_its_new_header(tmp_path: Path) -> None:
    make_metric(tmp_path, "swap.me", values=[1.0] * 20)
    source = DataSource(tmp_path)
    planned = {"swap.me": source.leaves("swap.me")}
    metric_path(tmp_path, "swap.me").unlink()
    make_metric(tmp_path, "swap.me", values=[2.0] * 20, archives=[(60, 100)], step=60)
    [series] = source.fetch(["swap.me"], NOW - 300, NOW, NOW, leaves=planned)["swap.me"]
    assert series.step == 60
    assert as_list(series.values) == [2.0] * 5
