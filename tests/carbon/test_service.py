"""make_service: wiring, listen settings, self-metrics, and the order of a clean stop."""
import pickle
import struct
import sys

import pytest
import whisper
from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport

from carbon.config import CarbonConfig, package_conf_dir
from carbon.service import GIL_SWITCH_SECONDS, LISTEN_BACKLOG, make_service, storage_rule_paths
from storage.paths import metric_path
from storage.whisper.batch import WhisperStore

NOW = 1_700_000_040


class Store(WhisperStore):
    """The real WhisperStore, remembering that the service closed it."""

    closed = False

    def close(self):
        self.closed = True
        super().close()


class FakePort:
    """A listening port (TCP or UDP) that records pausing, as the real ones support."""

    def __init__(self, port):
        self.port = port
        self.paused = False
        self.listening = True

    def pauseProducing(self):  # noqa: N802
        self.paused = True

    def resumeProducing(self):  # noqa: N802
        self.paused = False

    def stopListening(self):  # noqa: N802
        self.listening = False

    def getHost(self):  # noqa: N802
        return IPv4Address("TCP", "127.0.0.1", self.port)


class Reactor(MemoryReactorClock):
    """MemoryReactorClock plus UDP, with ports that can pause."""

    def __init__(self):
        super().__init__()
        self.udpServers = []
        self.ports = {}

    def listenTCP(self, port, factory, backlog=50, interface=""):  # noqa: N802
        super().listenTCP(port, factory, backlog, interface)
        self.ports[port] = FakePort(port)
        return self.ports[port]

    def listenUDP(self, port, protocol, interface="", maxPacketSize=8192):  # noqa: N802
        self.udpServers.append((port, protocol, interface, maxPacketSize))
        transport = FakePort(port)
        protocol.makeConnection(transport)
        return transport


def make(tmp_path, **overrides):
    reactor = Reactor()
    reactor.advance(NOW)
    settings = dict(storage_dir=tmp_path, local_data_dir=tmp_path / "whisper",
                    conf_dir=tmp_path / "conf", line_receiver_port=2003,
                    cache_query_port=7002, carbon_metric_interval=60)
    settings.update(overrides)
    config = CarbonConfig(**settings)
    store = Store()
    service = make_service(config, reactor, store=store, run_blocking=defer.maybeDeferred,
                           hostname="web01.example")
    return reactor, service, store


def connect(reactor, port):
    (factory,) = [f for p, f, _, _ in reactor.tcpServers if p == port]
    protocol = factory.buildProtocol(("127.0.0.1", 5555))
    transport = StringTransport()
    protocol.makeConnection(transport)
    return protocol, transport


def query(reactor, metric):
    protocol, transport = connect(reactor, 7002)
    body = pickle.dumps({"type": "cache-query", "metric": metric}, protocol=2)
    protocol.dataReceived(struct.pack("!L", len(body)) + body)
    raw = transport.value()
    return pickle.loads(raw[4:])["datapoints"]


def on_disk(tmp_path, name):
    path = metric_path(tmp_path / "whisper", name)
    (start, _, step), values = whisper.fetch(str(path), NOW - 600, NOW + 60, now=NOW + 60)
    return [(start + i * step, v) for i, v in enumerate(values) if v is not None]


def test_listeners_use_the_configured_interfaces_and_a_large_backlog(tmp_path):
    reactor, service, _ = make(tmp_path, line_receiver_interface="127.0.0.1",
                               cache_query_interface="127.0.0.2", enable_udp_listener=True,
                               udp_receiver_port=2013, udp_receiver_interface="127.0.0.3")
    service.startService()
    ports = {(port, interface): backlog for port, _, backlog, interface in reactor.tcpServers}
    assert ports == {(2003, "127.0.0.1"): LISTEN_BACKLOG, (2004, "0.0.0.0"): LISTEN_BACKLOG,
                     (7002, "127.0.0.2"): LISTEN_BACKLOG}
    assert [(port, interface) for port, _, interface, _ in reactor.udpServers] == [(2013, "127.0.0.3")]
    service.stopService()


def test_pickle_and_udp_points_reach_the_cache(tmp_path):
    reactor, service, _ = make(tmp_path, enable_udp_listener=True, udp_receiver_port=2003)
    service.startService()
    protocol, _ = connect(reactor, 2004)
    body = pickle.dumps([("p.a", (NOW - 60, 1.0)), ("p.b", (NOW - 60, 2.0))], protocol=2)
    protocol.dataReceived(struct.pack("!L", len(body)) + body)
    (_, udp, _, _) = reactor.udpServers[0]
    udp.datagramReceived(b"u.a 3 %d\n" % (NOW - 60), ("127.0.0.1", 9))
    assert query(reactor, "p.b") == [(NOW - 60.0, 2.0)]
    assert query(reactor, "u.a") == [(NOW - 60.0, 3.0)]
    service.stopService()
    assert udp.transport.paused  # stopping pauses the UDP socket too


