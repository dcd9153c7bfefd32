"""CarbonLink client: ask carbon-cache daemons for points not yet written to disk.

The cache-query protocol graphite-web speaks (`graphite/carbonlink.py`): a
frame is a 4-byte big-endian length and a pickle, both ways. Answers are
decoded with Carbyne's data-only unpickler (``carbon.unpickle``), which
refuses every global, so a hostile or broken daemon cannot run code here.

graphite-web sends each metric to the one cache its consistent-hash ring
picks. This client sends one ``cache-query-bulk`` per host to *every*
configured host and merges the answers: a metric lives in at most one cache,
so the union is the same without copying the ring, and it also works when
the ingest side's hashing differs. A host that failed is skipped for
``retry_delay`` seconds (graphite's ``CARBONLINK_RETRY_DELAY``) so a dead
cache costs one timeout, not one per render.

Nothing here ever fails a render: errors are logged and the affected
metrics simply get no cached points.
"""
from __future__ import annotations

import logging
import pickle
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from carbon.unpickle import RefusedPickle, loads

log = logging.getLogger(__name__)

Point = tuple[float, float]

DEFAULT_PORT = 7002
_LENGTH = struct.Struct("!L")


class CarbonLinkError(Exception):
    """One exchange with one cache daemon failed (logged by the client, never raised to callers)."""


@dataclass(frozen=True)
class CarbonLinkHost:
    """One cache daemon's query port (``instance`` is graphite's optional label)."""

    host: str
    port: int = DEFAULT_PORT
    instance: str | None = None

    def __str__(self) -> str:
        label = f":{self.instance}" if self.instance else ""
        return f"{self.host}:{self.port}{label}"


def parse_hosts(specs: Iterable[str]) -> list[CarbonLinkHost]:
    """graphite's ``CARBONLINK_HOSTS`` entries (``host:port[:instance]``) as hosts.

    Raises ValueError naming the entry when a port is missing or not a number.
    """
    hosts = []
    for spec in specs:
        parts = spec.strip().split(":")
        if len(parts) not in (2, 3) or not parts[0] or not parts[1].isdigit():
            raise ValueError(
                f"cannot parse CARBONLINK_HOSTS entry={spec!r}: expected host:port[:instance]"
            )
        port = int(parts[1])
        if not 0 < port < 65536:
            raise ValueError(f"cannot parse CARBONLINK_HOSTS entry={spec!r}: port out of range")
        hosts.append(CarbonLinkHost(parts[0], port, parts[2] if len(parts) == 3 else None))
    return hosts


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _points(raw: object) -> list[Point]:
    """``[(ts, value), ...]`` from an answer, dropping entries that are not number pairs.

    carbon answers a list of tuples; graphite-web also accepts a dict.
    """
    items = raw.items() if isinstance(raw, dict) else raw
    if not isinstance(items, Iterable) or isinstance(items, str | bytes):
        return []
    points = []
    for item in items:
        if isinstance(item, tuple | list) and len(item) == 2:
            ts, value = item
            if isinstance(ts, int | float) and isinstance(value, int | float):
                points.append((float(ts), float(value)))
    return points


class _HostPool:
    """Idle connections to one host, and when it last failed."""

    def __init__(self, host: CarbonLinkHost, size: int) -> None:
        self.host = host
        self.size = size
        self.idle: list[socket.socket] = []
        self.failed_at: float | None = None


