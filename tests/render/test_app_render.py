"""``/render`` end to end: Carbyne's app and graphite-web 1.1.10 over the same whisper files.

Both answer the same requests; status, content type and body bytes must be
equal (pickles are compared unpickled). Bad input must be a 400 naming the
problem, in JSON for ``format=json``.
"""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path

import msgpack
import pytest
from app_support import NOW, carbyne_get, graphite_get, graphite_http, make_app, write_metric

pytestmark = pytest.mark.usefixtures("graphite_web")

STEP = 60
START = NOW - 3600  # values every minute over the last hour


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("render-data")
    base = START - START % STEP
    write_metric(root, "a.b.c", base, STEP, [float(i) + 0.5 if i % 7 else None for i in range(60)])
    write_metric(root, "a.x.c", base, STEP, [(-1.0) ** i * 10.0 ** (i % 30 - 15) for i in range(60)])
    write_metric(root, "a.y", base, STEP, [math.inf if i == 3 else -math.inf if i == 4 else 1 / 3 * i for i in range(60)])
    write_metric(root, "big.value", base, STEP, [1e300, 1.7976931348623157e308, 5e-324, 123456789012345.67, 0.1 + 0.2] * 12)
    write_metric(root, "sparse.one", base, STEP, [None] * 30 + [7.0] + [None] * 29)
    write_metric(root, "uni.caf\u00e9", base, STEP, [1.0] * 60)
    return root


@pytest.fixture(scope="module")
def client(data_dir: Path):
    return make_app(data_dir)


@pytest.fixture()
def graphite(data_dir: Path):
    with graphite_http(data_dir) as client:
        yield client


WINDOW = {"from": str(START), "until": str(NOW), "now": str(NOW)}

CASES = [
    {"target": "a.b.c", "format": "json"},
    {"target": ["a.*.c", "a.y"], "format": "json"},
    {"target": "a.*.c", "format": "json", "maxDataPoints": "7"},
    {"target": ["a.b.c", "a.y", "sparse.one"], "format": "json", "maxDataPoints": "1"},
    {"target": "a.b.c", "format": "json", "maxDataPoints": "5000"},
    {"target": ["sparse.one", "a.b.c"], "format": "json", "noNullPoints": "1"},
    {"target": "sparse.one", "format": "json", "noNullPoints": "1", "maxDataPoints": "3"},
    {"target": "a.b.c", "format": "json", "jsonp": "cb"},
    {"target": "a.b.c", "jsonp": "cb", "format": "json", "pretty": "1"},
    {"target": "a.b.c", "jsonp": "", "format": "json"},
    {"target": "a.b.c", "jsonp": "jQuery1_2.done", "format": "dygraph"},
    {"target": "big.value", "format": "json"},
    {"target": "nothing.here", "format": "json"},
    {"target": "uni.*", "format": "json"},
    {"target": ["a.*.c", "big.value"], "format": "csv"},
    {"target": "a.b.c", "format": "csv", "tz": "America/New_York"},
    {"target": "a.b.c", "format": "csv", "tz": "No/Such_Zone"},
    {"target": ["a.*.c", "a.y", "big.value"], "format": "raw"},
    {"target": "uni.*", "format": "raw"},
    {"target": "a.*", "format": "msgpack"},
    {"target": ["a.*.c", "a.y"], "format": "dygraph"},
    {"target": "a.y", "format": "rickshaw"},
    {"target": "sumSeries(a.*.c)", "format": "json"},
    {"target": "a.b.c", "format": "json", "template[x]": "1"},
    {"target": "template(a.$x.c)", "format": "json", "template[x]": "b"},
    {"target": "template(a.$x.c, x='x')", "format": "raw"},
    {"target": "a.*.c|sumSeries()", "format": "raw"},
    {"target": "a.b.c", "format": "raw", "from": "-20min", "until": "-5min"},
    {"target": "a.b.c", "format": "raw", "from": str(NOW), "until": str(START)},
    {"target[]": "a.b.c", "format": "raw"},
    {"target": "a.b.c", "rawData": "1"},
    {"target": "a.b.c", "format": "json", "xFilesFactor": "0.5", "maxDataPoints": "4"},
    {"format": "json"},
    {"target": "", "format": "json"},
]


