"""seriesByTag end to end: tag index → tagged_files → DataSource, against graphite-web's evaluator
over the same whisper files and the same tagged series."""

from __future__ import annotations

import math
import os

import pytest
from app_support import NOW, graphite_http, write_metric

from render.datasource import DataSource, Leaf
from render.grammar import parse
from render.tagquery import TagQueryError, is_series_by_tag, path_expression, tagged_files
from storage.tagindex import TagIndex
from storage.whisper import file as whisper_file

SERIES = {
    "cpu.load;dc=east;host=h1": [1.0, 2.0, None, 4.0],
    "cpu.load;dc=west;host=h2": [10.0, None, 30.0, 40.0],
    "cpu.load;dc=east;host=h3": [5.0, 6.0, 7.0, 8.0],
    "mem.used;dc=east;host=h1": [100.0, 200.0, 300.0, 400.0],
}
NOT_WRITTEN = "cpu.load;dc=east;host=h9"
STEP = 60
START = NOW - 4 * STEP


def leaves_for(source, index, data_dir):
    """What the evaluator's planning does for a seriesByTag call: files, then headers."""
    found = []
    for name, path in tagged_files(source, index.find_series, data_dir):
        fd = os.open(path, os.O_RDONLY)
        try:
            found.append(Leaf(name, path, whisper_file.read_header(fd, str(path))))
        finally:
            os.close(fd)
    return found


@pytest.fixture
def tagged_data(tmp_path, graphite_web):
    for name, values in SERIES.items():
        write_metric(tmp_path, name, START, STEP, values)
    index = TagIndex.in_data_dir(tmp_path)
    index.tag_multi_series([*SERIES, NOT_WRITTEN])
    yield tmp_path, index
    index.close()


def as_tuples(series):
    return [
        (s.name, s.path_expression if hasattr(s, "path_expression") else s.pathExpression, s.start, s.end, s.step,
         [None if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in s.values]
         if hasattr(s, "path_expression") else list(s), dict(s.tags))
        for s in series
    ]


EXPECTED_COUNT = {
    "seriesByTag('dc=east')": 3,
    "seriesByTag('name=cpu.load', 'host!=h1')": 2,
    "seriesByTag( \"name=~cpu\" ,'dc=~e|w')": 3,
    "seriesByTag('dc=north')": 0,
}


@pytest.mark.parametrize("target", list(EXPECTED_COUNT))
def test_series_by_tag_reads_like_graphite(tagged_data, target):
    data_dir, index = tagged_data
    from django.test import Client  # noqa: F401  (Django is set up by graphite_web)
    from graphite.render.evaluator import evaluateTarget
    from graphite.storage import STORE
    from graphite.util import epoch_to_dt

    call = parse(target)
    source = path_expression(call)
    assert is_series_by_tag(source)
    leaves = leaves_for(source, index, data_dir)
    ours = DataSource(data_dir).fetch([source], START - STEP, NOW, NOW, leaves={source: leaves})[source]

    with graphite_http(data_dir) as client:
        client.post("/tags/tagMultiSeries", {"path": [*SERIES, NOT_WRITTEN]})
        ctx = {
            "startTime": epoch_to_dt(START - STEP), "endTime": epoch_to_dt(NOW), "now": epoch_to_dt(NOW),
            "localOnly": False, "template": {}, "tzinfo": epoch_to_dt(0).tzinfo, "forwardHeaders": {},
            "sourceIdHeaders": {}, "data": [], "prefetched": {}, "xFilesFactor": 0.0,
            "maxDataPoints": None, "targets": [target], "maxStep": None,
        }
        theirs = evaluateTarget(ctx, target)
        STORE.tagdb.del_multi_series([*SERIES, NOT_WRITTEN])
    assert as_tuples(ours) == as_tuples(theirs)
    assert len(ours) == EXPECTED_COUNT[target]


def test_tagged_files_skips_missing_files_and_refuses_other_calls(tagged_data):
    data_dir, index = tagged_data
    names = [n for n, _ in tagged_files("seriesByTag('host=~h[19]')", index.find_series, data_dir)]
    assert names == ["cpu.load;dc=east;host=h1", "mem.used;dc=east;host=h1"]
    with pytest.raises(TagQueryError, match="not a seriesByTag call"):
        tagged_files("sumSeries(a.b)", index.find_series, data_dir)
    with pytest.raises(TagQueryError, match="must not match the empty value"):
        tagged_files("seriesByTag()", index.find_series, data_dir)
