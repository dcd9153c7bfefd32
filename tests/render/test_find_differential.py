"""``/metrics/find``, ``/metrics/expand`` and ``/metrics/index.json`` against graphite-web 1.1.10.

One whisper tree (written with the real ``whisper`` module) is served by both
engines: graphite-web through its own Django views (``StandardFinder`` on the
folder) and Carbyne's Flask app. The tree mixes what graphite allows in
names (``-``, ``_``, ``:``, ``@``, ``+``, ``%``, ``[``, ``?``, unicode), leaves
that are also branches, folders holding no files at all, deep chains, a
symlinked folder and a few hundred random nodes. Requests come from a hand
list, from a seeded generator and from hypothesis; each answer is compared
byte for byte (status, content type, body).

**Order among equal names.** graphite-web shuffles the matches
(``random.shuffle`` in ``Store._list_nodes``) before its stable sort by node
name, so the order of nodes sharing a name (``a.**`` finds many ``leaf``)
and, in treejson, *which* of them stands for the name, is random. The
``graphite`` fixture replaces that shuffle by a sort on the path: one of
graphite's possible answers, the one Carbyne always gives.
"""

from __future__ import annotations

import json
import os
import random
import types
from pathlib import Path

import pytest
import whisper
from app_support import carbyne_get, graphite_get, graphite_http, make_app
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from storage.finder import expand_braces
from storage.paths import metric_path

pytestmark = pytest.mark.usefixtures("graphite_web")

FIXED_LEAVES = [
    "a.b", "a.b.c", "a.b.d", "a.bc", "a.b-c", "a.b_d", "a.x.c", "a.y", "a.ab", "a.axb", "a.a.b",
    "b.one", "b.two", "B.upper", "c.leaf", "c:d.e@f", "user@host.cpu", "caf\u00e9.x",
    "\u65e5\u672c.\u6771\u4eac", "with+plus.v", "pct%41.v", "deep.l1.l2.l3.l4.l5.leaf",
    "deep.l1.leaf", "deep.leaf", "leaf", "x.leaf", "y.leaf.leaf", "mix.same", "mix.same.child",
    "mix.same.child.more", "n1.n2", "a-b.c_d", "[x].y", "q.r?s", "{b}.c",
]
#: Tagged series, stored under ``_tagged/`` by the SHA-256 of the name (carbon's default).
TAGGED = ["cpu.load;dc=dc1;server=web01", "disk;a.b=1"]
#: Folders holding no whisper file at any depth (graphite lists them as branches).
EMPTY_DIRS = ["empty", "a.emptydir", "deep.empty.nested", "mix.same.hollow", "d1.d2.d3"]
ALPHABET = [
    "srv", "web", "db", "cpu", "load", "x", "y", "z", "leaf", "a", "b", "ab", "b1", "b-2", "q_q",
    "m:1", "u@v", "\u00e9t\u00e9", "Web",
]


