"""carbon.protocols: every input at every chunk size, hostile input survived, limits enforced."""
from __future__ import annotations

import os
import pickle
import struct

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from carbon.names import MetricIndex
from carbon.parse import Points
from carbon.protocols import (
    ConnectionLimit,
    DatagramReceiver,
    PickleFactory,
    PlaintextFactory,
    ReceiverLimits,
)

NOW = 1_795_422_700.0


class RecordingSink:
    """The sink interface, writing down everything it is told."""

    def __init__(self, index: MetricIndex) -> None:
        self.index = index
        self.points: list[tuple[str, float, float, str]] = []
        self.rejects: list[tuple[str, bytes, str]] = []
        self.producers: list[object] = []

    def accept(self, points: Points, peer: str) -> None:
        assert isinstance(points, Points)
        for rejected in points.rejects:
            self.reject(rejected.reason, rejected.sample, peer)
        for metric_id, timestamp, value in zip(
            points.ids.tolist(), points.timestamps.tolist(), points.values.tolist(), strict=True
        ):
            self.points.append((self.index.name(metric_id), timestamp, value, peer))

    def reject(self, reason: str, sample: bytes, peer: str) -> None:
        self.rejects.append((reason, sample, peer))

    def register_producer(self, transport: object) -> None:
        self.producers.append(transport)

    def unregister_producer(self, transport: object) -> None:
        self.producers.remove(transport)


def make_clock() -> Clock:
    clock = Clock()
    clock.advance(NOW)
    return clock


def connect(factory, port: int = 40000):
    address = IPv4Address("TCP", "127.0.0.1", port)
    protocol = factory.buildProtocol(address)
    if protocol is None:
        return None, None
    transport = StringTransport(peerAddress=address)
    protocol.makeConnection(transport)
    return protocol, transport


def feed(factory_type, data: bytes, chunk_size: int, limits: ReceiverLimits | None = None):
    """Send ``data`` in ``chunk_size`` pieces on one connection, then close it."""
    index = MetricIndex()
    sink = RecordingSink(index)
    factory = factory_type(sink, index, limits, make_clock())
    protocol, transport = connect(factory)
    for start in range(0, len(data), chunk_size):
        if transport.disconnecting:
            break
        protocol.dataReceived(data[start:start + chunk_size])
    protocol.connectionLost(None)
    assert sink.producers == []
    return sink, transport


def assert_chunking_is_invisible(factory_type, data: bytes, limits: ReceiverLimits | None = None):
    whole, _ = feed(factory_type, data, len(data) or 1, limits)
    for size in range(1, len(data) + 1):
        sink, _ = feed(factory_type, data, size, limits)
        assert (sink.points, sink.rejects) == (whole.points, whole.rejects), f"chunk size {size}"
    return whole


PLAINTEXT_INPUTS = {  # name: (data, max_line_length)
    "collectd-crlf": (
        b"collectd.h.memory.memory-used 141385728 1795422633\r\n"
        b"collectd.h.cpu-0.cpu-user nan 1795422634\r\n"
        b"collectd.load;host=h;plugin=load;type=load 1.90625 1795423649\r\n",
        100,
    ),
    "statsd-tags": (b"stats.drv.tagged.0;env=test;dc=dc0 29 1795422726\nstats.x 1 -1\n", 100),
    "mixed-bad": (
        b"ok 1 2\nnot valid\nx 0x10 5\n\xff 1 2\nq 1 1e20\n\n   \nbad;tag 1 2\nok2 1_000 3\n",
        100,
    ),
    "too-long": (b"a 1 2\n" + b"z" * 40 + b" 1 2\nb 3 4\n" + b"y" * 25 + b"\nc 5 6\n", 20),
    "too-long-crlf": (b"w 1 2" + b" " * 14 + b"\r\n" + b"v 1 2" + b" " * 15 + b"\r\n", 20),
    "unterminated": (b"a 1 2\nb 3", 100),
}


@pytest.mark.parametrize("name", PLAINTEXT_INPUTS)
def test_plaintext_at_every_chunk_size(name: str) -> None:
    data, max_line_length = PLAINTEXT_INPUTS[name]
    limits = ReceiverLimits(max_line_length=max_line_length)
    whole = assert_chunking_is_invisible(PlaintextFactory, data, limits)
    assert all(peer == "127.0.0.1:40000" for *_, peer in whole.points + whole.rejects)


