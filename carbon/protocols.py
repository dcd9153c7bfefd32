"""Thin Twisted receivers for carbon's plaintext (TCP, UDP) and pickle (TCP) listeners.

Each receiver frames bytes, hands whole chunks to :mod:`carbon.parse`, and passes
the result to an injected ``sink`` (see :class:`Sink`); it never touches the cache.
Every transport is registered with the sink, which pauses and resumes them for
flow control.

Differences from carbon 1.1.10, on purpose:

* A plaintext line longer than ``max_line_length`` is counted as a
  ``line_too_long`` reject and skipped up to its newline; Twisted's
  LineOnlyReceiver (carbon) drops the whole connection instead.
* An unterminated line left when a connection closes is counted as
  ``incomplete_line`` (carbon drops it silently).
* Connections over ``max_connections`` are refused (``too_many_connections``);
  like carbon, registered listening ports also stop accepting while full.
* Framing buffers grow by appending, so a frame sent a byte at a time costs
  linear, not quadratic, copying (Twisted's Int32StringReceiver re-joins its
  whole buffer on every read).
"""
from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass
from typing import Any
from typing import Protocol as TypingProtocol

from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import DatagramProtocol, Protocol, ServerFactory
from twisted.protocols.policies import TimeoutMixin

from carbon.names import MetricIndex
from carbon.parse import (
    DEFAULT_MAX_LINE_LENGTH,
    DEFAULT_MAX_POINTS_PER_MESSAGE,
    REJECT_SAMPLE_BYTES,
    Points,
    parse_lines,
    parse_pickle,
    too_long_sample_bytes,
)
from carbon.unpickle import DEFAULT_MAX_PICKLE_BYTES

_FRAME_HEADER = struct.Struct("!I")
# Bytes asked of the socket per read (Twisted asks 64 KiB): fewer, larger chunks
# spread each chunk's fixed Python cost over more lines. The kernel's receive
# buffer is left to TCP autotuning (setting SO_RCVBUF would switch that off).
READ_SIZE = 1 << 18


class Sink(TypingProtocol):
    """Where receivers deliver: the cache side implements this (``carbon.cache.Sink``)."""

    def accept(self, points: Points, peer: str) -> None: ...

    def reject(self, reason: str, sample: bytes, peer: str) -> None: ...

    def register_producer(self, transport: Any) -> None: ...

    def unregister_producer(self, transport: Any) -> None: ...


@dataclass(frozen=True, slots=True)
class ReceiverLimits:
    """Per-listener limits against hostile or broken clients (carbon.conf names in comments)."""

    max_line_length: int = DEFAULT_MAX_LINE_LENGTH  # Twisted's LineOnlyReceiver.MAX_LENGTH
    max_pickle_bytes: int = DEFAULT_MAX_PICKLE_BYTES  # PICKLE_RECEIVER_MAX_LENGTH
    max_points_per_message: int = DEFAULT_MAX_POINTS_PER_MESSAGE
    idle_timeout: float | None = None  # METRIC_CLIENT_IDLE_TIMEOUT

    def __post_init__(self) -> None:
        for field in ("max_line_length", "max_pickle_bytes", "max_points_per_message"):
            if getattr(self, field) < 1:
                raise ValueError(f"cannot use {field}={getattr(self, field)}: must be at least 1")
        if self.idle_timeout is not None and not self.idle_timeout > 0:
            raise ValueError(f"cannot use idle_timeout={self.idle_timeout}: must be positive")


class ConnectionLimit:
    """Open receiver connections, counted across every listener sharing this object.

    Carbon's MAX_RECEIVER_CONNECTIONS is one limit for all listeners: when it is
    reached, registered listening ports pause accepting until a connection closes.
    """

    def __init__(self, maximum: float = math.inf) -> None:
        if not maximum >= 1:
            raise ValueError(f"cannot use max_connections={maximum}: must be at least 1")
        self.maximum = maximum
        self.open = 0
        self.ports: list[Any] = []
        self._ports_paused = False

    def add_port(self, port: Any) -> None:
        """Watch a listening port (``pauseProducing``/``resumeProducing``) to pause when full."""
        self.ports.append(port)
        if self._ports_paused:
            port.pauseProducing()

    def remove_port(self, port: Any) -> None:
        self.ports.remove(port)

    def try_acquire(self) -> bool:
        if self.open >= self.maximum:
            return False
        self.open += 1
        self._update_ports()
        return True

    def release(self) -> None:
        self.open -= 1
        self._update_ports()

    def _update_ports(self) -> None:
        full = self.open >= self.maximum
        if full != self._ports_paused:
            self._ports_paused = full
            for port in self.ports:
                if full:
                    port.pauseProducing()
                else:
                    port.resumeProducing()


