"""``/metrics/*``, ``/functions`` and ``/version`` against graphite-web 1.1.10 over the same files."""

from __future__ import annotations

import json
import pickle
import time
from pathlib import Path

import msgpack
import pytest
from app_support import NOW, carbyne_get, graphite_get, graphite_http, make_app, write_metric

pytestmark = pytest.mark.usefixtures("graphite_web")

METRICS = ["a.b.c", "a.x.c", "a.y", "a.b.d", "b.one", "caf\u00e9.x", "deep.er.est.leaf", "with+plus.v"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("metrics-data")
    for name in METRICS:
        write_metric(root, name, NOW - 600, 60, [1.0] * 5, points=100)
    return root


@pytest.fixture(scope="module")
def client(data_dir: Path):
    return make_app(data_dir)


@pytest.fixture()
def graphite(data_dir: Path):
    with graphite_http(data_dir) as client:
        yield client


FIND_CASES = [
    {"query": "*"},
    {"query": "a.*"},
    {"query": "a.*", "wildcards": "1"},
    {"query": "a.b.*", "wildcards": "1"},
    {"query": "a.{b,x}"},
    {"query": "a.{b,x}.*"},
    {"query": "a.*.c", "wildcards": "1"},
    {"query": "a.*", "leavesOnly": "1"},
    {"query": "a.*", "jsonp": "cb"},
    {"query": "a.*", "pretty": "1"},
    {"query": "nothing.*"},
    {"query": "*", "format": "completer"},
    {"query": "a.", "format": "completer", "wildcards": "1"},
    {"query": "a..c", "format": "completer"},
    {"query": "a.b,x", "format": "completer", "automatic_variants": "1"},
    {"query": "a.*.*", "format": "nodelist", "position": "1"},
    {"query": "a.*.*", "format": "nodelist"},
    {"query": "caf*"},
    {"query": "caf*.*", "format": "completer"},
    {"query": "a.*", "from": "-1h", "until": "now"},
    {"query": "a.*", "from": "-1", "until": "-1"},
]


@pytest.mark.parametrize("params", FIND_CASES, ids=lambda c: "&".join(f"{k}={v}" for k, v in c.items()))
@pytest.mark.parametrize("path", ["/metrics/find", "/metrics/find/", "/metrics"])
def test_find_answers_like_graphite(params, path, client, graphite) -> None:
    assert carbyne_get(client, path, params) == graphite_get(graphite, path, params)


def test_find_orders_equal_node_names_by_path(client, graphite) -> None:
    """graphite-web shuffles matches before sorting by node name, so its order among
    equal names is random; Carbyne's is by path."""
    params = {"query": "a.{b,x}.*", "format": "completer"}
    ours = json.loads(carbyne_get(client, "/metrics/find", params)[2])["metrics"]
    theirs = json.loads(graphite_get(graphite, "/metrics/find", params)[2])["metrics"]
    assert [n["path"] for n in ours] == ["a.b.c", "a.x.c", "a.b.d"]
    assert sorted(map(str, ours)) == sorted(map(str, theirs))


def test_find_answers_utf8_unless_accept_is_exactly_json(client, graphite) -> None:
    params = {"query": "*"}
    ours = carbyne_get(client, "/metrics/find", params, Accept="application/json, text/plain, */*")
    theirs = graphite_get(graphite, "/metrics/find", params, HTTP_ACCEPT="application/json, text/plain, */*")
    assert ours == theirs
    assert ours[1] == "application/json;charset=utf-8" and "caf\u00e9".encode() in ours[2]


def test_find_json_lists_leaf_intervals_like_graphite(client, graphite) -> None:
    params = {"query": "a.*", "format": "json"}
    before = time.time()
    ours = json.loads(carbyne_get(client, "/metrics/find", params)[2])
    theirs = json.loads(graphite_get(graphite, "/metrics/find", params)[2])
    assert [(n["path"], n["is_leaf"]) for n in ours] == [(n["path"], n["is_leaf"]) for n in theirs]
    leaf = next(n for n in ours if n["is_leaf"])
    (interval,) = leaf["intervals"]
    assert before - 100 * 60 - 1 <= interval["start"] <= time.time() - 100 * 60
    assert interval["end"] >= interval["start"]
    their_leaf = next(n for n in theirs if n["is_leaf"])
    assert abs(their_leaf["intervals"][0]["start"] - interval["start"]) < 5


@pytest.mark.parametrize("fmt", ["pickle", "msgpack"])
def test_find_for_cluster_front_ends_matches_graphite(fmt, client, graphite) -> None:
    from graphite.util import unpickle

    params = {"query": "a.*", "format": fmt, "local": "1"}
    ours = carbyne_get(client, "/metrics/find/", params)
    theirs = graphite_get(graphite, "/metrics/find/", params)
    assert ours[:2] == theirs[:2]
    load = unpickle.loads if fmt == "pickle" else msgpack.unpackb
    mine, their = load(ours[2]), load(theirs[2])
    assert [(n["path"], n["is_leaf"]) for n in mine] == [(n["path"], n["is_leaf"]) for n in their]
    for m, t in zip(mine, their, strict=True):
        if m["is_leaf"]:
            assert type(m["intervals"]) is type(t["intervals"])
            m_start = list(m["intervals"])[0][0] if fmt == "msgpack" else m["intervals"][0].start
            t_start = list(t["intervals"])[0][0] if fmt == "msgpack" else t["intervals"][0].start
            assert abs(m_start - t_start) < 5


def test_graphite_remote_finder_reads_our_find_pickle(client) -> None:
    """What graphite-web's RemoteFinder does with a CLUSTER_SERVERS answer."""
    from graphite.intervals import IntervalSet
    from graphite.util import unpickle

    body = carbyne_get(client, "/metrics/find/", {"query": "a.*", "format": "pickle", "local": "1"})[2]
    nodes = unpickle.loads(body)
    leaf = next(n for n in nodes if n["is_leaf"])
    assert isinstance(leaf["intervals"], IntervalSet) and leaf["intervals"].size == pytest.approx(6000, abs=5)
    assert pickle.loads(body)[0]["path"] == "a.b"


def test_find_takes_grafanas_unencoded_post_body(client, graphite) -> None:
    url = f"/metrics/find?from={NOW - 3600}&until={NOW}"
    for body in ("query=a.*", "query=a.{b,x}.*", "query=*"):
        ours = client.post(url, data=body, content_type="application/x-www-form-urlencoded")
        theirs = graphite.post(url, body, content_type="application/x-www-form-urlencoded")
        assert (ours.status_code, ours.data) == (theirs.status_code, theirs.content)
        bare = client.post(url, data=body, content_type="")
        assert bare.data == ours.data


def test_find_glob_over_the_limit_is_a_400(data_dir) -> None:
    small = make_app(data_dir, max_find_nodes=2)
    status, content_type, body = carbyne_get(small, "/metrics/find", {"query": "*"})
    assert status == 400 and content_type == "application/json"
    assert "more than 2 matches" in json.loads(body)["error"]


@pytest.mark.parametrize(
    "params,needle",
    [
        ({}, "missing required parameter 'query'"),
        ({"query": ""}, "query=''"),
        ({"query": "a.*", "format": "xml"}, "format='xml'"),
        ({"query": "a.*", "from": "garbage"}, "from='garbage'"),
        ({"query": "a.*", "wildcards": "yes"}, "wildcards='yes'"),
        ({"query": "a.*", "format": "nodelist", "position": "7"}, "position=7"),
    ],
)
def test_find_bad_input_is_a_400(params, needle, client) -> None:
    status, _, body = carbyne_get(client, "/metrics/find", params)
    assert status == 400
    assert needle in body.decode()


EXPAND_CASES = [
    {"query": "a.*"},
    {"query": ["a.*", "a.*.c", "a.b.*"]},
    {"query": ["a.*", "a.*.c"], "groupByExpr": "1"},
    {"query": ["a.*", "b.*"], "leavesOnly": "1"},
    {"query": "a.*", "jsonp": "cb"},
    {"query": "nothing"},
    {},
]


@pytest.mark.parametrize("params", EXPAND_CASES, ids=str)
def test_expand_answers_like_graphite(params, client, graphite) -> None:
    assert carbyne_get(client, "/metrics/expand", params) == graphite_get(graphite, "/metrics/expand", params)


@pytest.mark.parametrize("params", [{}, {"local": "1"}, {"jsonp": "cb"}], ids=str)
def test_index_json_answers_like_graphite(params, client, graphite) -> None:
    ours = carbyne_get(client, "/metrics/index.json", params)
    assert ours == graphite_get(graphite, "/metrics/index.json", params)
    assert "deep.er.est.leaf" in ours[2].decode()


# --- /functions and /version -----------------------------------------------------------


def test_functions_serves_the_registry(client) -> None:
    from render.functions import default_registry

    status, content_type, body = carbyne_get(client, "/functions")
    assert (status, content_type) == (200, "application/json")
    assert json.loads(body) == json.loads(json.dumps(default_registry().describe_all()))
    grouped = json.loads(carbyne_get(client, "/functions", {"grouped": "true"})[2])
    assert set(grouped) == {info["group"] for info in json.loads(body).values()}
    combine = json.loads(carbyne_get(client, "/functions", {"group": "Combine"})[2])
    assert combine and {info["group"] for info in combine.values()} == {"Combine"}
    pretty = carbyne_get(client, "/functions/", {"pretty": "1"})[2].decode()
    assert pretty.startswith('{\n  "') and json.loads(pretty) == json.loads(body)


def test_function_details_and_unknown_functions(client) -> None:
    status, _, body = carbyne_get(client, "/functions/sumSeries")
    assert status == 200 and json.loads(body)["name"] == "sumSeries"
    status, content_type, body = carbyne_get(client, "/functions/doesNotExist")
    assert (status, content_type) == (404, "application/json")
    assert "doesNotExist" in json.loads(body)["error"]


def test_functions_only_answer_get(client) -> None:
    assert client.post("/functions").status_code == 405


def test_functions_patch_infinite_defaults_as_graphite_does() -> None:
    from render.views.functions import functions_json
    from render.views.params import Params

    app = make_app(Path("."))
    with app.application.test_request_context():
        body = functions_json({"f": {"default": float("inf"), "x": [float("-inf"), 1]}}, Params([])).get_data()
    assert body == b'{"f": {"default": 1e9999, "x": [-1e9999, 1]}}'


@pytest.mark.parametrize("path", ["/version", "/version/"])
def test_version_answers_like_graphite(path, client, graphite) -> None:
    assert carbyne_get(client, path) == graphite_get(graphite, path) == (200, "text/html; charset=utf-8", b"1.1.10\n")


def test_unknown_paths_are_404_without_html(client) -> None:
    status, content_type, body = carbyne_get(client, "/nowhere")
    assert status == 404 and content_type.startswith("text/plain")
    assert b"<html" not in body.lower()


@pytest.fixture()
def graphite_functions_view(monkeypatch: pytest.MonkeyPatch, graphite):
    """graphite-web's /functions, which needs inspect.getargspec (gone in Python 3.11)."""
    import inspect

    def getargspec(function):
        spec = inspect.getfullargspec(function)
        return spec.args, spec.varargs, spec.varkw, spec.defaults

    def formatargspec(args, varargs=None, varkw=None, defaults=None):
        defaults = defaults or ()
        parts = [
            arg if i < len(args) - len(defaults) else f"{arg}={defaults[i - len(args) + len(defaults)]!r}"
            for i, arg in enumerate(args)
        ]
        parts += [f"*{varargs}"] if varargs else []
        parts += [f"**{varkw}"] if varkw else []
        return "(" + ", ".join(parts) + ")"

    monkeypatch.setattr(inspect, "getargspec", getargspec, raising=False)
    monkeypatch.setattr(inspect, "formatargspec", formatargspec, raising=False)
    return graphite


@pytest.mark.parametrize("name", ["sumSeries", "keepLastValue", "aliasSub", "movingAverage", "consolidateBy"])
def test_function_details_match_graphite(name, client, graphite_functions_view) -> None:
    """Same JSON text as graphite-web's /functions/<name> but for module and docstring
    (``keepLastValue``'s ``limit`` default comes out as ``1e9999`` in both)."""
    ours = carbyne_get(client, f"/functions/{name}")
    theirs = graphite_get(graphite_functions_view, f"/functions/{name}")
    assert ours[:2] == theirs[:2] == (200, "application/json")
    mine, their = json.loads(ours[2]), json.loads(theirs[2])
    for info in (mine, their):
        del info["module"], info["description"]
    assert mine == their
    if name == "keepLastValue":
        assert b'"default": 1e9999' in ours[2] and b'"default": 1e9999' in theirs[2]


@pytest.mark.parametrize("path", ["/functions", "/functions/average", "/functions/minimum", "/functions/nope"])
def test_pie_functions_match_graphite(path, client, graphite_functions_view) -> None:
    """``type=pie`` lists the pieMode choices; as graphite-web's but for module and docstring."""
    ours = carbyne_get(client, path, {"type": "pie"})
    theirs = graphite_get(graphite_functions_view, path, {"type": "pie"})
    if path.endswith("nope"):
        assert ours[0] == theirs[0] == 404
        return
    assert ours[:2] == theirs[:2] == (200, "application/json")
    mine, their = json.loads(ours[2]), json.loads(theirs[2])
    for info in (mine.values() if path == "/functions" else [mine]):
        del info["module"], info["description"]
    for info in (their.values() if path == "/functions" else [their]):
        del info["module"], info["description"]
    assert mine == their
