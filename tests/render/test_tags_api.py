"""render.tags_api: the /tags endpoints, answer for answer against graphite-web 1.1.10's views."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from flask import Flask

from render.tags_api import tags_blueprint
from storage.tagindex import TagIndex

FORM = "application/x-www-form-urlencoded"

SERIES = [
    "disk.used;server=web01;rack=a1;datacenter=dc1",
    "disk.used;datacenter=dc1;rack=a2;server=web02",
    "disk.used;datacenter=dc2;server=web03",
    "cpu.load;datacenter=dc1;server=web01",
    "cpu;a.b=1;a=2",
    "~x.y;name=ignored;env=prod",
]


class Pair:
    """The same request to graphite-web (Django test client) and to Carbyne (Flask test client)."""

    def __init__(self, graphite, ours):
        self.graphite = graphite
        self.ours = ours

    def send(self, method, path, query=None, form=None):
        url = path + ("?" + urlencode(query, doseq=True) if query else "")
        body = urlencode(form, doseq=True) if form is not None else None
        g = getattr(self.graphite, method.lower())
        if body is None:
            theirs = g(url)
        else:
            theirs = g(url, body, content_type=FORM)
        mine = self.ours.open(url, method=method, data=body, content_type=FORM if body is not None else None)
        return (
            (theirs.status_code, theirs["Content-Type"], theirs.content.decode()),
            (mine.status_code, mine.headers["Content-Type"], mine.get_data(as_text=True)),
        )

    def same(self, method, path, query=None, form=None):
        """Both answer the same status, type and body; returns the body."""
        theirs, mine = self.send(method, path, query, form)
        assert mine == theirs, (method, path, query, form)
        return json.loads(mine[2])

    def refused(self, method, path, query=None, form=None, graphite_status=400):
        """graphite refuses with ``graphite_status``; Carbyne with a 400 JSON error naming the problem."""
        theirs, mine = self.send(method, path, query, form)
        assert theirs[0] == graphite_status, theirs
        assert mine[0] == 400 and mine[1] == "application/json", mine
        assert json.loads(mine[2])["error"].startswith("cannot ")
        return json.loads(mine[2])["error"]


def make_pair(folder):
    """Both engines holding SERIES; graphite's tag tables emptied first."""
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    call_command("migrate", run_syncdb=True, verbosity=0, interactive=False)
    with connection.cursor() as cursor:
        for table in ("tags_seriestag", "tags_series", "tags_tag", "tags_tagvalue"):
            cursor.execute(f"DELETE FROM {table}")
        cursor.execute("DELETE FROM sqlite_sequence WHERE name LIKE 'tags_%'")
    index = TagIndex.in_data_dir(folder)
    app = Flask("tags-test")
    app.register_blueprint(tags_blueprint(index))
    both = Pair(Client(raise_request_exception=False), app.test_client())
    assert both.same("POST", "/tags/tagSeries", form={"path": SERIES[0]}) == (
        "disk.used;datacenter=dc1;rack=a1;server=web01"
    )
    assert both.same("POST", "/tags/tagMultiSeries", form={"path": SERIES[1:]})[-1] == "x.y;env=prod"
    return both, index


@pytest.fixture(scope="module")
def pair(graphite_web, tmp_path_factory):
    """Shared by the tests that change nothing in either engine."""
    both, index = make_pair(tmp_path_factory.mktemp("tags"))
    yield both
    index.close()


@pytest.fixture
def fresh_pair(graphite_web, tmp_path):
    """For tests that write."""
    both, index = make_pair(tmp_path)
    yield both
    index.close()


READS = [
    ("GET", "/tags", None, None),
    ("GET", "/tags/", None, None),
    ("GET", "/tags", {"filter": "d|s"}, None),
    ("GET", "/tags", {"filter": "^a"}, None),
    ("GET", "/tags", {"limit": "2"}, None),
    ("GET", "/tags", {"limit": "0"}, None),
    ("GET", "/tags", {"pretty": "1"}, None),
    ("GET", "/tags/datacenter", None, None),
    ("GET", "/tags/server", {"filter": "web0[12]", "limit": "1"}, None),
    ("GET", "/tags/name", {"pretty": "1"}, None),
    ("GET", "/tags/nosuchtag", None, None),
    ("GET", "/tags/a.b", None, None),
    ("GET", "/tags/findSeries", {"expr": ["name=disk.used", "rack!="]}, None),
    ("GET", "/tags/findSeries", {"expr[]": ["datacenter=dc1", "rack="]}, None),
    ("GET", "/tags/findSeries", {"expr": "server=~web0[13]", "local": "1"}, None),
    ("POST", "/tags/findSeries", {"expr": "datacenter=dc1"}, {"expr": "server!=web01"}),
    ("POST", "/tags/findSeries", None, {"expr": "name=~c", "pretty": "1"}),
    ("GET", "/tags/autoComplete/tags", None, None),
    ("GET", "/tags/autoComplete/tags", {"tagPrefix": "d"}, None),
    ("GET", "/tags/autoComplete/tags", {"expr": "name=disk.used"}, None),
    ("GET", "/tags/autoComplete/tags", {"expr": ["name=disk.used", "rack=a1"], "tagPrefix": ""}, None),
    ("GET", "/tags/autoComplete/tags", {"expr[]": "datacenter=dc1", "limit": "2"}, None),
    ("GET", "/tags/autoComplete/tags", {"limit": "0"}, None),
    ("GET", "/tags/autoComplete/tags", {"limit": "10000", "from": "1700000000", "until": "1700003600"}, None),
    ("POST", "/tags/autoComplete/tags", None, {"expr": "datacenter=dc1", "tagPrefix": "r"}),
    ("GET", "/tags/autoComplete/values", {"tag": "server"}, None),
    ("GET", "/tags/autoComplete/values", {"tag": "server", "valuePrefix": "web0", "limit": "2"}, None),
    ("GET", "/tags/autoComplete/values", {"tag": "server", "expr": "datacenter=dc1"}, None),
    ("GET", "/tags/autoComplete/values", {"tag": "rack", "expr": ["name=disk.used"], "limit": "0"}, None),
    ("GET", "/tags/autoComplete/values", {"tag": "name", "valuePrefix": "x", "pretty": "1"}, None),
    ("GET", "/tags/autoComplete/values", {"tag": "nosuchtag"}, None),
    ("POST", "/tags/autoComplete/values", {"tag": "ignored"}, {"tag": "datacenter", "expr": "server=web01"}),
]


