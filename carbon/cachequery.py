"""CarbonLink: the cache-query protocol graphite-web uses to read points not yet on disk.

Frames are a 4-byte big-endian length and a pickle, both ways. Requests are
unpickled with Carbyne's data-only unpickler (``carbon.unpickle``), never a
general one; answers are pickled with protocol 2, as carbon does.

Requests (dicts) and answers, as carbon 1.1.10's CacheManagementHandler:

* ``cache-query`` {metric} → ``{'datapoints': [(ts, value), ...]}``
* ``cache-query-bulk`` {metrics} → ``{'datapointsByMetric': {metric: [...]}}``
* ``get-metadata`` {metric, key='aggregationMethod'} → ``{'value': ...}``
* ``set-metadata`` {metric, key, value} → ``{'old_value': ..., 'new_value': ...}``
* anything else → ``{'error': 'Invalid request type "<type>"'}``

Carbyne adds ``get-storageschema`` {metric} → ``{'archives': [(secondsPerPoint,
points), ...], 'xFilesFactor': x, 'aggregationMethod': m}``: the policy a new
file for that metric gets, which lets a reader place cached points of a
metric that has no file yet. Failures answer ``{'error': <message>}``
instead of dropping the connection; the client raises it.

Cached points include those the writer is writing right now (see
``carbon.cache``), so there is no gap between cache and disk.
"""
from __future__ import annotations

import logging
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.internet.protocol import ServerFactory
from twisted.protocols.basic import Int32StringReceiver
from twisted.python.failure import Failure

from carbon.unpickle import RefusedPickle, loads
from storage.paths import metric_path

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 16 << 20
METADATA_KEYS = ("aggregationMethod",)


class QueryError(Exception):
    """A request that gets ``{'error': message}`` as its answer."""


def _text(value: Any, what: str) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise QueryError(f"cannot read {what}={value[:80]!r}: not UTF-8") from None
    if not isinstance(value, str):
        raise QueryError(f"cannot read {what}={value!r}: expected a string")
    return value


def _field(request: dict, key: str) -> Any:
    for candidate in (key, key.encode()):
        if candidate in request:
            return request[candidate]
    raise QueryError(f"cannot answer request type={request.get('type')!r}: missing key {key!r}")


class WhisperMetadata:
    """get-/set-metadata on whisper files, run on the writer thread so it never races a write.

    ``store`` is the daemon's WhisperStore; ``set_aggregation`` changes a
    file's aggregation method and returns the old one (whisper's
    ``setAggregationMethod``).
    """

    def __init__(
        self,
        data_dir: Path,
        store: Any,
        run_exclusive: Callable[..., defer.Deferred],
        set_aggregation: Callable[[str, str], str],
    ) -> None:
        self.data_dir = data_dir
        self.store = store
        self.run_exclusive = run_exclusive
        self.set_aggregation = set_aggregation

    def _path(self, metric: str, key: str) -> Path:
        if key not in METADATA_KEYS:
            raise QueryError(f'Unsupported metadata key "{key}"')
        return metric_path(self.data_dir, metric)

    def get(self, metric: str, key: str) -> defer.Deferred:
        path = self._path(metric, key)
        return self.run_exclusive(lambda: self.store.info(path)[key])

    def set(self, metric: str, key: str, value: Any) -> defer.Deferred:
        path = self._path(metric, key)
        return self.run_exclusive(self._set_and_reload, path, value)

    def _set_and_reload(self, path: Path, value: Any) -> Any:
        old = self.set_aggregation(str(path), value)
        # The store trusts its cached headers for a while; WhisperStore has no call to
        # forget one file, so drop every cached descriptor (a rare admin request).
        self.store.close()
        return old