def _request(case: dict) -> dict:
    return {**WINDOW, **case}


@pytest.mark.parametrize("case", CASES, ids=lambda c: "&".join(f"{k}={v}" for k, v in c.items()))
def test_render_answers_like_graphite(case, client, graphite) -> None:
    params = _request(case)
    ours = carbyne_get(client, "/render", params)
    theirs = graphite_get(graphite, "/render", params)
    assert ours == theirs


@pytest.mark.parametrize("fmt", ["pickle", "msgpack"])
def test_cluster_pickle_and_msgpack_hold_the_same_series(fmt, client, graphite) -> None:
    params = {**WINDOW, "target": ["a.*.c", "a.y", "sparse.one"], "format": fmt, "local": "1", "noCache": "1"}
    ours = carbyne_get(client, "/render/", params)
    theirs = graphite_get(graphite, "/render/", params)
    assert ours[:2] == theirs[:2]
    load = pickle.loads if fmt == "pickle" else msgpack.unpackb
    assert load(ours[2]) == load(theirs[2])


def test_post_form_body_equals_get(client, graphite) -> None:
    body = {**WINDOW, "target": ["a.b.c", "a.y"], "format": "json", "maxDataPoints": "10"}
    posted = client.post("/render", data=body)
    got = carbyne_get(client, "/render", body)
    assert (posted.status_code, posted.content_type, posted.data) == got
    theirs = graphite.post("/render", body)
    assert posted.data == theirs.content


def test_body_values_win_over_the_query_string(client, graphite) -> None:
    url = f"/render?target=a.b.c&format=raw&from={START}&until={NOW}&now={NOW}"
    ours = client.post(url, data={"target": "a.y", "until": str(NOW - 600)})
    theirs = graphite.post(url, {"target": "a.y", "until": str(NOW - 600)})
    assert ours.data == theirs.content
    assert ours.data.count(b"\n") == 2


def test_default_window_is_the_last_day(client) -> None:
    answer = client.get("/render", query_string={"target": "a.b.c", "format": "raw", "now": str(NOW)})
    header = answer.data.split(b"|")[0].split(b",")
    assert int(header[1]) == NOW - 86400 - (NOW - 86400) % STEP + STEP
    assert int(header[2]) == NOW - NOW % STEP + STEP


def test_cache_headers_follow_cache_timeout(client) -> None:
    cached = client.get("/render", query_string={**WINDOW, "target": "a.b.c", "format": "json", "cacheTimeout": "30"})
    assert cached.headers["Cache-Control"] == "max-age=30"
    never = client.get("/render", query_string={**WINDOW, "target": "a.b.c", "format": "json", "noCache": "1"})
    assert "no-cache" in never.headers["Cache-Control"]


# --- bad input ---------------------------------------------------------------------

BAD = [
    ({"target": "sumSeries(a.b.c", "format": "json"}, "target=sumSeries(a.b.c"),
    ({"target": "noSuchFunction(a.b.c)", "format": "json"}, "noSuchFunction"),
    ({"target": "a.b.c", "format": "json", "from": "garbage"}, "from='garbage'"),
    ({"target": "a.b.c", "format": "json", "until": "-1m"}, "until='-1m'"),
    ({"target": "a.b.c", "format": "json", "from": "-1h", "until": "-1h"}, "empty time range"),
    ({"target": "a.b.c", "format": "bogus"}, "format='bogus'"),
    ({"target": "a.b.c", "format": "png", "width": "huge"}, "width=huge"),
    ({"target": "a.b.c", "format": "svg", "bgcolor": "notacolour"}, "bgcolor"),
    ({"target": "a.b.c", "format": "json", "graphType": "pie"}, "graphType='pie'"),
    ({"target": "a.b.c", "format": "png", "graphType": "pie", "pieMode": "median"}, "pieMode=median"),
    ({"target": "a.b.c", "format": "json", "maxDataPoints": "abc"}, "maxDataPoints='abc'"),
    ({"target": "a.b.c", "format": "json", "maxDataPoints": "0"}, "maxDataPoints='0'"),
    ({"target": "a.b.c", "format": "json", "maxDataPoints": "99999999999999"}, "maxDataPoints=99999999999999"),
    ({"target": "a.b.c", "format": "json", "xFilesFactor": "2"}, "xFilesFactor='2'"),
    ({"target": "a.b.c", "format": "json", "cacheTimeout": "soon"}, "cacheTimeout='soon'"),
    ({"target": "a.b.c", "format": "json", "graphType": "bar"}, "graphType='bar'"),
    ({"target": "consolidateBy(a.b.c, 'median')", "format": "json"}, "consolidateBy"),
    ({"target": "a.b.c" + ".d" * 40000, "format": "json"}, "max_target_length"),
    ({"target": "a.b.c", "format": "json", "jsonp": "alert(1)//"}, "jsonp='alert(1)//'"),
]


