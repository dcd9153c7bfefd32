"""Target parsing: render.grammar.parse vs graphite-web 1.1.10's pyparsing grammar.

The workload is a mix of Grafana-shaped targets (aliases, tag queries,
summarize, pipes, templates, nested combinators), parsed cold each round as
the render view does per request. graphite-web's timing uses its
thread-safe `grammar.parseString` (the lock it needs, uncontended). The
answer is checked: every target yields the same set of path expressions as
graphite-web's `extractPathExpressions`, and prints back to an equal tree.
Reports targets/s and the speed-up over graphite-web measured in the same run.
Run: ``python3 -m pytest benchmarks/test_bench_grammar.py``.
"""

from __future__ import annotations

import importlib.metadata
import os
import sys
import time

import pytest

from render.ast import Call, PathExpr
from render.grammar import apply_template, parse

TARGETS = [
    "aliasByNode(collectd.web*.cpu-*.cpu-idle, 1, 2)",
    "alias(sumSeries(stats.timers.api.*.count), 'requests')",
    "aliasByTags(seriesByTag('name=cpu.usage', 'env=prod', 'host=~web.*'), 'host')",
    "groupByTags(seriesByTag('name=http.requests', 'dc=eu'), 'sum', 'status')",
    "summarize(stats_counts.app.{login,logout}.success, '1h', 'sum', false)",
    "movingAverage(scale(servers.*.load.shortterm, 100), '5min')",
    "highestMax(nonNegativeDerivative(net.*.if_octets.rx), 5)|alias('top rx')",
    "asPercent(sumSeries(disk.*.used), sumSeries(disk.*.total))",
    "sortByMaxima(limit(exclude(hosts.*.memory.free, 'test'), 10))",
    "timeShift(stats.gauges.queue.depth, '1d')",
    "stats.gauges.queue.depth|timeShift('7d')|alias('last week')",
    "template(hosts.$host.cpu.user, host='web1')",
    "perSecond(collectd.db[0-9].interface-eth0.if_packets.tx)",
    "groupByNodes(stats.timers.*.*.upper_90, 'max', 2, 4)",
    "transformNull(divideSeries(a.b.errors, a.b.requests), 0)",
    "substr(keepLastValue(sensors.room?.temperature, 3), 1, 2)",
    "aliasSub(carbon.agents.*.metricsReceived, '^carbon\\.agents\\.([^.]+).*', '\\1')",
    "seriesByTag('name=disk.free', 'mount!=/boot')|scale(0.000001)|alias('GB free')",
    "constantLine(100)",
    "threshold(80, 'warning', 'orange')",
    "maxSeries(servers.{web1,web2,web3}.cpu.total.user)",
    "applyByNode(servers.*.disk.*.used, 1, 'divideSeries(%.disk.used, %.disk.total)')",
    "holtWintersConfidenceBands(app.requests.count, 3)",
    "removeBelowValue(removeAboveValue(latency.p99, 5000), 0)",
    "servers.web01.cpu.total.user",
]


@pytest.fixture(scope="module")
def graphite_grammar():
    webapp = importlib.metadata.distribution("graphite-web").locate_file("opt/graphite/webapp")
    if str(webapp) not in sys.path:
        sys.path.insert(0, str(webapp))
    storage = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"carbyne-bench-graphite-{os.getpid()}")
    os.makedirs(os.path.join(storage, "log", "webapp"), exist_ok=True)
    os.environ.setdefault("GRAPHITE_STORAGE_DIR", storage)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "graphite.settings")
    import django

    django.setup()
    from graphite.render.evaluator import extractPathExpressions
    from graphite.render.grammar import grammar

    return grammar, extractPathExpressions


def _paths(node) -> set[str]:
    if isinstance(node, PathExpr):
        return {node.text}
    if isinstance(node, Call):
        if node.name == "seriesByTag":
            return {node.source}
        found: set[str] = set()
        for arg in (*node.args, *(value for _, value in node.kwargs)):
            found |= _paths(arg)
        return found
    return set()


def _seconds_per_round(work, rounds: int = 20) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def test_parse_grafana_targets(benchmark, graphite_grammar):
    grammar, extract_paths = graphite_grammar
    trees = [parse(target) for target in TARGETS]
    for target, tree in zip(TARGETS, trees, strict=True):
        expected = set(extract_paths({"template": {}}, [target]))
        assert _paths(apply_template(tree)) == expected, target
        assert parse(str(tree)) == tree

    def ours():
        return [parse(target) for target in TARGETS]

    def graphite():
        return [grammar.parseString(target) for target in TARGETS]

    result = benchmark(ours)
    assert result == trees
    ours_best = _seconds_per_round(ours)
    graphite_best = _seconds_per_round(graphite)
    benchmark.extra_info["targets"] = len(TARGETS)
    benchmark.extra_info["carbyne_targets_per_s"] = round(len(TARGETS) / ours_best)
    benchmark.extra_info["graphite_targets_per_s"] = round(len(TARGETS) / graphite_best)
    benchmark.extra_info["speedup_vs_graphite"] = round(graphite_best / ours_best, 1)
