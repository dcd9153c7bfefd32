"""carbon.names: carbon's canonical tagged names, validation, interning, spelling caches."""
from __future__ import annotations

import importlib.metadata
import random
import re
import sys

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from carbon.names import (
    BadMetricName,
    MetricIndex,
    NativeSpellingTable,
    SpellingCache,
    canonical_name,
)


def graphite_tagged_series():
    """graphite-web 1.1.10's TaggedSeries (the oracle), importable without Django."""
    webapp = importlib.metadata.distribution("graphite-web").locate_file("opt/graphite/webapp")
    if str(webapp) not in sys.path:
        sys.path.append(str(webapp))
    from graphite.tags.utils import TaggedSeries

    return TaggedSeries


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("a.b.c", "a.b.c"),
        ("a;b=2;a=1", "a;a=1;b=2"),
        ("a;a=1;b=2", "a;a=1;b=2"),
        ("a;b=1;b=2", "a;b=2"),  # last value of a repeated tag wins
        ("a;name=other;x=1", "a;x=1"),  # the name tag is the metric itself
        ("~a.b", "a.b"),  # carbon strips leading '~' from the name
        ("~x;k=v", "x;k=v"),
        ("a;k=v=w", "a;k=v=w"),  # '=' is allowed in values
        ("a;a.b=2;a=1", "a;a.b=2;a=1"),  # sorted as ';tag=value' strings: '.' < '='
        ('m{b="2",a="1"}', "m;a=1;b=2"),  # OpenMetrics form
        ('m{a="x\\"y"}', 'm;a=x"y'),
        ("collectd.load;host=h;plugin=load;type=load", "collectd.load;host=h;plugin=load;type=load"),
        ("stats.x;env=test;dc=dc0", "stats.x;dc=dc0;env=test"),  # StatsD's unsorted tags
        ("данные.驢", "данные.驢"),
    ],
)
def test_canonical_names_match_carbon(raw: str, canonical: str) -> None:
    assert canonical_name(raw) == canonical
    assert graphite_tagged_series().parse(raw).path == canonical


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "a b",
        "a\tb",
        "a\x00b",
        "a\x1fb",
        "a\x7fb",
        "a\u00a0b",  # unicode whitespace: carbon's str.split() splits here
        "a;b",
        "a;=1",
        "a;b=",
        "a;b=~x",
        "a;b!c=1",
        "a;b^c=1",
        ";a=1",
        "~",
        "~~;a=1",
        'm{a="1"}{b="2"}',
        'm{a=1"}',
        '{a="1"}',
    ],
)
def test_bad_names_are_refused(raw: str) -> None:
    with pytest.raises(BadMetricName, match=r"^cannot accept metric="):
        canonical_name(raw)
    index = MetricIndex()
    with pytest.raises(BadMetricName):
        index.id_for(raw)
    with pytest.raises(BadMetricName):
        index.id_for(raw.encode("utf-8", "surrogatepass"))
    assert len(index) == 0


_name_chars = st.sampled_from(list("ab.;=~!^{}\",\\_-:xyz1") + ["é"])


@settings(max_examples=400, deadline=None)
@given(st.text(_name_chars, min_size=0, max_size=24))
def test_canonical_names_agree_with_graphite_web(raw: str) -> None:
    tagged_series = graphite_tagged_series()
    try:
        expected = tagged_series.parse(raw).path
    except Exception:  # graphite refuses it: carbon would keep it raw, Carbyne rejects it
        expected = None
    try:
        got = canonical_name(raw)
    except BadMetricName:
        got = None
    if raw == "":
        assert got is None
        return
    if expected is not None and ";" not in expected:
        # untagged: the name of the file carbon writes (dots as folders, leading ones
        # stripped, doubled ones collapsed by the file system)
        expected = re.sub("/+", "/", expected.replace(".", "/").lstrip("/")).replace("/", ".") or None
        assume(expected is None or not expected.startswith("~"))  # '.~a': carbon's file is ~a.wsp
    assert got == expected
    if got is not None:
        assert canonical_name(got) == got  # idempotent


@pytest.mark.parametrize(
    ("raw", "name"),
    [("a..b", "a.b"), (".a.b", "a.b"), ("..a...b..c", "a.b.c"), ("~.a", "a"), ("a.b", "a.b"),
     ("a..b;t=1", "a..b;t=1")],  # a tagged name's file is its hash: nothing to collapse
)
def test_leading_and_doubled_dots_name_the_file_carbon_writes(raw: str, name: str) -> None:
    index = MetricIndex()
    assert index.name(index.id_for(raw.encode())) == name
    assert index.id_for(name) == index.id_for(raw)


