"""The ``/tags`` API against graphite-web 1.1.10's LocalDatabaseTagDB, on generated series and queries.

Both engines start empty and receive the same writes (``tagSeries``,
``tagMultiSeries`` with ``path`` and ``path[]``, ``delSeries``) of a few
hundred seeded series whose names, tags and values use what graphite
accepts (dots, ``-``, ``_``, ``:``, ``@``, ``=`` and ``!`` in values, spaces,
unicode, ``~`` names, OpenMetrics spellings with escapes). Then both answer
the same generated reads: ``findSeries`` with one to three expressions of
every operator (``=``, ``!=``, ``=~``, ``!=~``, empty and regex specs),
``autoComplete/tags`` and ``autoComplete/values`` with ``expr``, prefixes and
``limit``, ``/tags`` and ``/tags/<tag>`` with ``filter`` and ``limit``.

Each answer is compared as status, content type and body. Where graphite
fails with a 500 (a regular expression Python cannot compile, a name it
cannot parse), Carbyne's answer must be a 400 whose error starts with
``cannot``.
"""

from __future__ import annotations

import json
import random
from urllib.parse import quote, urlencode

import pytest
from flask import Flask

from render.tags_api import tags_blueprint
from storage.tagindex import TagIndex

FORM = "application/x-www-form-urlencoded"

NAMES = ["cpu.load", "disk.used", "net.rx", "x", "caf\u00e9.au", "Web", "a-b_c:d@e", "~tilde.name", "n.1"]
TAGS = ["dc", "server", "rack", "env", "role", "a.b", "x-y", "t_z", "\u00fcn\u00ef", "Ver", "t~", "sp ace", "n"]
VALUES = [
    "dc1", "dc2", "web01", "web02", "web10", "prod", "dev", "1", "10", "2", "a=b", "x^y", "!bang",
    "\u00f1", "\u65e5\u672c", "a.b", "A", "with space", "(paren", "[br", "a~", "Web01",
]
REGEXES = [
    "web0.", "dc[12]", ".*", "w", "^w", "web0[12]|dev", "^a|b", "x?", "(pro|de)", "1$", "\\d+",
    "[^d].*", "W", "(?i)web", "\u00f1|\u65e5", "a\\.b", "[", "web(", "a=b", "^$", "$",
]


class Engines:
    """graphite-web (Django test client) and Carbyne (Flask test client), same requests."""

    def __init__(self, graphite, ours) -> None:
        self.graphite = graphite
        self.ours = ours

    def send(self, method: str, path: str, query=None, form=None):
        url = quote(path) + ("?" + urlencode(query, doseq=True) if query else "")
        body = urlencode(form, doseq=True) if form is not None else None
        call = getattr(self.graphite, method.lower())
        theirs = call(url) if body is None else call(url, body, content_type=FORM)
        mine = self.ours.open(url, method=method, data=body, content_type=FORM if body is not None else None)
        return (
            (theirs.status_code, theirs["Content-Type"], theirs.content.decode()),
            (mine.status_code, mine.headers["Content-Type"], mine.get_data(as_text=True)),
        )

    def compare(self, method: str, path: str, query=None, form=None):
        """None when both agree, else both answers.

        Refusals agree when graphite answers a 400 (its own message) or a 500
        (it crashed) and Carbyne a 400 whose error starts with ``cannot``.
        """
        theirs, mine = self.send(method, path, query, form)
        if mine == theirs:
            return None
        if theirs[0] in (400, 500) and mine[0] == 400 and json.loads(mine[2])["error"].startswith("cannot "):
            return None
        return (method, path, query, form, theirs, mine)


def random_series(rng: random.Random) -> str:
    name = rng.choice(NAMES)
    tags = [(rng.choice(TAGS), rng.choice(VALUES)) for _ in range(rng.randint(1, 4))]
    if rng.random() < 0.15:
        labels = ",".join(f'{t}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
                          for t, v in tags if " " not in t)
        if labels:
            return name.lstrip("~") + "{" + labels + "}"
    return name + "".join(f";{t}={v}" for t, v in tags)


def random_expression(rng: random.Random, tags: list[str]) -> str:
    tag = rng.choice([*tags, "name", "name", "missing"])
    operator = rng.choice(["=", "=", "!=", "=~", "=~", "!=~"])
    if operator.endswith("~"):
        spec = rng.choice([*REGEXES, rng.choice(VALUES)])
    else:
        spec = rng.choice(["", rng.choice(VALUES), rng.choice(NAMES).lstrip("~")])
    return f"{tag}{operator}{spec}"


