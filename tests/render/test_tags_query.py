"""render.tagquery: tagged names, tag expressions and seriesByTag calls, against graphite-web 1.1.10."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from carbon.names import BadMetricName, canonical_name
from render import ast
from render.grammar import parse
from render.tagquery import (
    TagQueryError,
    canonical_path,
    format_path,
    parse_expression,
    parse_path,
    parse_query,
    path_expression,
    tag_expressions,
)

pytestmark = pytest.mark.usefixtures("graphite_web")

NAME_ALPHABET = 'ab.;=~!^{}",\\ é'


def graphite_parse(path):
    from graphite.tags.utils import TaggedSeries

    try:
        parsed = TaggedSeries.parse(path)
    except Exception:  # noqa: BLE001 - graphite raises bare Exception (and ValueError on unpacking)
        return None
    return parsed.path, list(parsed.tags.items())


def ours(path):
    try:
        parsed = parse_path(path)
    except TagQueryError:
        return None
    return parsed.path, list(parsed.tags.items())


@settings(max_examples=600, deadline=None)
@given(st.text(alphabet=NAME_ALPHABET, min_size=1, max_size=16))
def test_parse_path_matches_graphite_including_tag_order(path):
    assert ours(path) == graphite_parse(path)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.text(alphabet="ab=.é\\\"", min_size=1, max_size=3), st.text(alphabet='ab;.,~"\\', min_size=1, max_size=4)),
        max_size=3,
    ),
    st.sampled_from(["m", "~m.x", "a{b"]),
)
def test_openmetrics_names_match_graphite(labels, metric):
    def escape(value):
        return value.replace("\\", "\\\\").replace('"', '\\"')

    path = metric + "{" + ",".join(f'{k}="{escape(v)}"' for k, v in labels) + "}"
    assert ours(path) == graphite_parse(path)


@pytest.mark.parametrize(
    ("path", "canonical", "tags"),
    [
        ("cpu;b=2;a=1", "cpu;a=1;b=2", [("b", "2"), ("a", "1"), ("name", "cpu")]),
        ("cpu;a=2;a.b=1", "cpu;a.b=1;a=2", [("a", "2"), ("a.b", "1"), ("name", "cpu")]),
        ("~cpu;name=zz;a=1", "cpu;a=1", [("name", "cpu"), ("a", "1")]),
        ("cpu;a=1;a=2", "cpu;a=2", [("a", "2"), ("name", "cpu")]),
        ("cpu;a=x=y", "cpu;a=x=y", [("a", "x=y"), ("name", "cpu")]),
        ('m{dc="e\\"1",b="2"}', 'm;b=2;dc=e"1', [("dc", 'e"1'), ("b", "2"), ("name", "m")]),
        ("plain.name", "plain.name", [("name", "plain.name")]),
    ],
)
def test_parse_path_examples(path, canonical, tags):
    parsed = parse_path(path)
    assert (parsed.path, list(parsed.tags.items())) == (canonical, tags)
    assert canonical_path(path) == canonical == format_path(parsed.tags)


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("", "empty"),
        (";a=1", "no metric name"),
        ("~~;a=1", "metric name is empty"),
        ("a;b", "invalid segment"),
        ("a;=1", "invalid segment"),
        ("a;b=", "empty"),
        ("a;b^c=1", "holds '\\^'"),
        ("a;b=~1", "starts with '~'"),
        ("a;b=1;c", "invalid segment 'c'"),
        ('m{a=1,b="2"}', "invalid label"),
    ],
)
def test_bad_paths_are_refused_with_a_reason(path, reason):
    with pytest.raises(TagQueryError, match=reason):
        parse_path(path)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="ab;=~ \t.", min_size=1, max_size=12))
def test_canonical_path_agrees_with_carbon_where_carbon_accepts(name):
    try:
        expected = canonical_name(name)
    except BadMetricName:
        return
    if ";" not in expected:
        # the daemon also drops an untagged name's leading and doubled dots (they name the
        # same file); graphite's path keeps them
        assume(not name.lstrip("~").startswith(".") and ".." not in name)
    assert canonical_path(name) == expected


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="ab;!=~^.*([|", max_size=9))
def test_parse_expression_matches_graphite_tagspec(expression):
    from graphite.tags.base import BaseTagDB

    try:
        expected = BaseTagDB.parse_tagspec(expression)
    except ValueError:
        expected = None
    try:
        matcher = parse_expression(expression)
        got = (matcher.tag, matcher.operator, matcher.spec)
    except TagQueryError as exc:
        if "bad regular expression" in str(exc):
            return  # graphite fails later, when it compiles the regex
        got = None
    assert got == expected


@pytest.mark.parametrize(
    ("expression", "matches_empty", "present", "accepted"),
    [
        ("dc=", True, "x", False),
        ("dc!=", False, "x", True),
        ("dc=east", False, "east", True),
        ("dc!=east", True, "west", True),
        ("dc=~ea", False, "east", True),
        ("dc=~as", False, "east", False),  # anchored at the start
        ("dc=~.*", True, "east", True),
        ("dc!=~.*", False, "east", False),
        ("dc!=~e", True, "west", True),
    ],
)
def test_matchers(expression, matches_empty, present, accepted):
    matcher = parse_expression(expression)
    assert matcher.matches_empty is matches_empty
    check = matcher.accepts_missing_or if matches_empty else matcher.accepts_present
    assert check(present) is accepted
    assert str(matcher) == expression


def test_query_splits_required_and_filters():
    query = parse_query(["name=cpu", "dc!=east", "rack="])
    assert [str(m) for m in query.required] == ["name=cpu"]
    assert [str(m) for m in query.filters] == ["dc!=east", "rack="]
    assert query.accepts({"name": "cpu", "dc": "west"})
    assert not query.accepts({"name": "cpu", "dc": "west", "rack": "r1"})
    assert not query.accepts({"name": "cpu", "dc": "east"})
    with pytest.raises(TagQueryError, match="must not match the empty value"):
        parse_query(["dc!=east"])
    with pytest.raises(TypeError):
        parse_query("name=cpu")


@pytest.mark.parametrize(
    "target",
    [
        "seriesByTag('a=b', \"c!=d\")",
        "seriesByTag( 'name=x' ,1, none)",
        "seriesByTag('a=\\'b')",
        "seriesByTag()",
        "seriesByTag('name=~cpu.*','dc=~east|west')",
    ],
)
def test_seriesbytag_expressions_and_path_expression_match_graphite(target):
    from graphite.render.grammar import grammar

    call = grammar.parseString(target).expression.call
    node = parse(target)
    assert isinstance(node, ast.Call)
    assert path_expression(node) == call.raw
    assert tag_expressions(node) == [a.string[1:-1] for a in call.args if a.string]


def test_nested_and_piped_seriesbytag_keep_their_own_source():
    node = parse("sumSeries(seriesByTag('a=b'),x.y)")
    inner = node.args[0]
    assert path_expression(inner) == "seriesByTag('a=b')"
    piped = parse("seriesByTag('name=cpu')|aliasByTags('dc')")
    assert path_expression(piped.args[0]) == "seriesByTag('name=cpu')"
    assert path_expression(ast.Call("seriesByTag", (ast.String("a=b"),))) == "seriesByTag('a=b')"
    with pytest.raises(ValueError, match="not seriesByTag"):
        tag_expressions(node)