def peer_name(address: Any) -> str:
    """``host:port`` for log lines and rejects."""
    host, port = getattr(address, "host", None), getattr(address, "port", None)
    if host is None or port is None:
        return str(address)
    return f"{host}:{port}"


def _default_clock() -> IReactorTime:
    from twisted.internet import reactor

    return reactor  # type: ignore[return-value]


class ReceiverFactory(ServerFactory):
    """Builds receivers sharing one sink, index, limits, clock and connection limit."""

    protocol: type[_StreamReceiver]

    def __init__(
        self,
        sink: Sink,
        index: MetricIndex,
        limits: ReceiverLimits | None = None,
        clock: IReactorTime | None = None,
        connections: ConnectionLimit | None = None,
    ) -> None:
        """``clock`` gives the time for ``-1`` timestamps and runs idle timeouts (the reactor)."""
        self.sink = sink
        self.index = index
        self.limits = limits if limits is not None else ReceiverLimits()
        self.clock = clock if clock is not None else _default_clock()
        self.connections = connections if connections is not None else ConnectionLimit()

    def buildProtocol(self, addr: Any) -> _StreamReceiver | None:
        if not self.connections.try_acquire():
            self.sink.reject("too_many_connections", b"", peer_name(addr))
            return None
        return super().buildProtocol(addr)


class _StreamReceiver(Protocol, TimeoutMixin):
    """Connection bookkeeping shared by the TCP receivers."""

    factory: ReceiverFactory
    peer = "peer"

    def connectionMade(self) -> None:
        self.peer = peer_name(self.transport.getPeer())
        if hasattr(self.transport, "bufferSize"):
            self.transport.bufferSize = READ_SIZE
        self.factory.sink.register_producer(self.transport)
        if self.factory.limits.idle_timeout is not None:
            self.setTimeout(self.factory.limits.idle_timeout)

    def connectionLost(self, reason: Any = None) -> None:
        self.setTimeout(None)
        self.factory.sink.unregister_producer(self.transport)
        self.factory.connections.release()

    def callLater(self, period: float, func: Any) -> Any:
        return self.factory.clock.callLater(period, func)

    def _deliver(self, points: Points) -> None:
        if len(points) or points.rejects:
            self.factory.sink.accept(points, self.peer)


class PlaintextReceiver(_StreamReceiver):
    """``name value timestamp\\n`` lines over TCP; parses everything up to the last newline at once."""

    def __init__(self) -> None:
        self._tail = bytearray()
        self._discarding = False

    def dataReceived(self, data: bytes) -> None:
        self.resetTimeout()
        if self._discarding:
            newline = data.find(b"\n")
            if newline < 0:
                return
            data = data[newline + 1:]
            self._discarding = False
        last = data.rfind(b"\n")
        if last >= 0:
            if self._tail:
                self._tail += memoryview(data)[: last + 1]
                self._parse(self._tail)
                self._tail = bytearray()
            else:
                self._parse(memoryview(data)[: last + 1])
            data = memoryview(data)[last + 1:]
        self._tail += data
        limit = self.factory.limits.max_line_length
        if len(self._tail) > limit:
            sample = bytes(self._tail[: too_long_sample_bytes(limit)])
            self.factory.sink.reject("line_too_long", sample, self.peer)
            self._tail = bytearray()
            self._discarding = True

    def connectionLost(self, reason: Any = None) -> None:
        leftover = bytes(self._tail).strip()
        if leftover:
            self.factory.sink.reject("incomplete_line", leftover[:REJECT_SAMPLE_BYTES], self.peer)
        self._tail = bytearray()
        super().connectionLost(reason)

    def _parse(self, chunk: bytes | bytearray | memoryview) -> None:
        factory = self.factory
        self._deliver(
            parse_lines(chunk, factory.index, factory.clock.seconds(), factory.limits.max_line_length)
        )


