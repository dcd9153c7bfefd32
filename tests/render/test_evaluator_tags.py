"""seriesByTag, groupByTags and aliasByTags through the Evaluator, against graphite-web 1.1.10's
evaluateTarget reading the same whisper files with the same series in its LocalDatabaseTagDB."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from app_support import NOW, graphite_http, write_metric
from oracle import differences, graphite_context, observe_carbyne, observe_graphite

from render.datasource import DataSource
from render.evaluator import Evaluator
from render.functions.params import InputError
from render.functions.registry import RequestContext
from render.limits import LimitError, Limits
from storage.tagindex import TagIndex

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::PendingDeprecationWarning")

STEP = 60
START = NOW - 12 * STEP
SERIES = {
    "cpu.load;dc=east;host=h1": [1.0, 2.0, None, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0],
    "cpu.load;dc=west;host=h2": [10.0, None, 30.0, 40.0, 50.0, 60.0, None, 80.0, 90.0, 1.0, 2.0, 3.0],
    "cpu.load;dc=east;host=h3": [5.0, 6.0, 7.0, 8.0, None, None, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
    "mem.used;dc=east;host=h1": [100.0, 200.0, 300.0, 400.0, 500.0, 600.0, 700.0, 800.0, 900.0, 1.0, 2.0, 3.0],
    "disk.free;host=h4": [7.0] * 12,
}
WINDOW = (NOW - 8 * STEP, NOW)


@pytest.fixture(scope="module")
def tagged(tmp_path_factory: pytest.TempPathFactory, graphite_web: None) -> Iterator[tuple[Path, TagIndex]]:
    data_dir = tmp_path_factory.mktemp("tagged")
    for name, values in SERIES.items():
        write_metric(data_dir, name, START, STEP, values)
    write_metric(data_dir, "plain.cpu", START, STEP, list(range(12)))
    index = TagIndex.in_data_dir(data_dir)
    index.tag_multi_series(list(SERIES))
    with graphite_http(data_dir):
        from graphite.storage import STORE

        STORE.tagdb.tag_multi_series(list(SERIES))
        try:
            yield data_dir, index
        finally:
            STORE.tagdb.del_multi_series(list(SERIES))
            index.close()


def context(window: tuple[int, int] = WINDOW) -> RequestContext:
    return RequestContext(start=window[0], end=window[1], now=NOW)


def ours(data_dir: Path, index: TagIndex | None, targets: list[str], window=WINDOW, **kwargs: Any):
    return Evaluator(DataSource(data_dir, tag_index=index), **kwargs).evaluate(targets, context(window))


def theirs(targets: list[str], window=WINDOW):
    from graphite.render.evaluator import evaluateTarget

    request_context = graphite_context(context(window))
    request_context["targets"] = list(targets)
    return evaluateTarget(request_context, list(targets))


def assert_like_graphite(tagged, targets: list[str], window=WINDOW) -> list:
    data_dir, index = tagged
    mine = ours(data_dir, index, targets, window)
    problems = differences([observe_carbyne(s) for s in mine], [observe_graphite(s) for s in theirs(targets, window)])
    assert not problems, "\n".join(problems)
    return mine


@pytest.mark.parametrize(
    "targets",
    [
        ["seriesByTag('name=cpu.load')"],
        ["seriesByTag( \"name=~cpu\" ,'dc=~e|w')", "plain.cpu"],
        ["seriesByTag('dc=north')"],
        ["seriesByTag('dc=east','name=~cpu')|aliasByTags('host','dc')"],
        ["aliasByTags(seriesByTag('dc=east'),'host',1,'nope')"],
        ["aliasByTags(seriesByTag('host=~h','dc='),'name',0)"],  # series without a dc tag
        ["seriesByTag('name=cpu.load')|groupByTags('sum','dc')"],
        ["groupByTags(seriesByTag('name=~cpu|mem'),'average','dc')"],  # several names: named by callback
        ["groupByTags(seriesByTag('dc=~e'),'max','name','dc')"],
        ["groupByTags(seriesByTag('name=cpu.load'),'sumSeries','host','dc')"],
        ["groupByTags(seriesByTag('name=cpu.load'),'median','name')"],
        ["sumSeries(seriesByTag('dc=east'))", "seriesByTag('dc=east')|averageSeries()"],
        ["movingAverage(seriesByTag('dc=east'),3)"],  # the preview window read through the index too
        ["timeShift(seriesByTag('host=h1'),'2min')"],
        ["groupByNode(seriesByTag('name=cpu.load'),'dc','sum')"],
    ],
    ids=lambda t: " & ".join(t),
)
def test_tagged_targets_like_graphite(tagged, targets) -> None:
    mine = assert_like_graphite(tagged, targets)
    if "north" not in targets[0]:
        assert mine and all(any(v is not None for v in s.to_list()) for s in mine)


def test_series_by_tag_names_and_path_expressions(tagged) -> None:
    data_dir, index = tagged
    target = "seriesByTag('dc=east',  'name=cpu.load')"
    series = ours(data_dir, index, [target])
    assert [s.name for s in series] == ["cpu.load;dc=east;host=h1", "cpu.load;dc=east;host=h3"]
    assert {s.path_expression for s in series} == {target}  # the call's own text, spaces kept
    assert dict(series[0].tags) == {"dc": "east", "host": "h1", "name": "cpu.load"}
    [grouped] = ours(data_dir, index, ["groupByTags(seriesByTag('name=cpu.load','dc=east'),'sum','dc')"])
    assert (grouped.name, grouped.path_expression) == ("cpu.load;dc=east", "cpu.load;dc=east")
    assert grouped.to_list()[:3] == [6.0, 8.0, 10.0]  # h1 + h3 per minute (h3 missing at first)


class SpySource(DataSource):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[tuple[tuple[str, ...], int, int]] = []

    def fetch(self, patterns, start, end, now, **kwargs):
        patterns = list(patterns)
        self.calls.append((tuple(patterns), start, end))
        return super().fetch(patterns, start, end, now, **kwargs)


def test_tag_query_is_planned_and_read_with_the_paths(tagged) -> None:
    data_dir, index = tagged
    source = SpySource(data_dir, tag_index=index)
    Evaluator(source).evaluate(["seriesByTag('host=h1')", "plain.cpu", "sumSeries(seriesByTag('host=h1'))"],
                               context())
    assert source.calls == [(("seriesByTag('host=h1')", "plain.cpu"), *WINDOW)]


def test_tag_queries_count_toward_the_series_limit(tagged) -> None:
    data_dir, index = tagged
    limited = Limits(max_series_per_request=2)
    with pytest.raises(LimitError, match="max_series_per_request=2"):
        ours(data_dir, index, ["seriesByTag('name=cpu.load')"], limits=limited)
    assert len(ours(data_dir, index, ["seriesByTag('host=h1')"], limits=limited)) == 2
    with pytest.raises(LimitError, match="max_series_per_request"):
        ours(data_dir, index, ["seriesByTag('host=h1')", "seriesByTag('host=h3')"], limits=limited)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("seriesByTag('dc')", "cannot parse expr='dc'"),
        ("seriesByTag('dc!=east')", "must not match the empty value"),
        ("seriesByTag('dc=~(')", "bad regular expression"),
        ("seriesByTag()", "must not match the empty value"),
        ("groupByTags(seriesByTag('name=~cpu|disk'),'sum','dc')", "group 'sum;dc=' is not a tagged name"),
        ("groupByTags(seriesByTag('name=cpu.load'),'nope','dc')", "callback='nope'"),
    ],
)
def test_bad_tag_queries_are_input_errors(tagged, target, message) -> None:
    data_dir, index = tagged
    with pytest.raises(InputError, match=message):
        ours(data_dir, index, [target])
    with pytest.raises(Exception):  # noqa: B017 (graphite fails too, some with a 500-worthy Exception)
        theirs([target])


def test_group_by_tags_needs_tags() -> None:
    from render.functions.registry import default_registry

    with pytest.raises(InputError, match="tags"):
        default_registry().call("groupByTags", context(), [[], "sum"])


def test_without_a_tag_index_series_by_tag_is_refused(tagged) -> None:
    data_dir, _ = tagged
    with pytest.raises(InputError, match="no tag index"):
        ours(data_dir, None, ["seriesByTag('dc=east')"])
    assert [s.name for s in ours(data_dir, None, ["plain.cpu"])] == ["plain.cpu"]


def test_series_by_tag_body_is_never_called_directly() -> None:
    from render.functions.registry import default_registry

    with pytest.raises(RuntimeError, match="found by the data source"):
        default_registry().call("seriesByTag", context(), ["dc=east"])
