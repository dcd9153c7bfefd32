"""CarbonLink cache queries: carbon's request/answer shapes, hostile frames, graphite-web's client."""
import json
import os
import pickle
import socket
import struct
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest
import whisper
from twisted.internet import defer
from twisted.internet.testing import StringTransport

from carbon.cache import MetricCache
from carbon.cachequery import CacheQueryFactory, CacheQueryHandler, WhisperMetadata
from carbon.instrumentation import Stats
from carbon.names import MetricIndex
from storage import whisper as carbyne_whisper
from storage.paths import metric_path
from storage.schemas import StorageRules
from storage.whisper.batch import WhisperStore

REPO = Path(__file__).resolve().parents[2]
WEBAPP = Path(sysconfig.get_paths()["purelib"]) / "opt" / "graphite" / "webapp"


def frame(obj, protocol=2):
    body = pickle.dumps(obj, protocol=protocol)
    return struct.pack("!L", len(body)) + body


def answers(raw):
    out = []
    while raw:
        (size,) = struct.unpack("!L", raw[:4])
        out.append(pickle.loads(raw[4 : 4 + size]))
        raw = raw[4 + size :]
    return out


class Rig:
    def __init__(self, tmp_path, run_exclusive=defer.maybeDeferred):
        self.index = MetricIndex()
        self.cache = MetricCache()
        self.stats = Stats()
        self.data_dir = tmp_path
        metadata = WhisperMetadata(tmp_path, WhisperStore(), run_exclusive,
                                   carbyne_whisper.setAggregationMethod)
        schemas = tmp_path / "schemas.conf"
        schemas.write_text("[fast]\npattern = ^fast\\.\nretentions = 10s:1h,1m:1d\n")
        rules = StorageRules.load(schemas, None)
        self.handler = CacheQueryHandler(self.cache, self.index, self.stats, metadata, rules)
        self.factory = CacheQueryFactory(self.handler)

    def connect(self):
        protocol = self.factory.buildProtocol(("127.0.0.1", 1))
        transport = StringTransport()
        protocol.makeConnection(transport)
        return protocol, transport

    def ask(self, *requests, protocol=2):
        proto, transport = self.connect()
        proto.dataReceived(b"".join(frame(r, protocol) for r in requests))
        return answers(transport.value())

    def put(self, name, *points):
        metric_id = self.index.id_for(name)
        for ts, value in points:
            self.cache.store(metric_id, float(ts), float(value))
        return metric_id


def test_cache_query_returns_cached_points_including_those_being_written(tmp_path):
    rig = Rig(tmp_path)
    metric_id = rig.put("a.b", (100, 1.5), (110, 2.5))
    rig.cache.pop(metric_id)  # handed to the writer, not yet confirmed
    rig.put("a.b", (120, 3.5))
    (answer,) = rig.ask({"type": "cache-query", "metric": "a.b"})
    assert answer == {"datapoints": [(100.0, 1.5), (110.0, 2.5), (120.0, 3.5)]}
    assert rig.stats.counters["cache.queries"] == 1


def test_unknown_metric_has_no_points_and_is_not_interned(tmp_path):
    rig = Rig(tmp_path)
    (answer,) = rig.ask({"type": "cache-query", "metric": "never.seen"})
    assert answer == {"datapoints": []}
    assert len(rig.index) == 0


def test_tagged_names_are_looked_up_canonically(tmp_path):
    rig = Rig(tmp_path)
    rig.put("cpu;host=a;dc=x", (100, 1))
    (answer,) = rig.ask({"type": "cache-query", "metric": "cpu;dc=x;host=a"})
    assert answer == {"datapoints": [(100.0, 1.0)]}


def test_bulk_query(tmp_path):
    rig = Rig(tmp_path)
    rig.put("a", (1, 1))
    rig.put("b", (2, 2), (3, 3))
    (answer,) = rig.ask({"type": "cache-query-bulk", "metrics": ["a", "b", "c"]})
    assert answer == {"datapointsByMetric": {"a": [(1.0, 1.0)], "b": [(2.0, 2.0), (3.0, 3.0)], "c": []}}
    assert rig.stats.counters["cache.bulk_queries"] == 1
    assert rig.stats.samples["cacheBulkQuerySize"] == [3]