def test_spellings_of_one_series_share_an_id() -> None:
    index = MetricIndex()
    first = index.id_for(b"a;b=2;a=1")
    assert index.id_for("a;a=1;b=2") == first
    assert index.id_for(b"a;a=1;b=2") == first
    assert index.id_for("a;b=2;a=1") == first
    other = index.id_for("a.b")
    assert other != first
    assert index.name(first) == "a;a=1;b=2"
    assert index.name(other) == "a.b"
    assert len(index) == 2
    assert "a;a=1;b=2" in index
    assert "a;b=2;a=1" not in index  # only canonical names are members


def test_ids_are_dense_and_names_round_trip() -> None:
    index = MetricIndex()
    names = [f"host{n}.cpu.user" for n in range(50)]
    ids = [index.id_for(name.encode()) for name in names]
    assert ids == list(range(50))
    assert [index.name(i) for i in ids] == names
    with pytest.raises(IndexError):
        index.name(50)
    with pytest.raises(IndexError):
        index.name(-1)


def test_lookup_never_interns() -> None:
    index = MetricIndex()
    assert index.lookup("a.b") is None
    assert index.lookup(b"x;b=1;a=2") is None
    assert index.lookup("bad name") is None
    assert index.lookup(b"\xff") is None
    assert len(index) == 0
    metric_id = index.id_for("x;a=2;b=1")
    assert index.lookup(b"x;b=1;a=2") == metric_id
    assert index.lookup("x;b=1;a=2") == metric_id


def test_name_length_limit_counts_utf8_bytes() -> None:
    index = MetricIndex(max_name_bytes=10)
    assert index.name(index.id_for("a" * 10)) == "a" * 10
    with pytest.raises(BadMetricName, match="11 bytes is over the 10-byte limit"):
        index.id_for("a" * 11)
    with pytest.raises(BadMetricName):
        index.id_for("é" * 6)  # 12 bytes in UTF-8
    with pytest.raises(BadMetricName):
        index.id_for(b"b" * 11)
    with pytest.raises(ValueError, match="max_name_bytes=0"):
        MetricIndex(max_name_bytes=0)


def test_undecodable_names_are_refused() -> None:
    index = MetricIndex()
    with pytest.raises(BadMetricName, match="not valid UTF-8"):
        index.id_for(b"a.\xff.b")
    with pytest.raises(BadMetricName, match="not encodable"):
        index.id_for("a.\udc80")  # pickle can carry lone surrogates


@pytest.mark.parametrize("native", [False, True])
def test_spelling_cache_is_bounded_but_ids_survive(native: bool) -> None:
    index = MetricIndex(max_spellings=4, native=native)
    ids = {}
    for n in range(10):
        raw = f"m;b={n};a=1".encode()
        ids[raw] = index.id_for(raw)
        assert len(index.spellings) <= 4
    for raw, metric_id in ids.items():
        assert index.id_for(raw) == metric_id
    assert len(index) == 10


def test_native_index_uses_the_compiled_table() -> None:
    from native.carbon_parse import SpellingTable

    assert NativeSpellingTable is SpellingTable
    assert isinstance(MetricIndex().spellings, SpellingTable)
    assert isinstance(MetricIndex(native=False).spellings, SpellingCache)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), st.binary(max_size=12), st.integers(0, 1000)),
        max_size=120,
    ),
    st.integers(1, 40),
)
def test_native_spelling_table_matches_its_twin(
    operations: list[tuple[bool, bytes, int]], limit: int
) -> None:
    native = NativeSpellingTable(limit)
    twin = SpellingCache(limit)
    for is_add, raw, metric_id in operations:
        if is_add and twin.get(raw) < 0:
            native.add(raw, metric_id)
            twin.add(raw, metric_id)
        assert native.get(raw) == twin.get(raw)
        assert len(native) == len(twin)


def test_native_spelling_table_grows_past_many_entries() -> None:
    table = NativeSpellingTable(1 << 20)
    rng = random.Random(7)
    spellings = {rng.randbytes(rng.randrange(0, 70)): n for n in range(20000)}
    for raw, metric_id in spellings.items():
        table.add(raw, metric_id)
    assert len(table) == len(spellings)
    assert all(table.get(raw) == metric_id for raw, metric_id in spellings.items())
    assert table.get(b"never added, surely not") == -1
    table.clear()
    assert len(table) == 0 and table.get(next(iter(spellings))) == -1