@pytest.mark.parametrize(("method", "path", "query", "form"), READS)
def test_reads_answer_like_graphite(pair, method, path, query, form):
    pair.same(method, path, query, form)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/tags/tagSeries"),
        ("GET", "/tags/tagMultiSeries"),
        ("GET", "/tags/delSeries"),
        ("POST", "/tags"),
        ("POST", "/tags/datacenter"),
        ("PUT", "/tags/findSeries"),
        ("DELETE", "/tags/autoComplete/tags"),
    ],
)
def test_wrong_methods_are_405(pair, method, path):
    theirs, mine = pair.send(method, path)
    assert theirs[0] == mine[0] == 405
    assert "Allow" in pair.ours.open(path, method=method).headers


@pytest.mark.parametrize(
    ("method", "path", "query", "form", "graphite_status", "reason"),
    [
        ("GET", "/tags/findSeries", None, None, 400, "no tag expressions"),
        ("GET", "/tags/findSeries", {"expr": "rack="}, None, 400, "must not match the empty value"),
        ("GET", "/tags/findSeries", {"expr": "nonsense"}, None, 400, "not tag=value"),
        ("GET", "/tags/findSeries", {"expr": "name=~["}, None, 500, "bad regular expression"),
        ("GET", "/tags/autoComplete/values", None, None, 400, "no tag given"),
        ("GET", "/tags/autoComplete/values", {"tag": "server", "limit": "x"}, None, 400, "not an integer"),
        ("GET", "/tags/autoComplete/tags", {"expr": "a!=b"}, None, 400, "must not match the empty value"),
        ("GET", "/tags", {"limit": "many"}, None, 400, "not an integer"),
        ("GET", "/tags", {"filter": "("}, None, 500, "bad regular expression"),
        ("GET", "/tags/server", {"filter": "[", "limit": "1"}, None, 500, "bad regular expression"),
        ("POST", "/tags/tagSeries", None, {}, 400, "no path"),
        ("POST", "/tags/tagSeries", None, {"path": "a;b"}, 500, "invalid segment"),
        ("POST", "/tags/tagMultiSeries", None, {}, 400, "no path"),
        ("POST", "/tags/delSeries", None, {}, 400, "no path"),
    ],
)
def test_refused_requests_are_400_with_a_reason(pair, method, path, query, form, graphite_status, reason):
    assert reason in pair.refused(method, path, query, form, graphite_status)


def test_negative_limit_is_refused(pair):
    response = pair.ours.get("/tags/autoComplete/tags?limit=-1")
    assert response.status_code == 400
    assert "must not be negative" in response.get_json()["error"]


def test_jsonp_wraps_answers_and_refuses_bad_callbacks(pair):
    response = pair.ours.get("/tags/autoComplete/values?tag=datacenter&jsonp=cb.done")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/javascript"
    assert response.get_data(as_text=True) == 'cb.done(["dc1", "dc2"])'
    bad = pair.ours.get("/tags?jsonp=alert(1)")
    assert bad.status_code == 400
    assert bad.headers["Content-Type"] == "application/json"
    assert "jsonp" in bad.get_json()["error"]


# --- tests that write (each on fresh engines, after the shared ones) ---------------------


def test_writes_then_reads_answer_like_graphite(fresh_pair):
    pair = fresh_pair
    assert pair.same("POST", "/tags/tagMultiSeries", form={"path[]": ["new;k=v", SERIES[0]]}) == [
        "new;k=v",
        "disk.used;datacenter=dc1;rack=a1;server=web01",
    ]
    assert pair.same("POST", "/tags/delSeries", form={"path": ["cpu;a=2;a.b=1", "disk.used;server=web03;datacenter=dc2"]}) is True
    assert pair.same("POST", "/tags/delSeries", query={"path[]": "never;x=1"}) is True
    for read in ("/tags", "/tags/a", "/tags/datacenter", "/tags/k"):
        pair.same("GET", read)
    pair.same("GET", "/tags/findSeries", {"expr": "name!="})
    pair.same("GET", "/tags/autoComplete/tags")
    pair.same("GET", "/tags/autoComplete/values", {"tag": "a"})


def test_a_refused_batch_tags_nothing(fresh_pair):
    # graphite tags the paths before the bad one; Carbyne checks them all first
    reason = fresh_pair.refused("POST", "/tags/tagMultiSeries", form={"path": ["fresh;a=1", ";x=1"]},
                                graphite_status=500)
    assert "no metric name" in reason
    assert fresh_pair.ours.get("/tags/findSeries?expr=name%3Dfresh").get_json() == []


def test_a_form_body_without_content_type_is_read(fresh_pair):
    response = fresh_pair.ours.post("/tags/tagSeries", data=b"path=raw;k=v", content_type="text/plain")
    assert response.get_json() == "raw;k=v"