def test_invalid_type_answers_carbons_error(tmp_path):
    (answer,) = Rig(tmp_path).ask({"type": "nope"})
    assert answer == {"error": 'Invalid request type "nope"'}


@pytest.mark.parametrize("request_", [{"metric": "a"}, {"type": "cache-query"}, ["not", "a", "dict"],
                                      {"type": "cache-query-bulk", "metrics": "a"}])
def test_malformed_requests_get_an_error_and_the_connection_survives(tmp_path, request_):
    rig = Rig(tmp_path)
    rig.put("a", (1, 1))
    first, second = rig.ask(request_, {"type": "cache-query", "metric": "a"})
    assert "error" in first
    assert second == {"datapoints": [(1.0, 1.0)]}


def test_python2_style_byte_strings_are_understood(tmp_path):
    rig = Rig(tmp_path)
    rig.put("a.b", (1, 1))
    # what a Python 2 graphite-web sends: protocol 0 with S (byte string) opcodes
    body = b"(dp0\nS'type'\np1\nS'cache-query'\np2\nsS'metric'\np3\nS'a.b'\np4\ns."
    proto, transport = rig.connect()
    proto.dataReceived(struct.pack("!L", len(body)) + body)
    assert answers(transport.value()) == [{"datapoints": [(1.0, 1.0)]}]


def test_every_pickle_protocol_the_client_may_use(tmp_path):
    rig = Rig(tmp_path)
    rig.put("a.b", (1, 1))
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        (answer,) = rig.ask({"type": "cache-query", "metric": "a.b"}, protocol=protocol)
        assert answer == {"datapoints": [(1.0, 1.0)]}


class Boom:
    def __reduce__(self):
        return (os.system, ("touch /tmp/carbyne-cachequery-pwned",))


def test_hostile_pickle_is_refused_without_running_anything(tmp_path):
    rig = Rig(tmp_path)
    marker = Path("/tmp/carbyne-cachequery-pwned")
    marker.unlink(missing_ok=True)
    first, second = rig.ask(Boom(), {"type": "nope"})
    assert "error" in first and not marker.exists()
    assert second == {"error": 'Invalid request type "nope"'}
    assert rig.stats.counters["rejected.bad_pickle"] == 1


def test_oversized_frame_closes_the_connection(tmp_path):
    rig = Rig(tmp_path)
    proto, transport = rig.connect()
    proto.dataReceived(struct.pack("!L", 2**31) + b"x" * 10)
    assert transport.disconnecting
    assert rig.stats.counters["rejected.frame_too_large"] == 1


def test_get_and_set_metadata_on_a_whisper_file(tmp_path):
    rig = Rig(tmp_path)
    path = metric_path(tmp_path, "a.b")
    path.parent.mkdir(parents=True)
    whisper.create(str(path), [(60, 10)], 0.5, "average")
    got, changed, again = rig.ask(
        {"type": "get-metadata", "metric": "a.b", "key": "aggregationMethod"},
        {"type": "set-metadata", "metric": "a.b", "key": "aggregationMethod", "value": "max"},
        {"type": "get-metadata", "metric": "a.b", "key": "aggregationMethod"},
    )
    assert got == {"value": "average"}
    assert changed == {"old_value": "average", "new_value": "max"}
    assert again == {"value": "max"}
    assert whisper.info(str(path))["aggregationMethod"] == "max"


def test_metadata_errors(tmp_path):
    rig = Rig(tmp_path)
    wrong_key, missing_file, bad_name = rig.ask(
        {"type": "get-metadata", "metric": "a.b", "key": "xFilesFactor"},
        {"type": "get-metadata", "metric": "no.file", "key": "aggregationMethod"},
        {"type": "get-metadata", "metric": "../etc", "key": "aggregationMethod"},
    )
    assert wrong_key == {"error": 'Unsupported metadata key "xFilesFactor"'}
    assert "error" in missing_file and "error" in bad_name