def test_plaintext_results() -> None:
    data = b"".join(PLAINTEXT_INPUTS[name][0] for name in PLAINTEXT_INPUTS if name != "too-long-crlf")
    sink, _ = feed(PlaintextFactory, data, len(data), ReceiverLimits(max_line_length=100))
    assert [p[:3] for p in sink.points] == [
        ("collectd.h.memory.memory-used", 1795422633.0, 141385728.0),
        ("collectd.load;host=h;plugin=load;type=load", 1795423649.0, 1.90625),
        ("stats.drv.tagged.0;dc=dc0;env=test", 1795422726.0, 29.0),
        ("stats.x", NOW, 1.0),
        ("ok", 2.0, 1.0),
        ("ok2", 3.0, 1000.0),
        ("a", 2.0, 1.0),
        ("z" * 40, 2.0, 1.0),
        ("b", 4.0, 3.0),
        ("c", 6.0, 5.0),
        ("a", 2.0, 1.0),
    ]
    assert [r[0] for r in sink.rejects] == [
        "nan_value", "malformed_line", "bad_value", "bad_name", "bad_timestamp", "bad_name",
        "malformed_line", "incomplete_line",
    ]
    assert sink.rejects[-1][1] == b"b 3"


def test_line_limit_counts_the_carriage_return() -> None:
    data, max_line_length = PLAINTEXT_INPUTS["too-long-crlf"]
    sink, _ = feed(PlaintextFactory, data, len(data), ReceiverLimits(max_line_length=max_line_length))
    assert [p[:3] for p in sink.points] == [("w", 2.0, 1.0)]  # 20 bytes with its \r
    assert [r[:2] for r in sink.rejects] == [("line_too_long", b"v 1 2" + b" " * 15 + b"\r")]


def test_an_endless_line_is_skipped_without_buffering_it() -> None:
    index = MetricIndex()
    sink = RecordingSink(index)
    protocol, transport = connect(PlaintextFactory(sink, index, ReceiverLimits(max_line_length=100), make_clock()))
    for _ in range(1000):
        protocol.dataReceived(b"x" * 1000)
        assert len(protocol._tail) <= 100
    protocol.dataReceived(b"tail of the long line\nok 1 2\n")
    assert [r[0] for r in sink.rejects] == ["line_too_long"]
    assert sink.rejects[0][1] == b"x" * 101
    assert [p[:3] for p in sink.points] == [("ok", 2.0, 1.0)]
    assert not transport.disconnecting


def frame(payload: bytes) -> bytes:
    return struct.pack("!I", len(payload)) + payload


class Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


PICKLE_STREAMS = {
    "protocols-0-to-5": b"".join(
        frame(pickle.dumps([(f"p{protocol}.m", (1700000000 + protocol, float(protocol)))], protocol=protocol))
        for protocol in range(6)
    ),
    "statsd-protocol-0": frame(b"(l(S'stats.c'\n(L1795422726L\nS'62'\ntta."),
    "hostile-then-good": b"".join(
        [
            frame(pickle.dumps([("evil", (1, Exploit()))], protocol=2)),
            frame(pickle.dumps([("before", (1, 2))], protocol=2)[:-3]),  # truncated pickle
            frame(b"\x80\x02N" + b"r" + struct.pack("<I", 1 << 30) + b"."),  # memo bomb
            frame(pickle.dumps({"a": 1}, protocol=2)),  # wrong shape
            frame(pickle.dumps([("x", 1), ("y", ("a", "b")), ("good", (5, "6"))], protocol=4)),
            frame(b"\x80\x02" + b"]" * 300 + b"a" * 299 + b"."),  # deeply nested
            frame(b""),
        ]
    ),
    "oversized-frame-drops-connection": frame(pickle.dumps([("kept", (1, 2))], protocol=2))
    + struct.pack("!I", 1_000_000)
    + b"never read",
}


@pytest.mark.parametrize("name", PICKLE_STREAMS)
def test_pickle_at_every_chunk_size(name: str) -> None:
    assert_chunking_is_invisible(PickleFactory, PICKLE_STREAMS[name], ReceiverLimits(max_pickle_bytes=100_000))