def random_leaves(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    names: set[str] = set()
    while len(names) < count:
        depth = rng.choice([1, 2, 2, 3, 3, 3, 4, 5, 6])
        names.add(".".join(rng.choice(ALPHABET) for _ in range(depth)))
    return sorted(names)


LEAVES = sorted(set(FIXED_LEAVES) | set(random_leaves(7, 250)))
NODE_NAMES = sorted({node for name in LEAVES + EMPTY_DIRS for node in name.split(".")})


def build_tree(root: Path) -> Path:
    """LEAVES as whisper files, EMPTY_DIRS as bare folders, ``linked`` a symlink to ``b``."""
    for name in LEAVES:
        path = os.path.join(root, *name.split(".")) + ".wsp"
        os.makedirs(os.path.dirname(path), exist_ok=True)
        whisper.create(path, [(60, 60), (3600, 24)])
    for name in EMPTY_DIRS:
        os.makedirs(os.path.join(root, *name.split(".")), exist_ok=True)
    for name in TAGGED:
        path = metric_path(root, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        whisper.create(str(path), [(60, 60)])
    os.symlink(os.path.join(root, "b"), os.path.join(root, "linked"))
    return root


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tree(tmp_path_factory.mktemp("find-tree"))


@pytest.fixture(scope="module")
def client(tree: Path):
    return make_app(tree)


@pytest.fixture()
def graphite(tree: Path, monkeypatch: pytest.MonkeyPatch):
    import graphite.storage

    by_path = types.SimpleNamespace(shuffle=lambda items: items.sort(key=lambda item: item[0]))
    monkeypatch.setattr(graphite.storage, "random", by_path)
    with graphite_http(tree) as client:
        yield client


def _comparable(answer: tuple[int, str, bytes], params: dict) -> tuple[tuple[int, str, object], list[float]]:
    """``format=json`` lists leaf intervals starting at ``now - retention`` and ending
    at the file's mtime: the answer with those times taken out, and the times."""
    status, content_type, body = answer
    if params.get("format") != "json" or status != 200:
        return answer, []
    nodes = json.loads(body)
    times = []
    for node in nodes:
        for interval in node.get("intervals", ()):
            times += [interval.pop("start"), interval.pop("end")]
    return (status, content_type, nodes), times


def same_answer(client, graphite, path: str, params: dict, **headers: str) -> tuple:
    """Carbyne's and graphite's answers (``format=json`` leaf times checked to agree
    within 5 seconds, then left out)."""
    mine, my_times = _comparable(carbyne_get(client, path, params, **headers), params)
    django_headers = {"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()}
    theirs, their_times = _comparable(graphite_get(graphite, path, params, **django_headers), params)
    if mine == theirs:
        assert len(my_times) == len(their_times)
        assert all(abs(a - b) < 5 for a, b in zip(my_times, their_times, strict=True)), params
    return mine, theirs


HAND_QUERIES = [
    "*", "a.*", "a.b*", "{x,y}", "{x,y}.*", "[a-c]", "[a-c].*", "[!a]", "[!a-c]*.*", "a.**",
    "**.leaf", "*.*.*", "**", "a*b", "a.a*b", "a.*b", "*b*", "a.b?", "a.?", "a.b.*", "mix.*",
    "mix.same.*", "mix.**", "mix.same", "deep.**.leaf", "deep.**", "**.l5.*", "linked.*",
    "**.one", "c:d.*", "*.e@f", "user@*.*", "caf\u00e9.*", "caf?.*", "\u65e5*.*", "pct%41.*",
    "with+plus.*", "[x].*", "q.r?s", "q.*", "{b}.*", "empty", "empty.*", "d1.**", "d1.*.*",
    "B.*", "[A-Z].*", "{a,b}.{b,one}", "{a,{b,B}}.*", "{a*,b}.x", "*.{leaf,l1}", "a.{b,b*}",
    "nothing", "nothing.*", "a.b.c.d", "leaf", "leaf.*", "*.leaf", "x.{leaf,}",
    # empty nodes: an empty node is "this folder" in graphite-web
    "a..b", "a.", ".a", "a.*.", "a.b.", "..", ".", "a...", "*..*", "**.", "a.{,b}",
    "{,a}", "a.{,b}.c", "a.{b,}.*", "mix.same.", "deep..l1..leaf", "a.y.", "nothing.",
    # tagged series: looked up by the hash of the name as written, never globbed
    *TAGGED, "cpu.load;server=web01;dc=dc1", "cpu.*;dc=dc1", "_tagged.*", "_tagged.*.*.*",
]
FIND_VARIANTS = [
    {},
    {"format": "treejson", "wildcards": "1"},
    {"format": "completer"},
    {"format": "completer", "wildcards": "1"},
    {"leavesOnly": "1"},
    {"format": "json"},
    {"format": "nodelist"},
    {"format": "nodelist", "position": "0"},
]


@pytest.mark.parametrize("query", HAND_QUERIES)
def test_find_answers_like_graphite(query, client, graphite) -> None:
    mismatches = []
    for variant in FIND_VARIANTS:
        params = {"query": query, **variant}
        mine, theirs = same_answer(client, graphite, "/metrics/find", params)
        if theirs[0] == 500:  # graphite crashed (nodelist on short paths): ours is a clear 400
            assert mine[0] == 400, (params, mine)
        elif mine != theirs:
            mismatches.append((params, theirs, mine))
    assert not mismatches


@pytest.mark.parametrize(
    "params",
    [
        {"query": "a.*", "from": "-1h", "until": "now"},
        {"query": "a.*", "from": "-1", "until": "-1"},
        {"query": "a.*", "from": "20240101", "until": "now-5min", "tz": "Europe/Paris"},
        {"query": "a.*", "from": "-2d", "now": "1700000000"},
        {"query": "a.*", "jsonp": "cb"},
        {"query": "*", "format": "completer", "jsonp": "cb.done", "wildcards": "1"},
        {"query": "a.*", "pretty": "1"},
        {"query": "a.*", "local": "1"},
        {"query": "a.b,x", "format": "completer", "automatic_variants": "1"},
        {"query": "a.b,x.c", "format": "completer", "automatic_variants": "1"},
        {"query": "a..", "format": "completer"},
        {"query": "a", "format": "completer"},
        {"query": "**.", "format": "completer"},
        {"query": "*.*", "format": "nodelist", "position": "-1"},
        {"query": "*.*", "format": "nodelist", "position": "1"},
        {"query": "caf\u00e9.*", "format": "completer"},
    ],
    ids=repr,
)
def test_find_parameters_like_graphite(params, client, graphite) -> None:
    mine, theirs = same_answer(client, graphite, "/metrics/find", params)
    assert mine == theirs


def test_find_unicode_answers_like_graphite_for_browsers(client, graphite) -> None:
    for query in ("*", "caf\u00e9.*", "\u65e5\u672c.*"):
        params = {"query": query, "format": "completer"}
        mine, theirs = same_answer(client, graphite, "/metrics/find", params, Accept="*/*")
        assert mine == theirs
        assert mine[1] == "application/json;charset=utf-8"


@pytest.mark.parametrize(
    "params",
    [
        {"query": "a.*", "from": "garbage"},
        {"query": "a.*", "until": "3 o'clock"},
        {"query": "a.*", "wildcards": "yes"},
        {"query": "a.*", "leavesOnly": "x"},
        {"query": "a.*", "position": "first"},
        {"query": ""},
        {},
    ],
    ids=repr,
)
def test_find_bad_parameters_are_400_in_both(params, client, graphite) -> None:
    mine, theirs = same_answer(client, graphite, "/metrics/find", params)
    assert mine[0] == theirs[0] == 400


@pytest.mark.parametrize(
    ("params", "graphite_status"),
    [
        # graphite: IndexError from nodes_by_position -> 500; ours names the short path
        ({"query": "*", "format": "nodelist", "position": "3"}, 500),
        ({"query": "*", "format": "nodelist", "position": "-3"}, 500),
    ],
    ids=repr,
)
def test_find_refusals_are_clear_400s(params, graphite_status, client, graphite) -> None:
    mine, theirs = same_answer(client, graphite, "/metrics/find", params)
    assert theirs[0] == graphite_status
    assert mine[0] == 400 and json.loads(mine[2])["error"].startswith("cannot ")


def test_jsonp_that_is_no_callback_name_is_refused(client, graphite) -> None:
    """graphite wraps any text (``alert(1)({...})``, a script injection); Carbyne refuses it."""
    params = {"query": "a.*", "jsonp": "alert(1)"}
    mine, theirs = same_answer(client, graphite, "/metrics/find", params)
    assert theirs[:2] == (200, "text/javascript") and theirs[2].startswith(b"alert(1)(")
    assert mine[0] == 400 and b"jsonp" in mine[2]


def test_unknown_format_is_a_plain_text_400_in_both(client, graphite) -> None:
    mine, theirs = same_answer(client, graphite, "/metrics/find", {"query": "a.*", "format": "xml"})
    assert (theirs[0], theirs[1]) == (400, "text/plain")
    assert mine[0] == 400 and mine[1].startswith("text/plain") and mine[2].startswith(b"cannot find format=")


def test_find_post_bodies_like_graphite(client, graphite) -> None:
    for body in ("query=a.*", "query=a..b&format=completer", "query=**.leaf&leavesOnly=1"):
        mine = client.post("/metrics/find", data=body, content_type="application/x-www-form-urlencoded")
        theirs = graphite.post("/metrics/find", body, content_type="application/x-www-form-urlencoded")
        assert (mine.status_code, mine.data) == (theirs.status_code, theirs.content)


@pytest.mark.parametrize(
    ("query", "graphite_paths", "carbyne_paths"),
    [
        # graphite drops every backslash before globbing, so ``\[x\]`` is the class [x]
        # (folder ``x``), then pastes the pattern node back into the paths it found:
        # ``[x].leaf`` names a series stored as ``x.leaf``, and ``[x].y`` is lost.
        # Carbyne reads ``\[`` as a literal bracket (see storage.finder).
        ("\\[x\\].*", ["[x].b", "[x].leaf"], ["[x].y"]),
        # the completer's appended ``*`` is pasted back as well: graphite names a
        # series ``q.r?s*`` that does not exist
        ("q.r\\?s", ["q.r?s*"], ["q.r?s"]),
    ],
)
def test_backslash_escapes_differ_on_purpose(query, graphite_paths, carbyne_paths, client, graphite) -> None:
    params = {"query": query, "format": "completer"}
    mine, theirs = same_answer(client, graphite, "/metrics/find", params)
    their_paths = [m["path"].rstrip(".") for m in json.loads(theirs[2])["metrics"]]
    assert set(graphite_paths) <= set(their_paths)
    assert [m["path"].rstrip(".") for m in json.loads(mine[2])["metrics"]] == carbyne_paths


def graphite_mangles(query: str) -> bool:
    """Whether graphite-web's ``**`` runs from a folder spelled with a trailing ``/``.

    Its ``_find_paths`` lists the folders under ``**`` as ``walk(dir)`` paths
    sliced by ``len(dir) + 1``: when ``dir`` ends with ``/`` that cuts one
    character too many (``a/b`` becomes ``/b``, an absolute path; ``ab``
    becomes ``b``). A folder gets that slash after an empty node (``join(dir,
    "")``) or another ``**`` (whose walk includes the folder itself as ``""``),
    and at the top of graphite's default ``WHISPER_DIR``, which ends with one.
    Those answers are broken; Carbyne answers as if the slash were not there.
    """
    previous: set[str] = set()
    for node in query.split("."):
        variants = set(expand_braces(node))
        if "**" in variants and previous & {"", "**"}:
            return True
        previous = variants
    return False


@pytest.mark.parametrize(
    ("query", "sane"),
    [(".**", "**"), ("a..**", "a.**"), ("**.same..**", "**.same.**")],
)
def test_globstar_after_an_empty_node_is_not_mangled(query, sane, client, graphite) -> None:
    assert graphite_mangles(query)
    params = {"query": query, "format": "json"}
    mine, theirs = same_answer(client, graphite, "/metrics/find", params)
    assert mine != theirs
    ours_sane, theirs_sane = same_answer(client, graphite, "/metrics/find", {**params, "query": sane})
    assert ours_sane == theirs_sane
    assert mine == ours_sane


def test_globstar_under_a_whisper_dir_ending_in_slash(tree, client, graphite) -> None:
    """graphite's default ``WHISPER_DIR`` ends with ``/``: a leading ``**`` then misses
    most of its matches and lists others several times; Carbyne finds what the folder holds."""
    from graphite.finders.standard import StandardFinder
    from graphite.finders.utils import FindQuery

    def paths(root: str) -> list[str]:
        return sorted(node.path for node in StandardFinder([root]).find_nodes(FindQuery("**.leaf", None, None)))

    with_slash, without = paths(str(tree) + "/"), paths(str(tree))
    assert with_slash != without and len(set(with_slash)) < len(with_slash)
    params = {"query": "**.leaf", "format": "json"}
    mine = [node["path"] for node in json.loads(carbyne_get(client, "/metrics/find", params)[2])]
    assert sorted(set(mine)) == sorted(set(without))
    assert set(with_slash) < set(without)


# --- generated patterns -------------------------------------------------------------


def _mutate(rng: random.Random, node: str) -> str:
    """One pattern node derived from a real name, mostly still matching it."""
    other = rng.choice(NODE_NAMES)
    choices = [
        lambda: node,
        lambda: node,
        lambda: "*",
        lambda: node[0] + "*",
        lambda: "*" + node[-1],
        lambda: node[0] + "*" + node[-1],
        lambda: "?" * len(node),
        lambda: node[:-1] + "?",
        lambda: "[" + node[0] + "-z]" + node[1:],
        lambda: "[!" + node[0] + "]*",
        lambda: "{" + node + "," + other + "}",
        lambda: "{" + node[0] + "*," + other + "}",
        lambda: "{" + other + ",}",
        lambda: "**",
        lambda: "",
        lambda: node.upper(),
        lambda: other,
    ]
    return rng.choice(choices)()


def random_queries(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    queries = []
    for _ in range(count):
        nodes = rng.choice(LEAVES + EMPTY_DIRS).split(".")
        nodes = nodes[: rng.randint(1, len(nodes))]
        pattern = [_mutate(rng, node) for node in nodes]
        if rng.random() < 0.15:
            pattern.append(rng.choice(["*", "", "**", "leaf"]))
        queries.append(".".join(pattern))
    return queries


def test_generated_find_queries_like_graphite(client, graphite) -> None:
    mismatches = []
    variants = [{}, {"format": "completer"}, {"leavesOnly": "1", "wildcards": "1"}]
    for index, query in enumerate(random_queries(2024, 300)):
        if not query or graphite_mangles(query):
            continue
        params = {"query": query, **variants[index % len(variants)]}
        mine, theirs = same_answer(client, graphite, "/metrics/find", params)
        if mine != theirs:
            mismatches.append((params, theirs, mine))
    assert not mismatches


def test_generated_expand_queries_like_graphite(client, graphite) -> None:
    rng = random.Random(99)
    queries = [q for q in random_queries(31, 300) if not graphite_mangles(q)]
    queries.append("")  # no query at all: graphite finds the root folder, path ""
    mismatches = []
    for start in range(0, len(queries), 3):
        params = {"query": queries[start:start + 3]}
        if rng.random() < 0.5:
            params["groupByExpr"] = "1"
        if rng.random() < 0.5:
            params["leavesOnly"] = "1"
        mine, theirs = same_answer(client, graphite, "/metrics/expand", params)
        if mine != theirs:
            mismatches.append((params, theirs, mine))
    assert not mismatches


def _node_pattern() -> st.SearchStrategy[str]:
    name = st.sampled_from(NODE_NAMES)
    return st.one_of(
        name,
        st.sampled_from(["*", "**", "", "?", "*?", "[a-c]*", "[!a]*", "{a,b}", "{,x}", "*b*", "[!a-z]"]),
        st.builds(lambda n: n[0] + "*", name),
        st.builds(lambda a, b: "{" + a + "," + b + "}", name, name),
    )


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    nodes=st.lists(_node_pattern(), min_size=1, max_size=5),
    variant=st.sampled_from([{}, {"format": "completer", "wildcards": "1"}, {"format": "json"}]),
)
def test_hypothesis_find_like_graphite(nodes, variant, client, graphite) -> None:
    params = {"query": ".".join(nodes), **variant}
    assume(params["query"] != "" and not graphite_mangles(params["query"]))
    mine, theirs = same_answer(client, graphite, "/metrics/find", params)
    assert mine == theirs, params


# --- /metrics/expand and /metrics/index.json -------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"query": ["a.*", "a..b", "a.", "**.leaf"]},
        {"query": ["a.*", "a..b", "a.", "**.leaf"], "groupByExpr": "1"},
        {"query": ["mix.**", "empty", "d1.*"], "leavesOnly": "1"},
        {"query": ["mix.**", "empty", "d1.*"], "groupByExpr": "1", "leavesOnly": "1"},
        {"query": "**", "jsonp": "cb"},
        {"query": ["caf\u00e9.*", "\u65e5\u672c.*"]},
        {"query": "."},
    ],
    ids=repr,
)
def test_expand_like_graphite(params, client, graphite) -> None:
    mine, theirs = same_answer(client, graphite, "/metrics/expand", params)
    assert mine == theirs


@pytest.mark.parametrize("params", [{}, {"local": "1"}, {"jsonp": "cb"}, {"pretty": "1"}], ids=repr)
def test_index_json_like_graphite(params, client, graphite) -> None:
    mine, theirs = same_answer(client, graphite, "/metrics/index.json", params)
    assert mine == theirs
    assert "deep.l1.l2.l3.l4.l5.leaf" in mine[2].decode()