class PickleReceiver(_StreamReceiver):
    """Frames of a 4-byte big-endian length and a pickled ``[(name, (timestamp, value)), ...]``.

    A frame longer than ``max_pickle_bytes`` is a ``frame_too_large`` reject and,
    as in carbon, ends the connection (the stream cannot be resynchronised).
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._frame_length: int | None = None
        self._dropped = False

    def dataReceived(self, data: bytes) -> None:
        if self._dropped:
            return
        self.resetTimeout()
        buffer = self._buffer
        buffer += data
        offset = 0
        limits = self.factory.limits
        while True:
            if self._frame_length is None:
                if len(buffer) - offset < _FRAME_HEADER.size:
                    break
                (length,) = _FRAME_HEADER.unpack_from(buffer, offset)
                if length > limits.max_pickle_bytes:
                    self._drop(length)
                    return
                self._frame_length = length
                offset += _FRAME_HEADER.size
            if len(buffer) - offset < self._frame_length:
                break
            payload = bytes(buffer[offset: offset + self._frame_length])
            offset += self._frame_length
            self._frame_length = None
            self._deliver(
                parse_pickle(
                    payload,
                    self.factory.index,
                    self.factory.clock.seconds(),
                    limits.max_points_per_message,
                    limits.max_pickle_bytes,
                )
            )
        del buffer[:offset]

    def _drop(self, length: int) -> None:
        limit = self.factory.limits.max_pickle_bytes
        sample = f"{length}-byte frame over the {limit}-byte limit".encode()
        self.factory.sink.reject("frame_too_large", sample, self.peer)
        self._dropped = True
        self._buffer = bytearray()
        self.transport.loseConnection()


class PlaintextFactory(ReceiverFactory):
    """carbon's LINE_RECEIVER (plaintext TCP, port 2003)."""

    protocol = PlaintextReceiver


class PickleFactory(ReceiverFactory):
    """carbon's PICKLE_RECEIVER (pickle TCP, port 2004)."""

    protocol = PickleReceiver


# Bytes at which str.splitlines() may end a line and a split on b"\\n" does not (the
# non-ASCII ones are in the UTF-8 spellings of U+0085, U+2028 and U+2029).
_OTHER_LINE_BREAKS = re.compile(rb"[\r\x0b\x0c\x1c-\x1e\x80-\xff]")


def datagram_lines(data: bytes) -> bytes:
    """A datagram's lines as carbon splits them (str.splitlines() of its UTF-8 text), one
    per ``\\n``. Data that is not UTF-8 (carbon drops the datagram) splits at ``\\n``."""
    if _OTHER_LINE_BREAKS.search(data) is None:
        return data
    try:
        lines = data.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        return data
    return "\n".join(lines).encode("utf-8")


class DatagramReceiver(DatagramProtocol):
    """carbon's UDP_RECEIVER: each datagram holds whole plaintext lines.

    carbon decodes a datagram as UTF-8 and splits it with str.splitlines(), so a bare
    ``\\r``, ``\\x0b``, ``\\x0c``, ``\\x1c``-``\\x1e`` and U+0085/U+2028/U+2029 end lines
    too (over TCP only ``\\n`` does); see datagram_lines.
    """

    def __init__(
        self,
        sink: Sink,
        index: MetricIndex,
        limits: ReceiverLimits | None = None,
        clock: IReactorTime | None = None,
    ) -> None:
        self.sink = sink
        self.index = index
        self.limits = limits if limits is not None else ReceiverLimits()
        self.clock = clock if clock is not None else _default_clock()
        self._port: Any = None

    def startProtocol(self) -> None:
        self._port = self.transport
        self.sink.register_producer(self._port)

    def stopProtocol(self) -> None:
        # Twisted has already cleared self.transport here.
        self.sink.unregister_producer(self._port)

    def datagramReceived(self, data: bytes, addr: tuple[str, int]) -> None:
        points = parse_lines(datagram_lines(data), self.index, self.clock.seconds(), self.limits.max_line_length)
        if len(points) or points.rejects:
            self.sink.accept(points, f"{addr[0]}:{addr[1]}")
