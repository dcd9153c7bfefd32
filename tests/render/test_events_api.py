"""The /events API against graphite-web 1.1.10, over real HTTP, with real deploy-tool requests.

graphite-web's own Django app and Carbyne's blueprint each run on a
127.0.0.1 port; every recipe from the "Deploy-event posters" table of
real-clients.md is sent by the same client code to both (the curl recipes by
the real ``curl``, the Node one by ``node``'s ``http.request``, the Python ones
by ``requests``), and the answers and what ``/events/get_data`` then returns
(including ``?tags=`` filtering on every comma part) must be identical.
"""

from __future__ import annotations

import base64
import http.client
import json
import multiprocessing
import os
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests
from flask import Flask
from werkzeug.serving import make_server

from render.events.api import events_blueprint
from render.events.store import DATABASE_NAME, EventStore

pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning", "ignore::DeprecationWarning")

NOW = int(time.time())


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: bytes

    def json(self):
        return json.loads(self.body)


# --- servers ----------------------------------------------------------------------------


class ServedApp:
    """A WSGI app served on a free 127.0.0.1 port from a thread."""

    def __init__(self, app) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.fixture(scope="module")
def graphite_server(graphite_web) -> Iterator[ServedApp]:
    from django.core.management import call_command
    from django.core.wsgi import get_wsgi_application

    call_command("migrate", run_syncdb=True, verbosity=0, interactive=False)
    served = ServedApp(get_wsgi_application())
    yield served
    served.stop()


def empty_graphite_events() -> None:
    """Empty graphite-web's event and tag tables; ids start at 1 again."""
    from django.db import connection

    with connection.cursor() as cursor:
        for table in ("tagging_taggeditem", "tagging_tag", "events_event"):
            cursor.execute(f"DELETE FROM {table}")
        cursor.execute("DELETE FROM sqlite_sequence")
    connection.close()


@pytest.fixture
def graphite(graphite_server) -> ServedApp:
    """graphite-web serving an empty event table."""
    empty_graphite_events()
    return graphite_server


def carbyne_app(store: EventStore, token: str | None = None) -> Flask:
    app = Flask("carbyne-events-test")
    app.register_blueprint(events_blueprint(store, token=token))
    return app


@pytest.fixture
def store(tmp_path) -> Iterator[EventStore]:
    s = EventStore.in_data_dir(tmp_path)
    yield s
    s.close()


@pytest.fixture
def carbyne(store) -> Iterator[ServedApp]:
    served = ServedApp(carbyne_app(store))
    yield served
    served.stop()


# --- clients ----------------------------------------------------------------------------