@pytest.fixture(scope="module")
def engines(graphite_web, tmp_path_factory):
    """Both engines after the same seeded writes (each write's answers compared as it goes)."""
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    call_command("migrate", run_syncdb=True, verbosity=0, interactive=False)
    with connection.cursor() as cursor:
        for table in ("tags_seriestag", "tags_series", "tags_tag", "tags_tagvalue"):
            cursor.execute(f"DELETE FROM {table}")
        cursor.execute("DELETE FROM sqlite_sequence WHERE name LIKE 'tags_%'")
    index = TagIndex.in_data_dir(tmp_path_factory.mktemp("tags-differential"))
    app = Flask("tags-differential")
    app.register_blueprint(tags_blueprint(index))
    both = Engines(Client(raise_request_exception=False), app.test_client())

    rng = random.Random(1101)
    series = [random_series(rng) for _ in range(260)]
    mismatches = []
    for start in range(0, 160, 20):
        key = "path" if start % 40 else "path[]"
        mismatches.append(both.compare("POST", "/tags/tagMultiSeries", form={key: series[start:start + 20]}))
    for path in series[160:]:
        mismatches.append(both.compare("POST", "/tags/tagSeries", form={"path": path}))
    for path in rng.sample(series, 30):  # the same series again, in another spelling or not
        mismatches.append(both.compare("POST", "/tags/tagSeries", form={"path": path}))
    refused = [";a=b", "x;=v", "x;t=~v", "x;t=", "x;a!b=c", "x;a^b=c", "x;seg", "~;a=b",
               'x{a="b"}{c="d"}', '{a="b"}', 'x{a=b}', "x;t=a;b"]
    for path in refused:  # graphite: 500 for each; Carbyne: a 400 naming the problem
        mismatches.append(both.compare("POST", "/tags/tagSeries", form={"path": path}))
    mismatches.append(both.compare("POST", "/tags/delSeries", form={"path": rng.sample(series, 25)}))
    mismatches.append(both.compare("POST", "/tags/delSeries", form={"path[]": ["never;dc=dc9", series[0]]}))
    both.write_mismatches = [m for m in mismatches if m]
    yield both
    index.close()


def test_writes_answer_like_graphite(engines) -> None:
    assert not engines.write_mismatches


def test_tag_lists_like_graphite(engines) -> None:
    rng = random.Random(5)
    requests = [("/tags", None), ("/tags", {"pretty": "1"}), ("/tags", {"limit": "3"})]
    for tag in [*TAGS, "name", "missing"]:
        requests.append((f"/tags/{tag}", None))
        requests.append((f"/tags/{tag}", {"filter": rng.choice(REGEXES), "limit": rng.choice(["", "1", "2", "50"])}))
    for _ in range(30):
        requests.append(("/tags", {"filter": rng.choice(REGEXES + TAGS), "limit": rng.choice(["", "0", "2"])}))
    mismatches = [engines.compare("GET", path, query) for path, query in requests]
    assert not [m for m in mismatches if m]


def test_find_series_like_graphite(engines) -> None:
    rng = random.Random(17)
    mismatches = []
    found_any = 0
    for number in range(400):
        expressions = [random_expression(rng, TAGS) for _ in range(rng.randint(1, 3))]
        key = "expr[]" if number % 7 == 0 else "expr"
        method = "POST" if number % 5 == 0 else "GET"
        query, form = ({key: expressions}, None) if method == "GET" else (None, {key: expressions})
        mismatch = engines.compare(method, "/tags/findSeries", query, form)
        if mismatch:
            mismatches.append(mismatch)
        else:
            found_any += engines.ours.get("/tags/findSeries?" + urlencode({"expr": expressions}, doseq=True)).status_code == 200
    assert not mismatches
    assert found_any > 100  # the generator mostly makes valid queries


def test_auto_complete_like_graphite(engines) -> None:
    rng = random.Random(23)
    mismatches = []
    for number in range(300):
        query: dict[str, object] = {}
        expressions = [random_expression(rng, TAGS) for _ in range(rng.randint(0, 2))]
        if expressions:
            query["expr"] = expressions
        limit = rng.choice([None, None, "0", "1", "3", "100"])
        if limit is not None:
            query["limit"] = limit
        if number % 2:
            tag = rng.choice([*TAGS, "name"])
            query["tag"] = tag
            prefix = rng.choice(["", rng.choice(VALUES)[: rng.randint(0, 3)], "w", "\u65e5", "("])
            if prefix or rng.random() < 0.3:
                query["valuePrefix"] = prefix
            path = "/tags/autoComplete/values"
        else:
            prefix = rng.choice(["", rng.choice(TAGS)[: rng.randint(0, 2)], "n", "a.", "\u00fc"])
            if prefix or rng.random() < 0.3:
                query["tagPrefix"] = prefix
            path = "/tags/autoComplete/tags"
        method = "POST" if number % 4 == 0 else "GET"
        mismatch = engines.compare(method, path, *((query, None) if method == "GET" else (None, query)))
        if mismatch:
            mismatches.append(mismatch)
    assert not mismatches


def test_tag_names_with_slashes_and_odd_urls_like_graphite(engines) -> None:
    """graphite routes ``/tags/(.+)`` to the tag details: ``/tags//x`` is tag ``/x``,
    ``/tags/findSeries/`` is a tag named ``findSeries/`` (no such tag: ``null``)."""
    assert engines.compare("POST", "/tags/tagSeries", form={"path": "slashy;/x=1;a//b=2;a/b=3;q?=4"}) is None
    paths = ["/tags//x", "/tags/a//b", "/tags/a/b", "/tags//", "/tags///x", "/tags/q?", "/tags/findSeries/",
             "/tags/autoComplete/tags/", "/tags/tagSeries/", "/tags/autoComplete", "/tags/dc/"]
    mismatches = [engines.compare("GET", path) for path in paths]
    assert not [m for m in mismatches if m]
    assert engines.ours.get("/tags//x").get_json()["values"][0]["value"] == "1"
