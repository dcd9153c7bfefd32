"""Evaluator: plan, read once per window, evaluate -- checked against graphite-web's own evaluator
reading the same whisper files."""
from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import whisper
from oracle import differences, graphite_context, observe_carbyne, observe_graphite

from render.datasource import DataSource
from render.evaluator import Evaluator
from render.functions.params import InputError
from render.functions.registry import RequestContext, default_registry
from render.grammar import GrammarError
from render.limits import LimitError, Limits
from storage.paths import metric_path

NOW = 1_700_000_000 - 1_700_000_000 % 3600
FINE = [(10, 360), (60, 1440)]  # 10 s for an hour, then 1 min for a day
COARSE = [(60, 1440)]
RECENT = (NOW - 1800, NOW)  # inside the 10 s archive
LONG = (NOW - 3 * 3600, NOW - 600)  # only the 1 min archive covers it


def write(data_dir: Path, name: str, archives, step: int, until: int = NOW, seed: int = 0) -> None:
    path = metric_path(data_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    whisper.create(str(path), archives, xFilesFactor=0.0, aggregationMethod="average")
    points = [
        (until - k * step, float((k * 7 + seed) % 23))
        for k in range(6 * 3600 // step)
        if (k + seed) % 9 != 4  # a gap every 9 points
    ]
    whisper.update_many(str(path), points, now=NOW)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("whisper")
    write(root, "srv.web1.cpu", FINE, 10, seed=1)
    write(root, "srv.web2.cpu", FINE, 10, seed=2)
    write(root, "srv.db1.cpu", COARSE, 60, seed=3)
    write(root, "srv.db1.mem", FINE, 10, seed=4)
    write(root, "stale.cpu", FINE, 10, until=NOW - 1200, seed=5)  # the cache has the newest points
    write(root, "123", FINE, 10, seed=6)
    zero = metric_path(root, "zero.neg")
    zero.parent.mkdir(parents=True, exist_ok=True)
    whisper.create(str(zero), FINE, xFilesFactor=0.0, aggregationMethod="average")
    whisper.update_many(str(zero), [(NOW - k * 10, -0.0) for k in range(360) if k % 3], now=NOW)
    return root


class FakeCarbonLink:
    def __init__(self, points: dict[str, list[tuple[float, float]]]) -> None:
        self.points = points

    def cache_query_bulk(self, metrics):
        return {m: list(self.points.get(m, [])) for m in metrics}


class StubGraphiteLink:
    """What graphite-web's readers call as ``CarbonLink()``: ``query(metric)``."""

    def __init__(self, points: dict[str, list[tuple[float, float]]]) -> None:
        self.points = points

    def query(self, metric: str):
        return list(self.points.get(metric, []))


class SpySource(DataSource):
    """A DataSource recording every fetch call."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[tuple[tuple[str, ...], int, int]] = []

    def fetch(self, patterns, start, end, now, **kwargs):
        patterns = list(patterns)
        self.calls.append((tuple(patterns), start, end))
        return super().fetch(patterns, start, end, now, **kwargs)


CACHED = {
    "stale.cpu": [(float(t), 100.0 + (t % 7)) for t in range(NOW - 1195, NOW + 1, 10)],
    "srv.web1.cpu": [(NOW - 5.0, 555.0), (NOW - 3.0, 556.0)],  # two points in one 10 s step
}


@pytest.fixture
def graphite(graphite_web, data_dir: Path, monkeypatch: pytest.MonkeyPatch):
    """graphite-web 1.1.10's evaluateTarget over ``data_dir`` with CACHED as carbon's cache."""
    from graphite import storage
    from graphite.finders.standard import StandardFinder
    from graphite.readers import utils
    from graphite.render import datalib
    from graphite.render.evaluator import evaluateTarget

    monkeypatch.setattr(datalib, "STORE", storage.Store(finders=[StandardFinder([str(data_dir)])]))
    monkeypatch.setattr(utils, "CarbonLink", lambda: StubGraphiteLink(CACHED))

    def run(targets, ctx: RequestContext, template=None):
        request_context = graphite_context(ctx)
        request_context["targets"] = list(targets)
        request_context["template"] = dict(template or {})
        return evaluateTarget(request_context, list(targets))

    return run


def ours(data_dir: Path, targets, ctx: RequestContext, template=None, **kwargs):
    source = DataSource(data_dir, carbonlink=FakeCarbonLink(CACHED))
    return Evaluator(source, **kwargs).evaluate(targets, ctx, template)


def context(window, x_files_factor: float = 0.0) -> RequestContext:
    return RequestContext(start=window[0], end=window[1], now=NOW, x_files_factor=x_files_factor)


def assert_like_graphite(data_dir, graphite, targets, window, template=None, x_files_factor=0.0):
    names = {n for t in targets for n in re.findall(r"([A-Za-z]\w*)\(", t)} - {"template"}
    missing = sorted(n for n in names if n not in default_registry())
    if missing:
        pytest.skip(f"functions not in the registry yet: {missing}")
    ctx = context(window, x_files_factor)
    mine = ours(data_dir, targets, ctx, template)
    theirs = graphite(targets, ctx, template)
    problems = differences([observe_carbyne(s) for s in mine], [observe_graphite(s) for s in theirs])
    assert not problems, "\n".join(problems)
    if not any("nothing" in t for t in targets):
        assert mine and all(any(v is not None for v in s.to_list()) for s in mine)
    return mine


@pytest.mark.parametrize("window", [RECENT, LONG], ids=["recent", "long"])
@pytest.mark.parametrize(
    "targets",
    [
        ["srv.web1.cpu"],
        ["srv.*.cpu"],
        ["srv.{web1,db1}.*"],
        ["srv.*.c?u", "srv.db1.mem"],
        ["srv.web1.cpu", "srv.web1.cpu", "srv.web*.cpu"],  # no dedup across targets
        ["nothing.here", "srv.nothing.*"],
        ["stale.cpu"],  # newest points only in the cache
        ["sumSeries(srv.*.cpu)"],  # mixed steps: normalised to 60 s
        ["srv.*.cpu|sumSeries()"],
        ["sumSeries(srv.web1.cpu,srv.web1.cpu)"],
        ["movingAverage(srv.web1.cpu,5)"],
        ["movingAverage(srv.*.cpu,5)"],  # preview = 5 x the largest step
        ['movingAverage(srv.*.cpu,"2min")'],
        ['movingMax(stale.cpu,"5min")'],
        ['timeShift(srv.web1.cpu,"1h")'],  # the shifted window only the 1 min archive covers
        ['timeShift(srv.*.cpu,"-10min")'],
        ['summarize(srv.*.cpu,"5min","max")'],
        ['movingAverage(timeShift(srv.web1.cpu,"10min"),5)'],  # a window of a window
        ['timeShift(movingAverage(srv.web1.cpu,5),"10min")'],
        ['movingAverage(summarize(srv.web1.cpu,"5min"),3)'],  # step known only after evaluating
        ['movingSum(movingAverage(summarize(srv.web2.cpu,"2min"),2),3)'],
        ["movingAverage(movingSum(srv.*.cpu,3),3)"],  # a cut read cut again
        ["movingAverage(sumSeries(srv.*.cpu),4)", "srv.web2.cpu"],
        ["scale(srv.web1.cpu,2)", "offset(movingAverage(stale.cpu,3),1)"],
    ],
    ids=lambda t: " & ".join(t),
)
def test_like_graphite(data_dir, graphite, targets, window) -> None:
    assert_like_graphite(data_dir, graphite, targets, window)


def test_template_like_graphite(data_dir, graphite) -> None:
    targets = ['template(srv.$host.cpu, host="web1")', "template(sumSeries(srv.$1.$2), 'db1', 'cpu')"]
    mine = assert_like_graphite(data_dir, graphite, targets, RECENT, template={"host": "web2"})
    assert mine[0].name == "srv.web2.cpu"


def test_request_xfilesfactor_like_graphite(data_dir, graphite) -> None:
    mine = assert_like_graphite(data_dir, graphite, ["srv.*.cpu", "sumSeries(srv.*.cpu)"], RECENT,
                                x_files_factor=0.5)
    assert {s.x_files_factor for s in mine} == {0.5}


def test_moving_sums_start_from_zero_like_graphite(data_dir, graphite) -> None:
    """graphite's ``sum`` starts from 0, so a window holding only ``-0.0`` sums to ``0.0``."""
    for target in ("movingSum(zero.neg,2)", "movingAverage(zero.neg,4)"):
        [series] = assert_like_graphite(data_dir, graphite, [target], RECENT)
        values = [v for v in series.to_list() if v is not None]
        assert values and all(math.copysign(1.0, v) == 1.0 for v in values)


def test_cached_points_reach_the_result(data_dir) -> None:
    [series] = ours(data_dir, ["stale.cpu"], context((NOW - 60, NOW)))
    # the point cached at t+5 lands in the slot at t; none is cached for the slot at NOW
    assert series.to_list() == [100.0 + (t + 5) % 7 for t in range(NOW - 50, NOW, 10)] + [None]
    [series] = ours(data_dir, ["srv.web1.cpu"], context((NOW - 60, NOW)))
    assert series.to_list()[-2] == 556.0  # slot NOW-10: the later of two points in that raw step


def test_metric_only_in_cache_is_not_listed(data_dir) -> None:
    source = DataSource(data_dir, carbonlink=FakeCarbonLink({"srv.new.cpu": [(NOW, 1.0)]}))
    names = [s.name for s in Evaluator(source).evaluate(["srv.*.cpu"], context(RECENT))]
    assert names == ["srv.db1.cpu", "srv.web1.cpu", "srv.web2.cpu"]


# --- planning ---------------------------------------------------------------------------


def test_one_read_per_window(data_dir) -> None:
    """A path under a windowed call whose files answer both windows from one archive is read
    once, over the widened window; its request-window series are cut from that read."""
    source = SpySource(data_dir)
    targets = ["movingAverage(srv.web*.cpu,5)", "srv.web*.cpu", "sumSeries(srv.db1.*)", "srv.db1.cpu"]
    mine = Evaluator(source).evaluate(targets, context(RECENT))
    assert sorted(source.calls, key=lambda c: c[1]) == [
        (("srv.web*.cpu",), RECENT[0] - 50, RECENT[1]),
        (("srv.db1.*", "srv.db1.cpu"), *RECENT),
    ]
    read = Evaluator(DataSource(data_dir)).evaluate(["srv.web*.cpu"], context(RECENT))
    cut = [s for s in mine if s.name.startswith("srv.web")]
    assert [(s.name, s.start, s.end, s.step, s.to_list()) for s in cut] == [
        (s.name, s.start, s.end, s.step, s.to_list()) for s in read
    ]


@pytest.mark.parametrize(
    ("target", "reads"),
    [
        ("movingAverage(srv.web1.cpu,5)", 1),  # both windows in the 10 s archive
        ('movingAverage(srv.web1.cpu,"40min")', 2),  # the preview reaches the 1 min archive
        ('movingAverage(srv.*.cpu,"2min")', 1),  # 10 s and 1 min files, each in one archive
        ('movingMax(srv.web*.cpu,"45min")', 2),
    ],
)
def test_second_read_only_when_archives_differ(data_dir, graphite, target, reads) -> None:
    source = SpySource(data_dir)
    Evaluator(source).evaluate([target], context(RECENT))
    assert len(source.calls) == reads
    assert_like_graphite(data_dir, graphite, [target], RECENT)


def test_nested_windows_are_planned_before_reading(data_dir) -> None:
    source = SpySource(data_dir)
    Evaluator(source).evaluate(['movingAverage(timeShift(srv.web1.cpu,"10min"),5)'], context(RECENT))
    windows = sorted((start - NOW, end - NOW) for _, start, end in source.calls)
    # timeShift over the request and over the preview, each shifted 10 min back; the
    # preview is 5 steps of timeShift's output, learnt from the headers (no extra round)
    assert windows == [(-1800 - 600 - 50, -600), (-1800 - 600, -600), (-1800 - 50, 0), (-1800, 0)]


def test_step_changing_argument_takes_one_more_round(data_dir) -> None:
    if "summarize" not in default_registry():
        pytest.skip("summarize not in the registry yet")
    source = SpySource(data_dir)
    Evaluator(source).evaluate(['movingAverage(summarize(srv.web1.cpu,"5min"),3)'], context(RECENT))
    assert [(start - NOW, end - NOW) for _, start, end in source.calls] == [(-1800, 0), (-1800 - 900, 0)]


def test_windowed_argument_with_no_series_reads_nothing_more(data_dir) -> None:
    source = SpySource(data_dir)
    assert Evaluator(source).evaluate(["movingAverage(nothing.*,5)"], context(RECENT)) == []
    assert len(source.calls) == 1


#: srv.web1.cpu's values over WINDOWLESS are 9, 16, 0 and 7; 21 and 22 come earlier in the hour.
WINDOWLESS = (NOW - 600, NOW - 570)


@pytest.mark.parametrize(
    "target",
    [
        'smartSummarize(maximumAbove(srv.web1.cpu,20),"1h","max","hours")',
        'hitcount(maximumAbove(srv.web1.cpu,20),"1h",true)',
        'holtWintersForecast(maximumAbove(srv.web1.cpu,20),"10min","1min")',
        'holtWintersConfidenceBands(maximumAbove(srv.*.cpu,20),3,"10min","1min")',
    ],
)
def test_widened_argument_read_even_when_empty_over_the_request(data_dir, graphite, target) -> None:
    """graphite re-evaluates these functions' first argument whatever it gave over the request
    window: a filter keeping no series there may keep some over the aligned or bootstrap window
    (found by the differential fuzzer: smartSummarize(linearRegression(...),...,'hours'))."""
    inner = re.search(r"maximumAbove\(.*?\)", target).group(0)
    assert ours(data_dir, [inner], context(WINDOWLESS)) == []
    assert_like_graphite(data_dir, graphite, [target], WINDOWLESS)


def test_out_of_retention_request_reads_no_preview(data_dir) -> None:
    """graphite: no series over the request window means no re-fetch, hence no series."""
    source = SpySource(data_dir)
    old = (NOW - 30 * 86400, NOW - 20 * 86400)
    assert Evaluator(source).evaluate(['movingAverage(srv.web1.cpu,"30d")'], context(old)) == []
    assert len(source.calls) == 1


# --- limits and errors ---------------------------------------------------------------


def test_too_many_series_fails_before_reading(data_dir) -> None:
    source = SpySource(data_dir)
    evaluator = Evaluator(source, limits=Limits(max_series_per_request=3))
    with pytest.raises(LimitError, match=r"srv\.\*\.\*.*max_series_per_request=3") as error:
        evaluator.evaluate(["srv.*.*"], context(RECENT))
    assert source.calls == []
    assert isinstance(error.value, ValueError)
    # two targets that together read too many series
    with pytest.raises(LimitError, match="the request reads 4 series"):
        evaluator.evaluate(["srv.*.cpu", "srv.db1.mem"], context(RECENT))
    assert source.calls == []
    assert len(evaluator.evaluate(["srv.*.cpu"], context(RECENT))) == 3


def test_too_many_points_fails_before_reading(data_dir) -> None:
    source = SpySource(data_dir)
    evaluator = Evaluator(source, limits=Limits(max_points_per_request=300))
    with pytest.raises(LimitError, match="reads 360 points, over the limit max_points_per_request=300"):
        evaluator.evaluate(["srv.web*.cpu"], context((NOW - 1800, NOW)))  # 2 x 180 points
    assert source.calls == []
    assert len(evaluator.evaluate(["srv.web1.cpu"], context((NOW - 1800, NOW)))) == 1


def test_target_too_long(data_dir) -> None:
    evaluator = Evaluator(DataSource(data_dir), limits=Limits(max_target_length=20))
    with pytest.raises(LimitError, match="max_target_length=20"):
        evaluator.evaluate(["sumSeries(srv.web1.cpu,srv.web2.cpu)"], context(RECENT))


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="max_series_per_request=0"):
        Limits(max_series_per_request=0)
    with pytest.raises(LimitError, match="cannot render maxDataPoints=11"):
        Limits(max_data_points=10).check_max_data_points(11)


@pytest.mark.parametrize(
    ("target", "error", "message"),
    [
        ("sumSeries(srv.web1.cpu", GrammarError, "cannot parse target"),
        ("noSuchFunction(srv.web1.cpu)", InputError, "noSuchFunction"),
        ('movingAverage(srv.web1.cpu,"abc")', ValueError, "movingAverage"),
        ("movingAverage(srv.web1.cpu)", InputError, "windowSize"),
        ("seriesByTag('name=cpu')", InputError, "seriesByTag"),
        ("template(constantLine($n))", InputError, "constantLine"),
    ],
)
def test_bad_targets_are_value_errors(data_dir, target, error, message) -> None:
    with pytest.raises(error, match=message):
        Evaluator(DataSource(data_dir)).evaluate([target], context(RECENT))


def test_empty_targets_are_skipped_and_range_checked(data_dir) -> None:
    evaluator = Evaluator(DataSource(data_dir))
    assert evaluator.evaluate(["", "  "], context(RECENT)) == []
    assert [s.name for s in evaluator.evaluate("srv.web1.cpu", context(RECENT))] == ["srv.web1.cpu"]
    with pytest.raises(InputError, match="not before until"):
        evaluator.evaluate(["srv.web1.cpu"], context((NOW, NOW)))


def test_bare_number_target_is_a_path(data_dir) -> None:
    [series] = Evaluator(DataSource(data_dir)).evaluate(["123"], context(RECENT))
    assert series.name == "123" and any(v is not None for v in series.to_list())