class CarbonLinkClient:
    """Bulk cache queries against one or more carbon-cache daemons.

    Thread-safe: each exchange takes a connection from the host's pool (or
    opens one) and gives it back only after a complete answer; a connection
    that saw an error is closed. ``timeout`` bounds each whole exchange with
    a host (connect, send, receive), as ``CARBONLINK_TIMEOUT`` does.
    """

    def __init__(
        self,
        hosts: Sequence[CarbonLinkHost | tuple[str, int]],
        *,
        timeout: float = 1.0,
        pool_size: int = 4,
        retry_delay: float = 15.0,
        max_response_bytes: int = 256 << 20,
        batch_size: int = 2000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pools = [
            _HostPool(h if isinstance(h, CarbonLinkHost) else CarbonLinkHost(*h), pool_size)
            for h in hosts
        ]
        self.timeout = float(timeout)
        self.retry_delay = float(retry_delay)
        self.max_response_bytes = max_response_bytes
        self.batch_size = batch_size
        self._clock = clock
        self._lock = threading.Lock()

    @property
    def hosts(self) -> list[CarbonLinkHost]:
        return [pool.host for pool in self._pools]

    def cache_query(self, metric: str) -> list[Point]:
        """Cached points of one metric (empty when no cache has any or all failed)."""
        return self.cache_query_bulk([metric]).get(metric, [])

    def cache_query_bulk(self, metrics: Iterable[str]) -> dict[str, list[Point]]:
        """Cached ``(timestamp, value)`` points of each metric, from every host.

        Every requested metric is a key; points are in the order the caches
        sent them (carbon does not sort them). Failures are logged, never raised.
        """
        names = list(dict.fromkeys(metrics))
        result: dict[str, list[Point]] = {name: [] for name in names}
        if not names:
            return result
        for pool in self._pools:
            if not self._available(pool):
                continue
            for first in range(0, len(names), self.batch_size):
                batch = names[first : first + self.batch_size]
                answer = self._ask(pool, {"type": "cache-query-bulk", "metrics": batch})
                if answer is None:
                    break
                by_metric = answer.get("datapointsByMetric")
                if not isinstance(by_metric, dict):
                    log.warning("CarbonLink %s: bulk answer without datapointsByMetric", pool.host)
                    continue
                for raw_name, raw_points in by_metric.items():
                    name = _text(raw_name)
                    if name in result:
                        result[name].extend(_points(raw_points))
        return result

    def close(self) -> None:
        """Close every idle connection (connections in use close when returned)."""
        with self._lock:
            for pool in self._pools:
                for conn in pool.idle:
                    conn.close()
                pool.idle.clear()
                pool.size = 0

    def __enter__(self) -> CarbonLinkClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- one exchange ---------------------------------------------------------------

    def _available(self, pool: _HostPool) -> bool:
        with self._lock:
            return pool.failed_at is None or self._clock() - pool.failed_at >= self.retry_delay

    def _ask(self, pool: _HostPool, request: dict) -> dict | None:
        """Send one request to one host; its answer dict, or None after logging why not."""
        deadline = self._clock() + self.timeout
        conn = None
        try:
            conn = self._connection(pool, deadline)
            body = pickle.dumps(request, protocol=2)
            self._settimeout(conn, deadline)
            conn.sendall(_LENGTH.pack(len(body)) + body)
            answer = self._receive(conn, deadline)
        except (OSError, CarbonLinkError, RefusedPickle) as exc:
            if conn is not None:
                conn.close()
            with self._lock:
                pool.failed_at = self._clock()
            log.warning("CarbonLink query to %s failed: %s", pool.host, exc)
            return None
        self._release(pool, conn)
        if not isinstance(answer, dict):
            log.warning("CarbonLink %s answered %s, not a dict", pool.host, type(answer).__name__)
            return None
        answer = {_text(k): v for k, v in answer.items()}
        if "error" in answer:
            log.warning("CarbonLink %s answered an error: %s", pool.host, _text(answer["error"]))
            return None
        with self._lock:
            pool.failed_at = None
        return answer

    def _connection(self, pool: _HostPool, deadline: float) -> socket.socket:
        with self._lock:
            if pool.idle:
                return pool.idle.pop()
        remaining = deadline - self._clock()
        if remaining <= 0:
            raise CarbonLinkError("timed out before connecting")
        conn = socket.create_connection((pool.host.host, pool.host.port), timeout=remaining)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def _release(self, pool: _HostPool, conn: socket.socket) -> None:
        with self._lock:
            if len(pool.idle) < pool.size:
                pool.idle.append(conn)
                return
        conn.close()

    def _settimeout(self, conn: socket.socket, deadline: float) -> None:
        remaining = deadline - self._clock()
        if remaining <= 0:
            raise CarbonLinkError(f"timed out after {self.timeout}s")
        conn.settimeout(remaining)

    def _receive(self, conn: socket.socket, deadline: float) -> object:
        (size,) = _LENGTH.unpack(self._exactly(conn, _LENGTH.size, deadline))
        if size > self.max_response_bytes:
            raise CarbonLinkError(
                f"cannot read answer={size} bytes: over the {self.max_response_bytes}-byte limit"
            )
        return loads(self._exactly(conn, size, deadline), max_bytes=self.max_response_bytes)

    def _exactly(self, conn: socket.socket, size: int, deadline: float) -> bytes:
        buffer = bytearray(size)
        view = memoryview(buffer)
        got = 0
        while got < size:
            self._settimeout(conn, deadline)
            count = conn.recv_into(view[got:])
            if count == 0:
                raise CarbonLinkError("connection closed mid-answer")
            got += count
        return bytes(buffer)


__all__ = ["CarbonLinkClient", "CarbonLinkError", "CarbonLinkHost", "DEFAULT_PORT", "parse_hosts"]
