"""applyByNode, useSeriesAbove and aliasQuery: targets built from evaluated series, planned, read and
evaluated in a further round by the Evaluator; compared with graphite-web 1.1.10's evaluateTarget
(which re-evaluates from inside the functions) over the same whisper files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from app_support import NOW, graphite_http, write_metric
from oracle import differences, graphite_context, observe_carbyne, observe_graphite

from render.datasource import DataSource
from render.evaluator import MAX_GENERATION_DEPTH, Evaluator
from render.functions.params import InputError, Param, ParamType
from render.functions.registry import Registry, RequestContext, default_registry, series_function
from render.limits import LimitError, Limits

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::PendingDeprecationWarning")

STEP = 60
POINTS = 30
# ends at the last point written: graphite's useSeriesAbove fails (Python 3) on a series holding None
WINDOW = (NOW - 15 * STEP, NOW - STEP)


def values(seed: int, gaps: bool = True) -> list[float | None]:
    return [None if gaps and (i + seed) % 7 == 3 else float((i * 5 + seed * 3) % 17) for i in range(POINTS)]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory, graphite_web: None) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("generated")
    for seed, host in enumerate(["web1", "web2", "db1"]):
        write_metric(root, f"srv.{host}.cpu", NOW - POINTS * STEP, STEP, values(seed, gaps=False))
        if host != "db1":
            write_metric(root, f"srv.{host}.mem", NOW - POINTS * STEP, STEP, values(seed + 5))
            write_metric(root, f"srv.{host}.disk", NOW - POINTS * STEP, STEP, values(seed + 9))
    for channel in (1, 2, 3):
        write_metric(root, f"channel.power.{channel}", NOW - POINTS * STEP, STEP, values(channel))
        frequency = [float(100 * channel + i) for i in range(POINTS)]
        if channel == 3:
            frequency = [None] * POINTS
        write_metric(root, f"channel.frequency.{channel}", NOW - POINTS * STEP, STEP, frequency)
    with graphite_http(root):
        yield root


def context(window=WINDOW) -> RequestContext:
    return RequestContext(start=window[0], end=window[1], now=NOW)


def ours(data_dir: Path, targets: list[str], window=WINDOW, **kwargs: Any):
    return Evaluator(DataSource(data_dir), **kwargs).evaluate(targets, context(window))


def theirs(targets: list[str], window=WINDOW):
    from graphite.render.evaluator import evaluateTarget

    request_context = graphite_context(context(window))
    request_context["targets"] = list(targets)
    return evaluateTarget(request_context, list(targets))


@pytest.mark.parametrize(
    "targets",
    [
        ['applyByNode(srv.*.cpu,1,"sumSeries(%.*)")'],
        ['applyByNode(srv.*.cpu,1,"divideSeries(%.cpu,sumSeries(%.*))","%.share")'],
        ['applyByNode(srv.*.*,0,"maxSeries(%.*.cpu)")', "srv.web1.cpu"],
        ['applyByNode(srv.*.cpu,1,"%.mem")'],  # a generated path; db1 has no mem
        ['applyByNode(srv.*.cpu,-2,"%.disk","disk of %")'],
        ['applyByNode(srv.*.cpu,1,"movingAverage(%.mem,3)")'],  # a window inside the generated target
        ['timeShift(applyByNode(srv.*.cpu,1,"sumSeries(%.*)"),"5min")'],  # generated over the shifted window
        ['movingAverage(applyByNode(srv.web*.cpu,1,"%.cpu"),2)'],  # evaluated while planning (step probe)
        ['applyByNode(srv.*.cpu,1,"sumSeries(srv.web1.*)")', 'applyByNode(nothing.*,1,"%.cpu")'],
        ['useSeriesAbove(srv.*.cpu,10,"cpu","disk")'],
        ['useSeriesAbove(srv.*.cpu,0,"cpu","mem")'],  # srv.db1.mem does not exist
        ['useSeriesAbove(srv.*.cpu,1000,"cpu","mem")', "srv.db1.cpu"],  # none above: nothing read
        ['sumSeries(useSeriesAbove(srv.web*.cpu,5,"cpu","mem"))'],
        [r'aliasQuery(channel.power.{1,2},"channel\.power\.([0-9]+)","channel.frequency.\1","Channel %d MHz")'],
        ['aliasQuery(srv.web*.cpu,"cpu$","mem","last mem %s")'],
        ['aliasQuery(srv.web*.cpu,"srv\\.(.*)\\.cpu","sumSeries(srv.\\1.*)","%.1f in total")'],
        ['aliasByNode(applyByNode(srv.web*.cpu,1,"useSeriesAbove(%.cpu,0,\'cpu\',\'disk\')"),1)'],
    ],
    ids=lambda t: " & ".join(t),
)
def test_generated_targets_like_graphite(data_dir, targets) -> None:
    mine = ours(data_dir, targets)
    problems = differences([observe_carbyne(s) for s in mine], [observe_graphite(s) for s in theirs(targets)])
    assert not problems, "\n".join(problems)
    if "1000" not in targets[0]:
        assert mine and all(any(v is not None for v in s.to_list()) for s in mine)


class SpySource(DataSource):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[tuple[tuple[str, ...], int, int]] = []

    def fetch(self, patterns, start, end, now, **kwargs):
        patterns = list(patterns)
        self.calls.append((tuple(patterns), start, end))
        return super().fetch(patterns, start, end, now, **kwargs)


def test_generated_targets_are_read_together_in_one_more_round(data_dir) -> None:
    source = SpySource(data_dir)
    Evaluator(source).evaluate(['applyByNode(srv.*.cpu,1,"sumSeries(%.*)")', "srv.web1.mem"], context())
    assert source.calls == [
        (("srv.*.cpu", "srv.web1.mem"), *WINDOW),
        (("srv.db1.*", "srv.web1.*", "srv.web2.*"), *WINDOW),
    ]
    source.calls.clear()
    Evaluator(source).evaluate(['useSeriesAbove(srv.*.cpu,1000,"cpu","mem")'], context())
    assert source.calls == [(("srv.*.cpu",), *WINDOW)]


def test_generated_reads_count_toward_the_limits(data_dir) -> None:
    limits = Limits(max_series_per_request=6)
    assert len(ours(data_dir, ['applyByNode(srv.web*.cpu,1,"%.mem")'], limits=limits)) == 2
    with pytest.raises(LimitError, match="max_series_per_request=6"):
        ours(data_dir, ['applyByNode(srv.*.cpu,1,"sumSeries(%.*)")'], limits=limits)


@pytest.mark.parametrize(
    ("target", "message", "graphite_fails"),
    [
        # graphite's lenient grammar reads the broken template as something else
        ('applyByNode(srv.*.cpu,1,"sumSeries(%")', "cannot call applyByNode target='sumSeries\\(srv.db1'", False),
        ('applyByNode(srv.*.cpu,1,"nope(%.cpu)")', "nope", True),
        ('aliasQuery(srv.db1.cpu,"cpu","mem","%d")', "no series found with query 'srv.db1.mem'", True),
        ('aliasQuery(channel.power.3,"power","frequency","%d")', "has no value", True),
        ('aliasQuery(srv.web1.cpu,"cpu","mem","%d %d")', "newName='%d %d'", True),
        ('aliasQuery(srv.web1.cpu,"(","mem","%d")', "search='\\('", True),
        (r'useSeriesAbove(srv.web1.cpu,1,"cpu","\1")', "useSeriesAbove search='cpu'", True),
    ],
)
def test_bad_generated_targets_are_input_errors(data_dir, target, message, graphite_fails) -> None:
    with pytest.raises(InputError, match=message):
        ours(data_dir, [target])
    if graphite_fails:
        with pytest.raises(Exception):  # noqa: B017 (graphite fails too, often with a 500)
            theirs([target])


def test_generation_depth_is_limited(data_dir) -> None:
    @series_function(
        "again",
        group="Special",
        params=[Param("seriesList", ParamType.seriesList, required=True)],
        generates=lambda arguments, ctx: ["again(srv.web1.cpu)"],
    )
    def again(ctx, series_list, *, generated):
        """Evaluates itself forever."""
        return generated["again(srv.web1.cpu)"]

    evaluator = Evaluator(DataSource(data_dir), registry=Registry([again]))
    with pytest.raises(InputError, match=f"over {MAX_GENERATION_DEPTH} levels deep"):
        evaluator.evaluate(["again(srv.web1.cpu)"], context())


def test_registry_insists_on_generated_series() -> None:
    registry = default_registry()
    with pytest.raises(ValueError, match="its targets were not evaluated"):
        registry.call("applyByNode", context(), [[], 1, "%.cpu"])
    with pytest.raises(ValueError, match="generates no targets"):
        registry.call("alias", context(), [[], "x"], generated={})
    assert registry.generated_targets("alias", [[], "x"], {}, context()) == []
