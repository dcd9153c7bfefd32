"""Grafana's Graphite data source, request by request, against Carbyne and graphite-web 1.1.10.

The requests are the ones Grafana's frontend (datasource.ts) and Go backend
(pkg/tsdb/graphite) send (reference §5 and real-clients.md): version
detection, the function index, "Save & test", panel queries with every
target wrapped in ``aliasSub(..., "(^.*$)", "\\1 <refId>")``, the metric
tree with a bare ``query=`` POST body, ``expand()`` variables and metric
annotations. Each answer is checked the way Grafana parses it and compared
with graphite-web's answer over the same whisper files.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
from app_support import graphite_http, make_app, write_metric

pytestmark = pytest.mark.usefixtures("graphite_web")

STEP = 10
# Grafana sends no `now`: both engines read whisper relative to the wall clock.
NOW = int(time.time()) // STEP * STEP
FROM = NOW - 6 * 3600 - 1  # Grafana moves a range with non-zero seconds out by a second
UNTIL = NOW + 1
FORM = "application/x-www-form-urlencoded"
HOSTS = ("web01", "web02", "db01")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("grafana-data")
    start = NOW - 6 * 3600
    for h, host in enumerate(HOSTS):
        for m, metric in enumerate(("user", "system")):
            values = [None if (i + h) % 97 == 0 else 0.25 * ((i * (h + 1) + m * 7) % 400) for i in range(6 * 360)]
            write_metric(root, f"servers.{host}.cpu.{metric}", start, STEP, values, points=8640, now=NOW)
    return root


@pytest.fixture(scope="module")
def carbyne(data_dir: Path):
    return make_app(data_dir)


@pytest.fixture()
def graphite(data_dir: Path):
    with graphite_http(data_dir) as client:
        yield client


def wrap(target: str, ref_id: str) -> str:
    """What Grafana's frontend sends for each query row."""
    return f'aliasSub({target}, "(^.*$)", "\\1 {ref_id}")'


def frontend_render_body(targets: list[str], max_data_points: int, cache_timeout: str | None = None) -> str:
    pairs = [("target", t) for t in targets]
    pairs += [("from", str(FROM)), ("until", str(UNTIL)), ("format", "json"), ("maxDataPoints", str(max_data_points))]
    if cache_timeout:
        pairs.append(("cacheTimeout", cache_timeout))
    return urlencode(pairs, quote_via=quote)