def raw_request(base: str, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> Answer:
    """One request with exactly ``headers`` (plus Host, Accept-Encoding and Content-Length)."""
    parsed = urllib.parse.urlsplit(base)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return Answer(response.status, response.getheader("Content-Type", ""), response.read())
    finally:
        connection.close()


def get(base: str, path: str, params: dict[str, str] | None = None, **headers: str) -> Answer:
    query = "?" + urllib.parse.urlencode(params) if params else ""
    return raw_request(base, "GET", path + query, None, headers)


def curl_post(base: str, path: str, body: str, *extra: str) -> Answer:
    """The docs' and graphite-notify's ``curl -X POST URL -d '<json>'`` (form-urlencoded)."""
    out = subprocess.run(
        ["curl", "-s", "-X", "POST", base + path, "-d", body, *extra,
         "-o", "-", "-w", "\n%{http_code} %{content_type}"],
        capture_output=True, check=True, timeout=30,
    ).stdout
    body_bytes, _, trailer = out.rpartition(b"\n")
    status, _, content_type = trailer.decode().partition(" ")
    return Answer(int(status), content_type, body_bytes)


def net_http_post(base: str, path: str, body: str, user: str | None = None, password: str | None = None,
                  content_type: str = "application/x-www-form-urlencoded") -> Answer:
    """Ruby Net::HTTP's POST: it labels a body form-urlencoded unless told otherwise."""
    headers = {"Accept-Encoding": "gzip;q=1.0,deflate;q=0.6,identity;q=0.3", "Accept": "*/*",
               "User-Agent": "Ruby", "Content-Type": content_type}
    if user is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    return raw_request(base, "POST", path, body.encode(), headers)


def requests_post(base: str, path: str, **kwargs) -> Answer:
    response = requests.post(base + path, timeout=30, **kwargs)
    return Answer(response.status_code, response.headers.get("Content-Type", ""), response.content)


NODE_POST = """
const http = require('http');
const [url, body] = process.argv.slice(1);
const u = new URL(url);
const req = http.request({hostname: u.hostname, port: u.port, path: u.pathname, method: 'POST',
                          headers: {'Content-Length': Buffer.byteLength(body)}}, (res) => {
  let data = '';
  res.on('data', (c) => { data += c; });
  res.on('end', () => { process.stdout.write(JSON.stringify([res.statusCode, res.headers['content-type'] || '', data])); });
});
req.write(body);
req.end();
"""


def node_post(base: str, path: str, body: str) -> Answer:
    """The common Node recipe: ``http.request`` with only a Content-Length header."""
    out = subprocess.run(["node", "-e", NODE_POST, base + path, body], capture_output=True,
                         check=True, timeout=30).stdout
    status, content_type, text = json.loads(out)
    return Answer(status, content_type, text.encode())


# --- the recipes -------------------------------------------------------------------------


def _j(event: dict) -> str:
    return json.dumps(event)


RECIPES = {
    "docs-curl": lambda b: curl_post(b, "/events/", _j(
        {"what": "Event - deploy", "tags": ["deploy"], "when": 1467844481,
         "data": "deploy of master branch happened at Wed Jul  6 22:34:41 UTC 2016"})),
    "docs-pre-0.10-string-tags": lambda b: curl_post(b, "/events/", _j(
        {"what": "Event - deploy", "tags": "production deploy", "when": 1467844482, "data": "old form"})),
    "graphite-notify": lambda b: curl_post(b, "/events/", _j(
        {"what": "deploy myapp in production", "tags": "myapp,production,4f2a9c1,deploy"})),
    "capistrano-graphite": lambda b: net_http_post(b, "/events/", _j(
        {"what": "deploy myapp in staging", "tags": "myapp,staging,20261123083807,deploy",
         "data": "deployer"}), user="ci", password="secret"),
    "capistrano-graphite-rollback": lambda b: net_http_post(b, "/events/", _j(
        {"what": "rollback myapp in staging", "tags": "myapp,staging,20261123083807,rollback",
         "data": "deployer"})),
    "sensu-handler": lambda b: net_http_post(b, "/events/", _j(
        {"what": "sensu_event", "tags": "sensu,event,critical,web01,check_http", "data": "critical",
         "when": NOW - 50}), content_type="application/json"),
    "sensu-handler-tags-as-array": lambda b: net_http_post(b, "/events/", _j(
        {"what": "sensu_event", "tags": ["sensu,event,critical,web01,check_http"], "data": "critical",
         "when": NOW - 40}), content_type="application/json"),
    "lighter": lambda b: requests_post(b, "/events/", json={
        "what": "Deployed /svc to the default environment", "data": "image myorg/svc:1.2",
        "tags": "environment:default service:/svc source:lighter type:change", "when": NOW - 30}),
    "mendel": lambda b: requests_post(b, "/events/", data=_j(
        {"what": "deployed myservice", "tags": ["myservice", "deploy"], "data": ""}).encode()),
    "python-requests-json": lambda b: requests_post(b, "/events/", json={
        "what": "test event", "tags": "test,epoch,events", "when": NOW - 20}),
    "node-http-request": lambda b: node_post(b, "/events/", _j(
        {"what": "myapp started", "tags": "myapp, start, host", "when": NOW - 10, "data": "pid 42"})),
    "blog-no-trailing-slash": lambda b: curl_post(b, "/events", _j(
        {"what": "no slash", "tags": ["deploy", "blog"], "when": NOW - 5})),
}

POSTED_WITHOUT_WHEN = {"graphite-notify", "capistrano-graphite", "capistrano-graphite-rollback", "mendel"}

TOOLS = {"curl": shutil.which("curl"), "node": shutil.which("node")}


def _needs(name: str) -> str | None:
    if name.startswith(("docs", "graphite-notify", "blog")):
        return "curl"
    if name.startswith("node"):
        return "node"
    return None


def same_events(ours: list[dict], theirs: list[dict]) -> None:
    """Equal get_data lists; a ``when`` defaulted to "now" may differ by a second."""
    assert len(ours) == len(theirs), (ours, theirs)
    for mine, graphites in zip(ours, theirs, strict=True):
        assert abs(mine["when"] - graphites["when"]) <= (1 if mine["when"] > NOW - 2 else 0)
        assert {**mine, "when": 0} == {**graphites, "when": 0}
        assert list(mine) == list(graphites)


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_real_tool_request_is_answered_stored_and_found_as_graphite_does(recipe, graphite, carbyne):
    tool = _needs(recipe)
    if tool and not TOOLS[tool]:
        pytest.skip(f"{tool} is not installed")
    theirs, ours = RECIPES[recipe](graphite.url), RECIPES[recipe](carbyne.url)
    assert (ours.status, ours.content_type, ours.body) == (theirs.status, theirs.content_type, theirs.body)
    assert ours.status == 200

    everything = {"from": "0", "until": str(NOW + 3600)}
    theirs_list = get(graphite.url, "/events/get_data", everything).json()
    ours_list = get(carbyne.url, "/events/get_data", everything).json()
    same_events(ours_list, theirs_list)
    assert len(ours_list) == 1
    if recipe in POSTED_WITHOUT_WHEN:
        assert abs(ours_list[0]["when"] - time.time()) < 120

    # every whitespace and comma part of the tags finds it (or not) as in graphite
    parts = {p.strip() for t in ours_list[0]["tags"] for p in t.split(",")} | set(ours_list[0]["tags"])
    for part in sorted(parts | {"bogus"}):
        for operation in (None, "union", "intersection"):
            params = {**everything, "tags": part, **({"set": operation} if operation else {})}
            same_events(get(carbyne.url, "/events/get_data", params).json(),
                        get(graphite.url, "/events/get_data", params).json())

    detail_theirs = get(graphite.url, "/events/1/", Accept="application/json")
    detail_ours = get(carbyne.url, "/events/1/")
    mine, graphites = detail_ours.json(), detail_theirs.json()
    if mine["when"] != graphites["when"]:  # "now" events: compare all but the timestamp
        mine["when"] = graphites["when"] = None
    assert (detail_ours.status, detail_ours.content_type, mine) == (
        detail_theirs.status, detail_theirs.content_type, graphites)


# --- queries, compared on a shared set of events --------------------------------------------


SHARED_EVENTS = [
    {"what": "a", "tags": ["deploy", "x"], "when": NOW - 7200, "data": "v1"},
    {"what": "b", "tags": "myapp,production,4f2a9c1,deploy", "when": NOW - 3600},
    {"what": "c", "tags": "myapp, start, h", "when": NOW - 1800},
    {"what": "d", "tags": ["a,b", "c d"], "when": NOW - 600},
    {"what": "e", "when": NOW - 300.7},
    {"what": "k", "tags": '"quoted tag" other', "when": NOW - 200},
    {"what": "n", "tags": "", "when": NOW - 100},
    {"what": "l", "tags": None, "when": NOW - 50},
    {"what": 5, "tags": "x", "when": NOW - 40},
    {"what": "u", "tags": ["caf\u00e9", "\u65e5\u672c"], "data": "\u2713", "when": NOW - 30},
    {"what": "same-second", "tags": "x", "when": NOW - 30},
    {"what": "future", "tags": "x", "when": NOW + 7200},
]


@pytest.fixture(scope="module")
def both(graphite_server, tmp_path_factory) -> Iterator[tuple[ServedApp, ServedApp]]:
    """Both servers holding SHARED_EVENTS (module scope: the query tests only read)."""
    empty_graphite_events()
    graphite = graphite_server
    carbyne = ServedApp(carbyne_app(EventStore.in_data_dir(tmp_path_factory.mktemp("shared"))))
    for event in SHARED_EVENTS:
        for server in (graphite, carbyne):
            answer = raw_request(server.url, "POST", "/events/", json.dumps(event).encode(),
                                 {"Content-Type": "application/json"})
            assert answer.status == 200
    yield graphite, carbyne
    carbyne.stop()


QUERIES = [
    {},
    {"from": "-1h"},
    {"from": "-1h", "until": "now"},
    {"from": "-6h", "until": "-30min"},
    {"from": str(NOW - 3600), "until": str(NOW - 600)},
    {"until": "now"},
    {"from": "0", "until": str(NOW + 86400)},
    {"from": "-1d", "tags": "deploy"},
    {"from": "-1d", "tags": "deploy", "set": "intersection"},
    {"from": "-1d", "tags": "x deploy", "set": "union"},
    {"from": "-1d", "tags": "x deploy", "set": "bogus"},
    {"from": "-1d", "tags": "x  deploy"},
    {"from": "-1d", "tags": "quoted tag"},
    {"from": "-1d", "tags": "caf\u00e9"},
    {"from": "-1d", "tags": ""},
    {"from": "-1d", "jsonp": "cb"},
    {"from": "-1d", "tags": "x", "jsonp": "jQuery123.handle_1"},
]


@pytest.mark.parametrize("params", QUERIES, ids=[urllib.parse.urlencode(q) or "none" for q in QUERIES])
@pytest.mark.parametrize("path", ["/events/get_data", "/events/get_dat"])
def test_get_data_matches_graphite(both, params, path):
    graphite, carbyne = both
    theirs, ours = get(graphite.url, path, params), get(carbyne.url, path, params)
    assert (ours.status, ours.content_type) == (theirs.status, theirs.content_type)
    if "jsonp" in params:
        assert ours.body == theirs.body
    else:
        same_events(ours.json(), theirs.json())


def test_event_detail_and_404_match_graphites_json(both):
    graphite, carbyne = both
    for event_id in (1, 5, 10, 999):
        theirs = get(graphite.url, f"/events/{event_id}/", Accept="application/json")
        for path in (f"/events/{event_id}/", f"/events/{event_id}"):
            ours = get(carbyne.url, path)
            assert (ours.status, ours.content_type, ours.json()) == (
                theirs.status, theirs.content_type, theirs.json())


def test_event_list_is_get_data_as_json(both):
    _, carbyne = both
    listed = get(carbyne.url, "/events/", {"from": "-1d", "tags": "x"})
    assert listed.content_type == "application/json"
    assert listed.json() == get(carbyne.url, "/events/get_data", {"from": "-1d", "tags": "x"}).json()
    assert [e["what"] for e in listed.json()] == ["a", "5", "same-second"]


def test_bad_tags_type_gets_graphites_400_body(graphite, carbyne):
    for tags in (5, {"a": 1}, True):
        body = json.dumps({"what": "w", "tags": tags}).encode()
        theirs = raw_request(graphite.url, "POST", "/events/", body, {})
        ours = raw_request(carbyne.url, "POST", "/events/", body, {})
        assert (ours.status, ours.body) == (theirs.status, theirs.body) == (
            400, b'{"error": "\\"tags\\" must be an array or space-separated string"}')
        assert ours.content_type == "application/json"


# --- where graphite crashes, Carbyne answers 400 naming the problem --------------------------


@pytest.mark.parametrize(
    ("body", "message", "graphite_status"),
    [
        (b"not json", "cannot parse event body=b'not json': not JSON", 500),
        (b"\xff\xfe{", "cannot parse event body=", 500),
        (b"[1, 2]", "cannot post event body=[1, 2]: must be a JSON object", 500),
        (b'{"tags": "x"}', 'cannot post event what=None: "what" is required', 500),
        (b'{"what": ["x"]}', 'cannot post event what=[\'x\']: "what" must be a string', 200),
        (b'{"what": "w", "tags": ["x", 5]}', "cannot post event tags=['x', 5]: every tag must be a string", 500),
        (b'{"what": "w", "when": "yesterday"}', "cannot post event when='yesterday': must be epoch seconds", 500),
        (b'{"what": "w", "when": null}', "cannot post event when=None: must be epoch seconds", 500),
        (b'{"what": "w", "when": true}', "cannot post event when=True: must be epoch seconds", 200),
        (b'{"what": "w", "when": NaN}', "cannot post event when=nan: must be epoch seconds", 500),
        (b'{"what": "w", "when": 1e300}', "cannot post event when=1e+300: outside years 1-9999", 500),
    ],
)
def test_bad_post_is_400_with_a_message_naming_the_problem(graphite, carbyne, store, body, message,
                                                          graphite_status):
    # graphite-web crashes on most of these; it stores str(['x']) for a list "what" and 1 for true
    theirs = raw_request(graphite.url, "POST", "/events/", body, {})
    assert theirs.status == graphite_status
    ours = raw_request(carbyne.url, "POST", "/events/", body, {})
    assert ours.status == 400
    assert ours.content_type == "application/json"
    assert ours.json()["error"].startswith(message)
    assert store.count() == 0


def test_lenient_where_graphite_crashes(carbyne, store):
    posts = [
        {"what": "string when", "when": " 1700000000.5 "},
        {"what": "null data", "data": None, "when": 1},
        {"what": "object data", "data": {"k": [1, True]}, "when": 2},
        {"what": 7.5, "data": 3, "when": 3},
    ]
    for event in posts:
        assert raw_request(carbyne.url, "POST", "/events", json.dumps(event).encode(), {}).status == 200
    stored = {e.what: e for e in store.find()}
    assert stored["string when"].when == 1700000000.5
    assert stored["null data"].data == ""
    assert stored["object data"].data == '{"k": [1, true]}'
    assert stored["7.5"].data == "3"


def test_bad_time_and_jsonp_are_400(carbyne):
    answer = get(carbyne.url, "/events/get_data", {"from": "garbage"})
    assert answer.status == 400
    assert answer.json()["error"].startswith("cannot parse from=garbage: ")
    answer = get(carbyne.url, "/events/get_data", {"until": "500.7"})
    assert answer.json()["error"].startswith("cannot parse until=500.7: ")
    answer = get(carbyne.url, "/events/get_data", {"jsonp": "alert(1);x"})
    assert (answer.status, answer.content_type) == (400, "application/json")


def test_post_answer_has_a_location_and_a_huge_body_is_refused(carbyne, store):
    answer = requests.post(carbyne.url + "/events/", data=b'{"what": "w"}', timeout=30)
    assert answer.headers["Location"] == "/events/1/"
    answer = requests.post(carbyne.url + "/events/", data=b" " * (2 << 20), timeout=30)
    assert answer.status_code == 413
    assert store.count() == 1


def test_other_methods_are_405(carbyne):
    assert raw_request(carbyne.url, "PUT", "/events/", b"{}", {}).status == 405
    assert raw_request(carbyne.url, "DELETE", "/events/", None, {}).status == 405


def test_delete(carbyne, store):
    store.add("gone", "deploy")
    store.add("stays", "deploy")
    assert raw_request(carbyne.url, "DELETE", "/events/1/", None, {}).status == 204
    answer = raw_request(carbyne.url, "DELETE", "/events/1", None, {})
    assert (answer.status, answer.json()) == (404, {"error": "Event matching query does not exist"})
    assert [e.what for e in store.find(tags=["deploy"])] == ["stays"]


# --- write protection ---------------------------------------------------------------------


@pytest.fixture
def protected(store) -> Iterator[ServedApp]:
    served = ServedApp(carbyne_app(store, token="s3cret"))
    yield served
    served.stop()


def test_token_protects_writes_and_leaves_reads_open(protected, store):
    body = json.dumps({"what": "w", "tags": "t", "when": 5}).encode()
    refused = raw_request(protected.url, "POST", "/events/", body, {})
    assert (refused.status, refused.content_type) == (401, "application/json")
    assert "token" in refused.json()["error"]
    for wrong in ("Bearer nope", "Basic " + base64.b64encode(b"ci:nope").decode(), "Basic %%%", "s3cret"):
        assert raw_request(protected.url, "POST", "/events/", body, {"Authorization": wrong}).status == 401
    assert store.count() == 0

    ok = raw_request(protected.url, "POST", "/events/", body, {"Authorization": "Bearer s3cret"})
    assert ok.status == 200
    assert net_http_post(protected.url, "/events/", body.decode(), user="ci", password="s3cret").status == 200
    if TOOLS["curl"]:
        assert curl_post(protected.url, "/events/", body.decode(), "-u", "deploy:s3cret").status == 200
    assert store.count() == 3

    assert get(protected.url, "/events/get_data", {"from": "0"}).status == 200
    assert get(protected.url, "/events/1/").status == 200
    assert raw_request(protected.url, "DELETE", "/events/1/", None, {}).status == 401
    assert raw_request(protected.url, "DELETE", "/events/1/", None, {"Authorization": "Bearer s3cret"}).status == 204


def test_refused_post_has_www_authenticate(protected):
    answer = requests.post(protected.url + "/events/", data=b'{"what": "w"}', timeout=30)
    assert answer.status_code == 401
    assert "Bearer" in answer.headers["WWW-Authenticate"]
    assert "Basic" in answer.headers["WWW-Authenticate"]


# --- durability over HTTP -------------------------------------------------------------------


def _serve_forever(path: str, port_pipe) -> None:
    server = make_server("127.0.0.1", 0, carbyne_app(EventStore(path)), threaded=True)
    port_pipe.send(server.server_port)
    server.serve_forever()


def test_acknowledged_post_survives_sigkill_of_the_server(tmp_path):
    context = multiprocessing.get_context("fork")
    path = tmp_path / DATABASE_NAME
    parent_end, child_end = context.Pipe()
    child = context.Process(target=_serve_forever, args=(str(path), child_end))
    child.start()
    try:
        assert parent_end.poll(30)
        base = f"http://127.0.0.1:{parent_end.recv()}"
        answers = [
            raw_request(base, "POST", "/events/", json.dumps({"what": f"e{i}", "tags": "kill9"}).encode(), {})
            for i in range(5)
        ]
        assert [a.status for a in answers] == [200] * 5
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.join(10)
    assert child.exitcode == -signal.SIGKILL
    reopened = sqlite3.connect(path).execute("SELECT what FROM events ORDER BY id").fetchall()
    assert reopened == [(f"e{i}",) for i in range(5)]
