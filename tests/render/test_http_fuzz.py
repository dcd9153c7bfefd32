"""Random requests to ``/render`` and ``/metrics/find``, answered by Carbyne and graphite-web alike.

A seeded generator mixes targets (globs, braces, common functions), every
output format, absolute and relative times (``-2days``, ``noon yesterday``,
``midnight+1h``, epochs), time zones, ``maxDataPoints``, ``noNullPoints``,
``pretty`` and ``jsonp``, over three days of minutely data with gaps. Both
apps read the same whisper files; answers must match byte for byte (pickle
and msgpack compared decoded). Where graphite-web fails (a 500) or both
refuse (400; Carbyne's message names the problem in the requested format,
graphite's is HTML) there is nothing to compare. ``/metrics/find`` leaf
intervals are left out: graphite-web computes their start from the wall
clock at answer time.
"""

from __future__ import annotations

import json
import pickle
import random
from pathlib import Path

import msgpack
import pytest
from app_support import NOW, carbyne_get, graphite_get, graphite_http, make_app, write_metric

pytestmark = pytest.mark.usefixtures("graphite_web")

STEP = 60
START = NOW - 3 * 86400
METRICS = ["a.b.c", "a.b.d", "a.x.c", "srv.web1.cpu", "srv.web2.cpu", "srv.web10.mem", "srv.db1.cpu",
           "Upper.Case.A", "dash-ed.under_score.v1", "sparse.one"]
TARGETS = ["a.b.c", "a.*.c", "a.{b,x}.*", "srv.*.cpu", "srv.web[12].cpu", "sparse.one", "nothing.here", "a.b.?",
           "sumSeries(srv.*.cpu)", "aliasByNode(srv.*.cpu,1)", "movingAverage(a.b.c,5)",
           "summarize(srv.web1.cpu,'1h')", "consolidateBy(a.*.c,'max')", "consolidateBy(srv.*.cpu,'sum')",
           "scale(a.b.c,0.1)", "derivative(sparse.one)", "asPercent(srv.*.cpu)", "highestMax(srv.*.cpu,2)",
           "keepLastValue(sparse.one)", "timeShift(a.b.c,'1d')", "integral(a.b.d)",
           "nonNegativeDerivative(srv.db1.cpu)", "hitcount(a.b.c,'10min')", "groupByNode(srv.*.cpu,0,'avg')",
           "countSeries(srv.*)", "transformNull(sparse.one)", "isNonNull(a.*.c)"]
TIMES = ["-1h", "-30min", "-2h", "-1d", "-2days", "-36h", "now", "today", "yesterday", "noon", "midnight",
         "teatime", "now-10min", "-5min", "midnight+1h", "noon yesterday", str(NOW - 7200), str(NOW - 86400),
         "-3d", "-1w", "6pm", "8am"]
ZONES = ["UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata", "Australia/Lord_Howe"]
FORMATS = ["json", "json", "raw", "csv", "pickle", "msgpack", "dygraph", "rickshaw"]
NODES = ["*", "a", "b*", "*b", "?", "[ab]", "[a-c]*", "{a,srv}", "web*", "web[0-9]", "web{1,10}", "c*", "cpu",
         "srv", "x", "U*", "*-*", "{a,b}*", "[!a]*", "*e*"]
FIND_FORMATS = ["treejson", "completer", "json", "pickle", "msgpack", "nodelist", None]


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory):
    root: Path = tmp_path_factory.mktemp("http-fuzz")
    rng = random.Random(5)
    for name in METRICS:
        values = [None if rng.random() < 0.1 else round(rng.uniform(-50, 100), rng.choice([0, 1, 3, 6]))
                  for _ in range(3 * 1440)]
        if name == "sparse.one":
            values = [None] * len(values)
            values[-30], values[-2000] = 7.0, 3.5
        write_metric(root, name, START, STEP, values, points=5 * 1440)
    with graphite_http(root) as graphite:
        yield make_app(root), graphite


def render_params(rng: random.Random) -> dict:
    params = {"target": rng.sample(TARGETS, rng.choice([1, 1, 2, 3])), "format": rng.choice(FORMATS), "now": str(NOW)}
    optional = [("from", 0.8, lambda: rng.choice(TIMES)), ("until", 0.4, lambda: rng.choice(TIMES)),
                ("maxDataPoints", 0.4, lambda: str(rng.choice([1, 2, 7, 50, 100, 333, 1000]))),
                ("noNullPoints", 0.2, lambda: "true"), ("tz", 0.4, lambda: rng.choice(ZONES)),
                ("jsonp", 0.1, lambda: "cb"), ("pretty", 0.1, lambda: "1")]
    for key, chance, value in optional:
        if rng.random() < chance:
            params[key] = value()
    return params


def find_params(rng: random.Random) -> dict:
    params = {"query": ".".join(rng.choice(NODES) for _ in range(rng.randint(1, 4)))}
    fmt = rng.choice(FIND_FORMATS)
    if fmt:
        params["format"] = fmt
    if rng.random() < 0.3:
        params["wildcards"] = "1"
    if rng.random() < 0.2:
        params["from"], params["until"] = str(NOW - 3600), str(NOW)
    if fmt == "nodelist" and rng.random() < 0.5:
        params["position"] = str(rng.randint(0, 3))
    return params


def _decoded(fmt: str | None, body: bytes) -> object:
    load = {"pickle": pickle.loads, "msgpack": msgpack.unpackb, "json": json.loads}[fmt or ""]
    items = load(body)
    if not isinstance(items, list):
        return items
    return [{k: v for k, v in (i if isinstance(i, dict) else vars(i)).items() if k != "intervals"} for i in items]


def _same(ours: tuple, theirs: tuple, fmt: str | None, decode: set[str]) -> bool:
    if ours == theirs:
        return True
    if theirs[0] == 500 or ours[0] == theirs[0] == 400:
        return True  # graphite-web failed, or both refused (messages differ by design)
    if fmt in decode and ours[0] == theirs[0] == 200:
        return ours[:2] == theirs[:2] and _decoded(fmt, ours[2]) == _decoded(fmt, theirs[2])
    return False


@pytest.mark.parametrize("seed", range(8))
def test_random_render_requests(apps, seed: int) -> None:
    client, graphite = apps
    rng = random.Random(seed)
    for _ in range(25):
        params = render_params(rng)
        ours, theirs = carbyne_get(client, "/render", params), graphite_get(graphite, "/render", params)
        assert _same(ours, theirs, params["format"], {"pickle", "msgpack"}), (params, ours[:2], theirs[:2],
                                                                              ours[2][:500], theirs[2][:500])


@pytest.mark.parametrize("seed", range(4))
def test_random_find_requests(apps, seed: int) -> None:
    client, graphite = apps
    rng = random.Random(100 + seed)
    for _ in range(40):
        params = find_params(rng)
        ours, theirs = carbyne_get(client, "/metrics/find", params), graphite_get(graphite, "/metrics/find", params)
        assert _same(ours, theirs, params.get("format"), {"pickle", "msgpack", "json"}), (
            params, ours[:2], theirs[:2], ours[2][:500], theirs[2][:500])