def both_post(carbyne, graphite, url: str, body: str, **headers: str) -> tuple:
    ours = carbyne.post(url, data=body, content_type=FORM, headers=headers)
    django_headers = {"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()}
    theirs = graphite.post(url, body, content_type=FORM, **django_headers)
    return (ours.status_code, ours.content_type, ours.data), (theirs.status_code, theirs["Content-Type"], theirs.content)


def grafana_frontend_series(body: bytes) -> dict[str, list]:
    """datasource.ts convertResponseToDataFrames: refId = last word of target, points [v, ts]."""
    series = json.loads(body)
    assert isinstance(series, list)
    by_ref: dict[str, list] = {}
    for item in series:
        name, _, ref_id = item["target"].rpartition(" ")
        assert item["tags"]["name"]
        for value, timestamp in item["datapoints"]:
            assert timestamp is not None and isinstance(timestamp, int)
            assert value is None or isinstance(value, (int, float))
        by_ref.setdefault(ref_id, []).append((name, item["datapoints"]))
    return by_ref


def test_version_is_a_semver(carbyne, graphite) -> None:
    ours = carbyne.get("/version")
    assert re.fullmatch(r"\d+\.\d+\.\d+", ours.get_data(as_text=True).strip())
    assert ours.data == graphite.get("/version").content


def test_function_index_parses_like_grafana_reads_it(carbyne) -> None:
    text = carbyne.get("/functions").get_data(as_text=True)
    index = json.loads(text.replace('"default": Infinity', '"default": 1e9999'))
    for name in ("aliasSub", "constantLine", "sumSeries"):
        info = index[name]
        assert info["name"] == name and info["group"] and "description" in info
        for param in info["params"]:
            assert {"name", "type"} <= set(param)
    series_functions = [i for i in index.values() if i["params"] and i["params"][0]["type"] in ("seriesList", "seriesLists")]
    assert len(series_functions) > 20


def test_save_and_test_frontend(carbyne, graphite) -> None:
    body = frontend_render_body([wrap("constantLine(100)", "A")], 300)
    ours, theirs = both_post(carbyne, graphite, "/render", body)
    assert ours[:2] == theirs[:2] == (200, "application/json")
    ours_series, their_series = grafana_frontend_series(ours[2]), grafana_frontend_series(theirs[2])
    assert ours_series == their_series  # graphite keeps constantLine's int 100; equal as numbers
    assert list(ours_series) == ["A"]


def test_save_and_test_go_backend(carbyne, graphite) -> None:
    body = urlencode(
        sorted({"format": "json", "from": str(NOW - 3600), "maxDataPoints": "100",
                "target": "constantLine(100)", "until": str(NOW)}.items())
    )
    ours, theirs = both_post(carbyne, graphite, "/render", body)
    assert ours[0] == theirs[0] == 200
    assert json.loads(ours[2]) == json.loads(theirs[2])


PANELS = [
    ([wrap("servers.*.cpu.user", "A")], 1000),
    ([wrap("servers.web01.cpu.user", "A"), wrap("servers.{web01,db01}.cpu.system", "B")], 300),
    ([wrap("sumSeries(servers.*.cpu.user)", "A"), wrap("averageSeries(servers.web0?.cpu.*)", "B")], 727),
    ([wrap("asPercent(servers.web01.cpu.user, sumSeries(servers.*.cpu.user))", "C")], 250),
    ([wrap("summarize(servers.web01.cpu.user, '5min', 'sum')", "A")], 1000),
    ([wrap("consolidateBy(servers.db01.cpu.user, 'max')", "A")], 100),
]


@pytest.mark.parametrize("targets,max_data_points", PANELS, ids=lambda p: str(p)[:60])
def test_panel_queries(targets, max_data_points, carbyne, graphite) -> None:
    body = frontend_render_body(targets, max_data_points, cache_timeout="60")
    ours, theirs = both_post(carbyne, graphite, "/render", body, **{"X-Dashboard-Id": "3", "X-Panel-Id": "2"})
    assert ours == theirs
    series = grafana_frontend_series(ours[2])
    assert set(series) == {t.rsplit(" ", 1)[1].rstrip('")') for t in targets}
    for entries in series.values():
        for _, points in entries:
            assert len(points) <= max_data_points


def test_metric_tree_walk(carbyne, graphite) -> None:
    url = f"/metrics/find?from={FROM}&until={UNTIL}"
    path = ""
    for query in ("*", "servers.*", "servers.web01.*", "servers.web01.cpu.*"):
        ours, theirs = both_post(carbyne, graphite, url, f"query={query}")
        assert ours == theirs
        nodes = json.loads(ours[2])
        assert nodes and all({"text", "expandable"} <= set(n) for n in nodes)
        path = nodes[0]["id"]
    assert path == "servers.web01.cpu.system"
    ours, theirs = both_post(carbyne, graphite, url, "query=*web*")
    assert ours == theirs and json.loads(ours[2]) == []


def test_expand_variable(carbyne, graphite) -> None:
    params = {"query": "servers.*.cpu.user", "from": str(FROM), "until": str(UNTIL)}
    ours = carbyne.get("/metrics/expand", query_string=params)
    theirs = graphite.get("/metrics/expand", params)
    assert ours.data == theirs.content
    assert json.loads(ours.data)["results"] == [f"servers.{h}.cpu.user" for h in sorted(HOSTS)]


def test_metric_annotations(carbyne, graphite) -> None:
    body = frontend_render_body([wrap("servers.db01.cpu.system", "Anno")], 100)
    ours, theirs = both_post(carbyne, graphite, "/render", body)
    assert ours == theirs
    (entry,) = grafana_frontend_series(ours[2])["Anno"]
    annotations = [ts * 1000 for value, ts in entry[1] if value]
    assert annotations


# --- tags and events, served when the configuration names their databases -----------------


@pytest.fixture()
def full_app(tmp_path: Path):
    """The app as carbyne serve configures it: events and tags beside the whisper folder."""
    from render.app import create_app
    from render.config import RenderConfig

    whisper_dir = tmp_path / "whisper"
    start = NOW - 3600
    for host, dc in (("web01", "east"), ("web02", "west")):
        write_metric(whisper_dir, f"disk.used;dc={dc};host={host}", start, STEP, [float(len(host))] * 360,
                     points=8640, now=NOW)
    config = RenderConfig(data_dir=whisper_dir, events_db=tmp_path / "events.db", tags_db=tmp_path / "tags.db")
    return create_app(config).test_client()


def test_tag_editor_variables_and_seriesbytag_panel(full_app) -> None:
    tagged = full_app.post("/tags/tagMultiSeries", data={"path": ["disk.used;host=web01;dc=east",
                                                                   "disk.used;host=web02;dc=west"]})
    assert tagged.status_code == 200
    assert full_app.get("/tags/autoComplete/tags").get_json() == ["dc", "host", "name"]
    values = full_app.get("/tags/autoComplete/values", query_string={"tag": "host", "expr": "dc=east", "limit": "10000"})
    assert values.get_json() == ["web01"]
    body = frontend_render_body([wrap("seriesByTag('name=disk.used')", "A")], 300)
    answer = full_app.post("/render", data=body, content_type=FORM)
    assert answer.status_code == 200
    series = json.loads(answer.data)
    assert [s["target"] for s in series] == ["disk.used;dc=east;host=web01 A", "disk.used;dc=west;host=web02 A"]
    assert series[0]["tags"] == {"dc": "east", "host": "web01", "name": "disk.used"}


def test_event_annotations(full_app) -> None:
    posted = full_app.post("/events/", data=json.dumps({"what": "deploy web", "tags": ["deploy", "web"], "when": NOW - 600}),
                           content_type=FORM)
    assert posted.status_code == 200
    got = full_app.get("/events/get_data", query_string={"from": "-6h", "until": "now", "tags": "deploy web"})
    (event,) = got.get_json()
    assert (event["what"], event["when"], event["tags"]) == ("deploy web", NOW - 600, ["deploy", "web"])
    marks = full_app.get("/render", query_string={"target": "drawAsInfinite(events('deploy'))", "from": "-1h",
                                                  "format": "json"})
    assert marks.status_code == 200
    (series,) = marks.get_json()
    assert [ts for value, ts in series["datapoints"] if value is not None] == [NOW - 600]