def test_max_receiver_connections_is_shared_by_the_listeners(tmp_path):
    reactor, service, _ = make(tmp_path, max_receiver_connections=1)
    service.startService()
    protocol, _ = connect(reactor, 2003)
    (factory,) = [f for p, f, _, _ in reactor.tcpServers if p == 2004]
    assert factory.buildProtocol(("127.0.0.1", 6)) is None
    assert service.pipeline.stats.counters["rejected.too_many_connections"] == 1
    assert reactor.ports[2003].paused and reactor.ports[2004].paused
    assert not reactor.ports[7002].paused
    protocol.connectionLost(None)
    assert not reactor.ports[2003].paused and not reactor.ports[2004].paused
    assert factory.buildProtocol(("127.0.0.1", 6)) is not None
    service.stopService()


def test_points_flow_from_a_receiver_to_disk_and_are_queryable_meanwhile(tmp_path):
    reactor, service, _ = make(tmp_path, max_updates_per_second=1)
    service.startService()
    protocol, _ = connect(reactor, 2003)
    protocol.dataReceived(b"a.b 1 %d\na.c 2 %d\n" % (NOW - 60, NOW - 60))
    assert query(reactor, "a.b") == [(NOW - 60.0, 1.0)]
    reactor.advance(1)
    reactor.advance(1)
    assert on_disk(tmp_path, "a.b") == [(NOW - 60, 1.0)]
    assert on_disk(tmp_path, "a.c") == [(NOW - 60, 2.0)]
    service.stopService()


def test_stop_pauses_receivers_flushes_everything_then_closes(tmp_path):
    reactor, service, store = make(tmp_path, max_updates_per_second=1)
    service.startService()
    protocol, transport = connect(reactor, 2003)
    protocol.dataReceived(b"".join(b"m.%d %d %d\n" % (i, i, NOW - 60) for i in range(20)))
    assert len(service.pipeline.cache) == 20
    stopped = []
    service.stopService().addCallback(stopped.append)
    assert transport.producerState == "paused"
    for _ in range(5):
        reactor.advance(0)
    assert stopped and store.closed
    assert service.pipeline.cache.size == 0
    assert all(on_disk(tmp_path, f"m.{i}") == [(NOW - 60, float(i))] for i in range(20))
    assert not any(child.running for child in service)
    assert not reactor.getDelayedCalls()


def test_self_metrics_are_written_under_carbon_agents_host(tmp_path):
    reactor, service, _ = make(tmp_path)
    service.startService()
    protocol, _ = connect(reactor, 2003)
    protocol.dataReceived(b"x 1 %d\nbad line\n" % (NOW - 60))
    reactor.advance(60)
    stopped = []
    service.stopService().addCallback(stopped.append)
    reactor.advance(0)
    assert stopped
    agent = tmp_path / "whisper" / "carbon" / "agents" / "web01_example"
    assert (agent / "metricsReceived.wsp").exists()
    assert (agent / "rejected" / "malformed_line.wsp").exists()
    assert on_disk(tmp_path, "carbon.agents.web01_example.metricsReceived") == [(NOW + 60, 1.0)]


def test_whitelist_files_are_read_from_conf_dir(tmp_path):
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "blacklist.conf").write_text("^secret\\.\n")
    reactor, service, _ = make(tmp_path, use_whitelist=True,
                               whitelist_path=conf / "whitelist.conf",
                               blacklist_path=conf / "blacklist.conf")
    service.startService()
    protocol, _ = connect(reactor, 2003)
    protocol.dataReceived(b"secret.x 1 %d\nopen.x 1 %d\n" % (NOW - 60, NOW - 60))
    assert query(reactor, "secret.x") == [] and query(reactor, "open.x") != []
    assert service.pipeline.stats.counters["blacklistMatches"] == 1
    service.stopService()


def test_disabled_ports_do_not_listen(tmp_path):
    reactor, service, _ = make(tmp_path, pickle_receiver_port=0, cache_query_port=0)
    service.startService()
    assert [port for port, *_ in reactor.tcpServers] == [2003]
    assert reactor.udpServers == []
    service.stopService()


def test_storage_rules_come_from_conf_dir_or_the_shipped_examples(tmp_path):
    shipped = package_conf_dir()
    schemas, aggregation = storage_rule_paths(shipped)
    assert schemas.name.startswith("storage-schemas.conf")
    assert aggregation.name.startswith("storage-aggregation.conf")
    (tmp_path / "storage-schemas.conf").write_text("[a]\npattern = .*\nretentions = 1m:1d\n")
    assert storage_rule_paths(tmp_path) == (tmp_path / "storage-schemas.conf", None)


def test_a_running_service_shortens_the_gil_switch_interval_and_restores_it(tmp_path):
    before = sys.getswitchinterval()
    reactor, service, _ = make(tmp_path)
    service.startService()
    try:
        assert sys.getswitchinterval() == pytest.approx(min(GIL_SWITCH_SECONDS, before))
    finally:
        service.stopService()
    assert sys.getswitchinterval() == pytest.approx(before)