@pytest.mark.parametrize("params,needle", BAD, ids=[n for _, n in BAD])
def test_bad_input_is_a_400_naming_the_problem(params, needle, client) -> None:
    status, content_type, body = carbyne_get(client, "/render", {**WINDOW, **params})
    assert status == 400
    text = body.decode()
    if params.get("format") == "json":
        assert content_type == "application/json"
        text = json.loads(text)["error"]
    else:
        assert content_type.startswith("text/plain")
    assert needle in text
    assert "Traceback" not in text


@pytest.mark.parametrize(
    "params,content_type,magic",
    [
        ({}, "image/png", b"\x89PNG\r\n\x1a\n"),
        ({"format": "png", "width": "600", "height": "300", "title": "cpu"}, "image/png", b"\x89PNG"),
        ({"format": "svg"}, "image/svg+xml", b"<?xml"),
        ({"format": "pdf"}, "application/x-pdf", b"%PDF"),
    ],
    ids=["default", "png", "svg", "pdf"],
)
def test_images_are_drawn_like_graphite_serves_them(params, content_type, magic, client, graphite) -> None:
    request = {**WINDOW, "target": ["a.*.c", "a.y"], **params}
    status, ours_type, body = carbyne_get(client, "/render", request)
    their_status, their_type, _ = graphite_get(graphite, "/render", request)
    assert (status, ours_type) == (their_status, their_type) == (200, content_type)
    assert body.startswith(magic)


def test_svg_with_jsonp_is_a_javascript_string_like_graphite(client) -> None:
    status, content_type, body = carbyne_get(client, "/render", {**WINDOW, "target": "a.b.c", "format": "svg", "jsonp": "cb"})
    assert (status, content_type) == (200, "text/javascript")
    assert body.startswith(b'cb("<?xml') and body.endswith(b'")')
    assert json.loads(body[3:-1]).startswith("<?xml")


def test_a_glob_reading_too_many_series_is_a_400(data_dir) -> None:
    from render.limits import Limits

    small = make_app(data_dir, limits=Limits(max_series_per_request=2))
    assert carbyne_get(small, "/render", {**WINDOW, "target": "a.b.c", "format": "json"})[0] == 200
    status, _, body = carbyne_get(small, "/render", {**WINDOW, "target": "*.*", "format": "json"})
    assert status == 400
    assert "max_series_per_request=2" in json.loads(body)["error"]


def test_unexpected_errors_are_a_500_without_a_stack_trace(data_dir, caplog) -> None:
    from render.app import create_app
    from render.config import RenderConfig

    class Broken:
        def evaluate(self, targets, ctx, template=None):
            raise RuntimeError("boom")

    client = create_app(RenderConfig(data_dir=data_dir), evaluator=Broken()).test_client()
    answer = client.get("/render", query_string={"target": "a", "format": "json"})
    assert answer.status_code == 500
    assert "internal error" in answer.get_json()["error"]
    assert "boom" not in answer.get_data(as_text=True)
    assert "RuntimeError: boom" in caplog.text