def test_answers_keep_request_order_when_metadata_is_slow(tmp_path):
    later = []

    def run_later(fn, *args):
        d = defer.Deferred()
        later.append((d, fn, args))
        return d

    rig = Rig(tmp_path, run_exclusive=run_later)
    path = metric_path(tmp_path, "a.b")
    path.parent.mkdir(parents=True)
    whisper.create(str(path), [(60, 10)], 0.5, "sum")
    proto, transport = rig.connect()
    proto.dataReceived(frame({"type": "get-metadata", "metric": "a.b", "key": "aggregationMethod"})
                       + frame({"type": "nope"}))
    assert transport.value() == b""
    d, fn, args = later.pop()
    d.callback(fn(*args))
    assert answers(transport.value()) == [{"value": "sum"}, {"error": 'Invalid request type "nope"'}]


def test_get_storageschema_is_the_policy_of_a_new_file(tmp_path):
    (answer,) = Rig(tmp_path).ask({"type": "get-storageschema", "metric": "fast.x"})
    assert answer == {"archives": [(10, 360), (60, 1440)], "xFilesFactor": 0.5,
                      "aggregationMethod": "average"}


# --- graphite-web's own client against a real socket ----------------------------------

SERVER = textwrap.dedent("""
    import sys
    from twisted.internet import reactor
    from carbon.cache import MetricCache
    from carbon.cachequery import CacheQueryFactory, CacheQueryHandler
    from carbon.instrumentation import Stats
    from carbon.names import MetricIndex

    index, cache = MetricIndex(), MetricCache()
    a = index.id_for("servers.web01.cpu")
    cache.store(a, 1700000000.0, 1.5)
    cache.store(a, 1700000010.0, 2.5)
    cache.pop(a)                      # being written: must still be visible
    cache.store(a, 1700000020.0, 3.5)
    size = index.id_for("carbon.agents.x.cache.size")
    cache.store(size, 1700000000.0, 7.0)
    cache.store(size, 1700000060.0, 8.0)
    port = reactor.listenTCP(0, CacheQueryFactory(CacheQueryHandler(cache, index, Stats())),
                             interface="127.0.0.1")
    print(port.getHost().port, flush=True)
    sys.stdin.readline and reactor.callInThread(lambda: (sys.stdin.read(), reactor.callFromThread(reactor.stop)))
    reactor.run()
""")

CLIENT = textwrap.dedent("""
    import json, os, sys, tempfile
    sys.path.insert(0, sys.argv[1])
    d = tempfile.mkdtemp(); os.makedirs(os.path.join(d, "log", "webapp"))
    os.environ["GRAPHITE_STORAGE_DIR"] = d
    os.environ["DJANGO_SETTINGS_MODULE"] = "graphite.settings"
    import django; django.setup()
    from graphite.carbonlink import CarbonLinkPool
    pool = CarbonLinkPool([("127.0.0.1", int(sys.argv[2]), None)], 5.0)
    out = {"plain": sorted(pool.query("servers.web01.cpu")),
           "missing": pool.query("no.such.metric"),
           "self": pool.query("carbon.agents.x.cache.size")}
    try:
        pool.get_metadata("no.such.metric", "aggregationMethod")
    except Exception as exc:
        out["metadata_error"] = type(exc).__name__
    print(json.dumps(out))
""")


def test_graphite_webs_carbonlink_client_reads_unflushed_points():
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, cwd=REPO, text=True)
    try:
        port = int(server.stdout.readline())
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        client = subprocess.run([sys.executable, "-c", CLIENT, str(WEBAPP), str(port)],
                                capture_output=True, text=True, timeout=60)
        assert client.returncode == 0, client.stderr
        result = json.loads(client.stdout.strip().splitlines()[-1])
    finally:
        server.stdin.close()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    assert result["plain"] == [[1700000000.0, 1.5], [1700000010.0, 2.5], [1700000020.0, 3.5]]
    assert result["missing"] == []
    # names under CARBON_METRIC_PREFIX go to every host and come back merged into a dict
    assert result["self"] == {"1700000000.0": 7.0, "1700000060.0": 8.0}
    assert result["metadata_error"] == "CarbonLinkRequestError"