def test_pickle_results() -> None:
    limits = ReceiverLimits(max_pickle_bytes=100_000)
    data = b"".join(PICKLE_STREAMS[name] for name in ["protocols-0-to-5", "statsd-protocol-0", "hostile-then-good"])
    sink, transport = feed(PickleFactory, data, 7, limits)
    assert [p[:3] for p in sink.points] == [
        *[(f"p{n}.m", 1700000000.0 + n, float(n)) for n in range(6)],
        ("stats.c", 1795422726.0, 62.0),
        ("good", 5.0, 6.0),
    ]
    assert [r[0] for r in sink.rejects] == [
        "bad_pickle", "bad_pickle", "bad_pickle", "bad_pickle",
        "bad_shape", "bad_value", "bad_shape", "bad_pickle",
    ]
    assert not transport.disconnecting


def test_oversized_frame_is_rejected_and_drops_the_connection() -> None:
    sink, transport = feed(PickleFactory, PICKLE_STREAMS["oversized-frame-drops-connection"], 3,
                           ReceiverLimits(max_pickle_bytes=100_000))
    assert [p[:3] for p in sink.points] == [("kept", 1.0, 2.0)]
    assert sink.rejects == [("frame_too_large", b"1000000-byte frame over the 100000-byte limit", "127.0.0.1:40000")]
    assert transport.disconnecting


def test_frame_exactly_at_the_limit_is_accepted() -> None:
    payload = pickle.dumps([("m", (1, 2))], protocol=2)
    sink, transport = feed(PickleFactory, frame(payload), 5, ReceiverLimits(max_pickle_bytes=len(payload)))
    assert len(sink.points) == 1 and not transport.disconnecting
    sink, transport = feed(PickleFactory, frame(payload), 5, ReceiverLimits(max_pickle_bytes=len(payload) - 1))
    assert sink.points == [] and transport.disconnecting


def test_points_per_message_limit() -> None:
    payload = pickle.dumps([(f"m{n}", (n, n)) for n in range(5)], protocol=2)
    sink, _ = feed(PickleFactory, frame(payload), len(payload) + 4, ReceiverLimits(max_points_per_message=2))
    assert [p[0] for p in sink.points] == ["m0", "m1"]
    assert [r[0] for r in sink.rejects] == ["too_many_points"]


def test_a_hostile_connection_does_not_disturb_others() -> None:
    index = MetricIndex()
    sink = RecordingSink(index)
    pickle_factory = PickleFactory(sink, index, ReceiverLimits(max_pickle_bytes=1000), make_clock())
    line_factory = PlaintextFactory(sink, index, ReceiverLimits(max_line_length=50), make_clock())
    good_pickle, good_pickle_transport = connect(pickle_factory, 1)
    bad_pickle, bad_pickle_transport = connect(pickle_factory, 2)
    good_line, _ = connect(line_factory, 3)
    bad_line, bad_line_transport = connect(line_factory, 4)
    good_payload = frame(pickle.dumps([("good.pickle", (1, 1))], protocol=2))
    for _ in range(3):
        good_pickle.dataReceived(good_payload[:5])
        bad_pickle.dataReceived(struct.pack("!I", 10**6) + b"junk")
        bad_line.dataReceived(b"q" * 100 + b" nan x\n" + b"\x00" * 60)
        good_pickle.dataReceived(good_payload[5:])
        good_line.dataReceived(b"good.line 1 1\n")
    assert [p[0] for p in sink.points] == ["good.pickle", "good.line"] * 3
    assert {p[3] for p in sink.points} == {"127.0.0.1:1", "127.0.0.1:3"}
    assert {r[2] for r in sink.rejects} == {"127.0.0.1:2", "127.0.0.1:4"}
    assert bad_pickle_transport.disconnecting and not good_pickle_transport.disconnecting
    assert not bad_line_transport.disconnecting


def test_transports_are_registered_for_flow_control() -> None:
    index = MetricIndex()
    sink = RecordingSink(index)
    factory = PlaintextFactory(sink, index, clock=make_clock())
    protocol, transport = connect(factory)
    assert sink.producers == [transport]
    protocol.connectionLost(None)
    assert sink.producers == []


class FakePort:
    def __init__(self) -> None:
        self.paused = False

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False


def test_connection_limit_is_shared_across_listeners() -> None:
    index = MetricIndex()
    sink = RecordingSink(index)
    limit = ConnectionLimit(2)
    ports = [FakePort(), FakePort()]
    for port in ports:
        limit.add_port(port)
    lines = PlaintextFactory(sink, index, clock=make_clock(), connections=limit)
    pickles = PickleFactory(sink, index, clock=make_clock(), connections=limit)
    first, _ = connect(lines, 1)
    assert not any(port.paused for port in ports)
    second, _ = connect(pickles, 2)
    assert all(port.paused for port in ports)
    third, _ = connect(lines, 3)
    assert third is None
    assert sink.rejects == [("too_many_connections", b"", "127.0.0.1:3")]
    first.connectionLost(None)
    assert not any(port.paused for port in ports)
    fourth, _ = connect(pickles, 4)
    assert fourth is not None and limit.open == 2
    late_port = FakePort()
    limit.add_port(late_port)
    assert late_port.paused