class CacheQueryHandler:
    """Answers decoded requests from the cache (and metadata from the files)."""

    def __init__(
        self,
        cache: Any,
        index: Any,
        stats: Any,
        metadata: WhisperMetadata | None = None,
        rules: Any = None,
        log_hits: bool = False,
    ) -> None:
        """``cache`` a MetricCache, ``index`` the MetricIndex, ``rules`` has ``policy_for``."""
        self.cache = cache
        self.index = index
        self.stats = stats
        self.metadata = metadata
        self.rules = rules
        self.log_hits = log_hits

    def datapoints(self, metric: str) -> list[tuple[float, float]]:
        metric_id = self.index.lookup(metric)
        return [] if metric_id is None else self.cache.datapoints(metric_id)

    def answer(self, request: Any, peer: str) -> defer.Deferred:
        """The answer dict for one request, possibly later (metadata goes via the writer thread)."""
        try:
            if not isinstance(request, dict):
                raise QueryError(f"cannot answer request={type(request).__name__}: expected a dict")
            kind = _text(_field(request, "type"), "type")
            result = self._dispatch(kind, request, peer)
        except QueryError as exc:
            return defer.succeed({"error": str(exc)})
        except Exception as exc:  # e.g. InvalidMetricName: answer it, keep the connection
            return defer.succeed(self._failed(Failure(exc)))
        d = defer.maybeDeferred(lambda: result)
        d.addErrback(self._failed)
        return d

    def _dispatch(self, kind: str, request: dict, peer: str) -> Any:
        if kind == "cache-query":
            metric = _text(_field(request, "metric"), "metric")
            points = self.datapoints(metric)
            self.stats.increment("cache.queries")
            if self.log_hits:
                log.info("[%s] cache query for %r returned %d values", peer, metric, len(points))
            return {"datapoints": points}
        if kind == "cache-query-bulk":
            metrics = _field(request, "metrics")
            if not isinstance(metrics, list | tuple):
                raise QueryError(f"cannot read metrics={type(metrics).__name__}: expected a list")
            by_metric = {}
            for raw in metrics:
                metric = _text(raw, "metric")
                by_metric[metric] = self.datapoints(metric)
            self.stats.increment("cache.bulk_queries")
            self.stats.append("cacheBulkQuerySize", len(metrics))
            if self.log_hits:
                log.info("[%s] cache query bulk for %d metrics returned %d values", peer,
                         len(metrics), sum(len(p) for p in by_metric.values()))
            return {"datapointsByMetric": by_metric}
        if kind == "get-metadata":
            metric = _text(_field(request, "metric"), "metric")
            key = _text(_field(request, "key"), "key")
            d = self._metadata().get(metric, key)
            d.addCallback(lambda value: {"value": value})
            return d
        if kind == "set-metadata":
            metric = _text(_field(request, "metric"), "metric")
            key = _text(_field(request, "key"), "key")
            value = _field(request, "value")
            value = _text(value, "value") if isinstance(value, bytes) else value
            d = self._metadata().set(metric, key, value)
            d.addCallback(lambda old: {"old_value": old, "new_value": value})
            return d
        if kind == "get-storageschema":
            metric = _text(_field(request, "metric"), "metric")
            if self.rules is None:
                raise QueryError("cannot answer get-storageschema: no storage rules loaded")
            policy = self.rules.policy_for(metric)
            return {
                "archives": [tuple(archive) for archive in policy.archives],
                "xFilesFactor": policy.x_files_factor,
                "aggregationMethod": policy.aggregation_method,
            }
        return {"error": f'Invalid request type "{kind}"'}

    def _metadata(self) -> WhisperMetadata:
        if self.metadata is None:
            raise QueryError("cannot answer metadata requests: no whisper store attached")
        return self.metadata

    @staticmethod
    def _failed(failure: Failure) -> dict:
        error = failure.value
        if isinstance(error, QueryError):
            return {"error": str(error)}
        log.warning("cache query failed: %s: %s", type(error).__name__, error)
        return {"error": f"{type(error).__name__}: {error}"}


class CacheQueryProtocol(Int32StringReceiver):
    """One CarbonLink connection; answers go out in the order requests came in."""

    MAX_LENGTH = MAX_REQUEST_BYTES

    def connectionMade(self) -> None:  # noqa: N802 (Twisted's name)
        peer = self.transport.getPeer()
        self.peer = f"{getattr(peer, 'host', '?')}:{getattr(peer, 'port', '?')}"
        self._answers: defer.Deferred = defer.succeed(None)

    def stringReceived(self, data: bytes) -> None:  # noqa: N802
        handler: CacheQueryHandler = self.factory.handler
        try:
            request = loads(data, max_bytes=self.MAX_LENGTH)
        except RefusedPickle as exc:
            log.warning("refused cache query from %s: %s", self.peer, exc)
            self.factory.stats.increment("rejected.bad_pickle")
            answer = {"error": str(exc)}
            self._answers.addCallback(lambda _: self._send(answer))
            return
        self._answers.addCallback(lambda _: handler.answer(request, self.peer))
        self._answers.addCallback(self._send)
        self._answers.addErrback(self._send_failed)

    def lengthLimitExceeded(self, length: int) -> None:  # noqa: N802
        log.warning("cache query from %s: %d-byte frame over the %d-byte limit; closing",
                    self.peer, length, self.MAX_LENGTH)
        self.factory.stats.increment("rejected.frame_too_large")
        self.transport.loseConnection()

    def _send_failed(self, failure: Failure) -> None:
        log.error("cannot answer cache query from %s: %s", self.peer, failure.getErrorMessage())
        self.transport.loseConnection()

    def _send(self, result: dict) -> None:
        if self.transport is not None and self.connected:
            self.sendString(pickle.dumps(result, protocol=2))


class CacheQueryFactory(ServerFactory):
    protocol = CacheQueryProtocol

    def __init__(self, handler: CacheQueryHandler) -> None:
        self.handler = handler
        self.stats = handler.stats