def test_idle_connections_time_out() -> None:
    index = MetricIndex()
    clock = make_clock()
    factory = PlaintextFactory(RecordingSink(index), index, ReceiverLimits(idle_timeout=10), clock)
    protocol, transport = connect(factory)
    clock.advance(9)
    protocol.dataReceived(b"a 1 2\n")
    clock.advance(9)
    assert not transport.disconnecting
    clock.advance(2)
    assert transport.disconnecting
    protocol.connectionLost(None)
    assert clock.getDelayedCalls() == []


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="max_line_length=0"):
        ReceiverLimits(max_line_length=0)
    with pytest.raises(ValueError, match="idle_timeout=0"):
        ReceiverLimits(idle_timeout=0)
    with pytest.raises(ValueError, match="max_connections=0"):
        ConnectionLimit(0)


class FakeUDPPort:
    def pauseProducing(self) -> None: ...

    def resumeProducing(self) -> None: ...


def test_udp_datagrams_hold_several_lines() -> None:
    index = MetricIndex()
    sink = RecordingSink(index)
    receiver = DatagramReceiver(sink, index, ReceiverLimits(max_line_length=30), make_clock())
    port = FakeUDPPort()
    receiver.makeConnection(port)
    assert sink.producers == [port]
    receiver.datagramReceived(b"a 1 2\r\nb nan 3\r\nc 4 -1", ("10.0.0.1", 5000))
    receiver.datagramReceived(b"d" * 40 + b" 1 2\nnot valid\ne 5 6\n", ("10.0.0.2", 5001))
    assert sink.points == [
        ("a", 2.0, 1.0, "10.0.0.1:5000"),
        ("c", NOW, 4.0, "10.0.0.1:5000"),
        ("e", 6.0, 5.0, "10.0.0.2:5001"),
    ]
    assert [(r[0], r[2]) for r in sink.rejects] == [
        ("nan_value", "10.0.0.1:5000"),
        ("line_too_long", "10.0.0.2:5001"),
        ("malformed_line", "10.0.0.2:5001"),
    ]
    receiver.doStop()
    assert sink.producers == []


@pytest.mark.parametrize("break_", ["\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028",
                                    "\u2029", "\r\n", "\n"])
def test_udp_lines_end_where_str_splitlines_ends_them(break_: str) -> None:
    """carbon splits a datagram's UTF-8 text with str.splitlines()."""
    index = MetricIndex()
    sink = RecordingSink(index)
    receiver = DatagramReceiver(sink, index, ReceiverLimits(), make_clock())
    receiver.makeConnection(FakeUDPPort())
    datagram = f"a 1 10{break_}b 2 20{break_}{break_}c\xe9 3 30{break_}".encode()
    receiver.datagramReceived(datagram, ("10.0.0.1", 5000))
    assert [point[:3] for point in sink.points] == [("a", 10.0, 1.0), ("b", 20.0, 2.0), ("c\xe9", 30.0, 3.0)]
    assert sink.rejects == []


def test_a_udp_datagram_that_is_not_utf8_splits_at_newlines() -> None:
    index = MetricIndex()
    sink = RecordingSink(index)
    receiver = DatagramReceiver(sink, index, ReceiverLimits(), make_clock())
    receiver.makeConnection(FakeUDPPort())
    receiver.datagramReceived(b"a 1 10\rb\xff 2 20\nc 3 30", ("10.0.0.1", 5000))
    assert [point[:3] for point in sink.points] == [("c", 30.0, 3.0)]
    assert [r[0] for r in sink.rejects] == ["malformed_line"]


def test_tcp_receivers_read_larger_chunks_than_twisteds_default() -> None:
    from carbon.protocols import READ_SIZE

    class SocketTransport(StringTransport):
        bufferSize = 65536  # Twisted's tcp.Connection default

    index = MetricIndex()
    for factory_type in (PlaintextFactory, PickleFactory):
        factory = factory_type(RecordingSink(index), index, None, make_clock())
        protocol = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40001))
        transport = SocketTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40001))
        protocol.makeConnection(transport)
        assert transport.bufferSize == READ_SIZE > 65536
