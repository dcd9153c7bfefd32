"""The persister: drains the cache into whisper files off the reactor thread.

The reactor thread chooses metrics (the cache's drain strategy) and pops the
points of up to ``batch_metrics`` of them in one call, then hands the batch to
one dedicated writer thread. It pops the next batch while one is being written
(``MAX_BATCHES_IN_FLIGHT``; metrics in flight are passed over), so the writer
thread never waits for the reactor between batches. The writer thread maps names
to paths (``storage.paths.locate_metric``, once per metric id and remembered) and writes
each metric's points in one ``WhisperStore.write`` call. A file the path check found
missing is created from the storage rules before its first write; a write that finds
no file (removed since) creates it and writes again (no stat per write).
Points reaching an empty cache wake the loop at once instead of at its next
idle tick. The outcome comes back to the reactor thread, which confirms the
points in the cache, so queries see them the whole time.

Carbon's rate limits are token buckets on the injected clock:
``MAX_UPDATES_PER_SECOND`` (one token per metric written) and
``MAX_CREATES_PER_MINUTE`` (one per new file; without a token the metric's
points are dropped and counted as ``droppedCreates``, as carbon does). At
shutdown ``MAX_UPDATES_PER_SECOND_ON_SHUTDOWN`` replaces both rates, or, when
unset, the final flush runs unlimited so stopping never loses points.

A write error is logged and counted; the points are put back once for one
retry and dropped if that fails too, so a broken file cannot wedge the writer.

Tagged series (``name;tag=value``) are entered in the tag index
(``storage.tagindex.TagIndex``) before their file is created, as carbon
tags a series in graphite-web's TagDB when it first sees it: their files are
named by a hash, so the index is the only way ``seriesByTag`` finds them. A
name the index refuses or a database error is logged and the points are
written all the same.
"""
from __future__ import annotations

import logging
import math
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.task import LoopingCall

from render.tagquery import TagQueryError
from storage.paths import InvalidMetricName, locate_metric

log = logging.getLogger(__name__)

DEFAULT_BATCH_METRICS = 500
MAX_BATCHES_IN_FLIGHT = 2  # one being written, the next one waiting for the writer thread
IDLE_INTERVAL = 0.1
DEFAULT_REMEMBERED_PATHS = 1 << 18


class TokenBucket:
    """``capacity`` tokens, refilled at ``fill_rate`` per second of the given clock.

    An infinite rate means no limit. Thread-safe: the create bucket is used
    from the writer thread while the reactor may change its rate at shutdown.
    """

    def __init__(self, capacity: float, fill_rate: float, now: Callable[[], float]) -> None:
        self.now = now
        self._lock = threading.Lock()
        self._set(capacity, fill_rate)

    def _set(self, capacity: float, fill_rate: float) -> None:
        self.capacity = float(capacity)
        self.fill_rate = float(fill_rate)
        self._tokens = self.capacity
        self._stamp = self.now()

    @property
    def unlimited(self) -> bool:
        return math.isinf(self.capacity) or math.isinf(self.fill_rate)

    def _refill(self) -> None:
        now = self.now()
        if self._tokens < self.capacity:
            self._tokens = min(self.capacity, self._tokens + self.fill_rate * (now - self._stamp))
        self._stamp = now

    def available(self) -> float:
        if self.unlimited:
            return math.inf
        with self._lock:
            self._refill()
            return self._tokens

    def take(self, count: float = 1) -> bool:
        """Take ``count`` tokens if the bucket holds them; never blocks."""
        if self.unlimited:
            return True
        with self._lock:
            self._refill()
            if count <= self._tokens:
                self._tokens -= count
                return True
            return False

    def give_back(self, count: float) -> None:
        if self.unlimited:
            return
        with self._lock:
            self._tokens = min(self.capacity, self._tokens + count)

    def seconds_until(self, count: float = 1) -> float:
        """How long until ``count`` tokens are there (0 if they already are)."""
        if self.unlimited:
            return 0.0
        with self._lock:
            self._refill()
            missing = count - self._tokens
            return 0.0 if missing <= 0 else missing / self.fill_rate

    def set_rate(self, capacity: float, fill_rate: float) -> None:
        with self._lock:
            self._set(capacity, fill_rate)


def update_bucket(per_second: float, now: Callable[[], float]) -> TokenBucket:
    """MAX_UPDATES_PER_SECOND; a fractional rate still holds one whole token at a time."""
    return TokenBucket(max(per_second, 1.0), per_second, now)


def create_bucket(per_minute: float, now: Callable[[], float]) -> TokenBucket:
    """MAX_CREATES_PER_MINUTE; 0 creates no files at all, as in carbon."""
    capacity = max(per_minute, 1.0) if per_minute > 0 else 0.0
    return TokenBucket(capacity, per_minute / 60.0, now)


@dataclass(frozen=True)
class WriterSettings:
    """The carbon.conf values the writer acts on."""

    data_dir: Path
    max_updates_per_second: float = 500.0
    max_creates_per_minute: float = math.inf
    max_updates_per_second_on_shutdown: float | None = None
    batch_metrics: int = DEFAULT_BATCH_METRICS
    idle_interval: float = IDLE_INTERVAL
    max_remembered_paths: int = DEFAULT_REMEMBERED_PATHS
    log_updates: bool = False
    log_creates: bool = False

    @classmethod
    def from_config(cls, config: Any) -> WriterSettings:
        """From a CarbonConfig."""
        return cls(
            data_dir=Path(config.local_data_dir),
            max_updates_per_second=config.max_updates_per_second,
            max_creates_per_minute=config.max_creates_per_minute,
            max_updates_per_second_on_shutdown=config.max_updates_per_second_on_shutdown,
            log_updates=config.log_updates,
            log_creates=config.log_creates,
        )


@dataclass(frozen=True)
class Batch:
    """Popped points of many metrics on their way to disk: metric ``ids[k]`` (named
    ``names[k]``) owns ``timestamps[offsets[k]:offsets[k + 1]]`` and the same of ``values``."""

    ids: np.ndarray
    names: list[str]
    offsets: np.ndarray
    timestamps: np.ndarray
    values: np.ndarray
    now: int


@dataclass(frozen=True)
class Outcome:
    """What happened to one metric that was not simply written: ``kind`` is
    dropped_create, bad_name or error."""

    metric_id: int
    name: str
    kind: str
    created: bool = False
    detail: str = ""


@dataclass(frozen=True)
class BatchOutcome:
    """A batch's result: the ids written (with their points and seconds) and the rest."""

    written: np.ndarray
    points: int
    seconds: list[float]
    creates: int
    others: list[Outcome]


class Writer:
    """Drains ``cache`` through ``store`` (a WhisperStore) under carbon's rate limits.

    ``clock`` is an IReactorTime (the reactor, or ``task.Clock`` in tests);
    ``run_blocking(fn, *args) -> Deferred`` runs ``fn`` on the writer thread
    (``defer.maybeDeferred`` in tests runs it inline). ``tag_index`` (a
    TagIndex, optional) learns every tagged series whose file is created.
    """

    def __init__(
        self,
        cache: Any,
        index: Any,
        store: Any,
        rules: Any,
        settings: WriterSettings,
        clock: Any,
        run_blocking: Callable[..., defer.Deferred],
        stats: Any,
        reject: Callable[[str, bytes, str], None],
        tag_index: Any = None,
    ) -> None:
        self.cache = cache
        self.tag_index = tag_index
        self.index = index
        self.store = store
        self.rules = rules
        self.settings = settings
        self.clock = clock
        self.run_blocking = run_blocking
        self.stats = stats
        self.reject = reject
        self.updates = update_bucket(settings.max_updates_per_second, clock.seconds)
        self.creates = create_bucket(settings.max_creates_per_minute, clock.seconds)
        self.in_flight = 0  # batches handed to the writer thread and not yet applied
        self.running = False
        self.flushing = False
        self._retried: set[int] = set()
        self._paths: dict[int, str] = {}  # writer thread only
        self._known_dirs: set[str] = set()  # folders the path checks saw (writer thread only)
        self._next_call: Any = None
        self._flushed: list[defer.Deferred] = []

    # --- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        self.running = True
        if self._points_arrived not in self.cache.arrival_listeners:
            self.cache.arrival_listeners.append(self._points_arrived)
        self._schedule(0)

    def flush(self) -> defer.Deferred:
        """Write everything cached, in shutdown mode; fires when the cache is empty."""
        self.running = True
        if not self.flushing:
            self.flushing = True
            self._enter_shutdown_rates()
        done: defer.Deferred = defer.Deferred()
        self._flushed.append(done)
        self._schedule(0)
        return done

    def stop(self) -> None:
        """Stop scheduling work (after a flush, or when abandoning the cache)."""
        self.running = False
        if self._next_call is not None and self._next_call.active():
            self._next_call.cancel()
        self._next_call = None

    def _enter_shutdown_rates(self) -> None:
        rate = self.settings.max_updates_per_second_on_shutdown
        limit = math.inf if rate is None else rate
        self.updates.set_rate(limit, limit)
        self.creates.set_rate(limit, limit)
        strategy = self.cache.strategy
        if hasattr(strategy, "min_lag"):
            strategy.min_lag = 0
        log.info(
            "shutting down: flushing %d cached points of %d metrics (update rate %s)",
            self.cache.size, len(self.cache), "unlimited" if rate is None else rate,
        )

    def _schedule(self, delay: float) -> None:
        if not self.running:
            return
        if self._next_call is not None and self._next_call.active():
            if delay >= self._next_call.getTime() - self.clock.seconds():
                return
            self._next_call.cancel()
        self._next_call = self.clock.callLater(delay, self._tick)

    # --- the loop (reactor thread) -----------------------------------------------

    def _tick(self) -> None:
        self._next_call = None
        if self.in_flight >= MAX_BATCHES_IN_FLIGHT or not self.running:
            return
        if self.flushing and not self.cache and not self.cache.inflight_metrics:
            self._finish_flush()
            return
        allowed = self.updates.available()
        if allowed < 1:
            self._schedule(self.updates.seconds_until(1))
            return
        batch = self._take(int(min(allowed, self.settings.batch_metrics)))
        if batch is None:
            if not self.in_flight:  # otherwise the batch in flight reschedules when it is over
                self._schedule(0 if self.flushing and self.cache else self.settings.idle_interval)
            return
        self.updates.take(len(batch.ids))
        self.in_flight += 1
        d = self.run_blocking(self._write_batch, batch)
        d.addCallback(self._apply)
        d.addErrback(self._batch_failed, batch)
        d.addBoth(self._batch_over)
        if self.in_flight < MAX_BATCHES_IN_FLIGHT:
            self._schedule(0)  # take the next batch while this one is written

    def _take(self, limit: int) -> Batch | None:
        ids, offsets, timestamps, values = self.cache.pop_many(limit)
        if not len(ids):
            return None
        name = self.index.name
        return Batch(ids, [name(metric_id) for metric_id in ids.tolist()], offsets, timestamps,
                     values, int(self.clock.seconds()))

    def _points_arrived(self) -> None:
        """The cache went from empty to holding points: write now instead of at the next idle tick."""
        if self.running and self.in_flight < MAX_BATCHES_IN_FLIGHT:
            self._schedule(0)

    def _batch_over(self, _: Any) -> None:
        self.in_flight -= 1
        self._schedule(0)

    def _finish_flush(self) -> None:
        waiting, self._flushed = self._flushed, []
        log.info("cache flushed")
        for d in waiting:
            d.callback(None)

    # --- the writer thread ---------------------------------------------------------

    def _write_batch(self, batch: Batch) -> BatchOutcome:
        written: list[int] = []
        seconds: list[float] = []
        others: list[Outcome] = []
        points = creates = 0
        bounds = batch.offsets.tolist()
        log_updates = self.settings.log_updates
        clock = time.perf_counter
        for k, (metric_id, name) in enumerate(zip(batch.ids.tolist(), batch.names, strict=True)):
            path = self._paths.get(metric_id)
            missing = False
            if path is None:
                try:
                    path, missing = self._path_for(metric_id, name)
                except InvalidMetricName as exc:
                    others.append(Outcome(metric_id, name, "bad_name", detail=str(exc)))
                    continue
            created = False
            timestamps = batch.timestamps[bounds[k]:bounds[k + 1]]
            values = batch.values[bounds[k]:bounds[k + 1]]
            try:
                if not missing:
                    started = clock()
                    try:
                        count = self.store.write(path, timestamps, values, now=batch.now)
                    except FileNotFoundError:  # removed since (the write found none: no stat first)
                        missing = True
                if missing:
                    if not self.creates.take(1):
                        others.append(Outcome(metric_id, name, "dropped_create"))
                        continue
                    self._create(path, name)
                    created = True
                    creates += 1
                    started = clock()
                    count = self.store.write(path, timestamps, values, now=batch.now)
                elapsed = clock() - started
            except Exception as exc:  # one metric's failure must not stop the writer
                others.append(Outcome(metric_id, name, "error", created=created,
                                      detail=f"{type(exc).__name__}: {exc}"))
                continue
            written.append(metric_id)
            seconds.append(elapsed)
            points += count
            if log_updates:
                log.info("wrote %d datapoints for %s in %.5f seconds", count, name, elapsed)
        return BatchOutcome(np.array(written, dtype=np.int64), int(points), seconds, creates, others)

    def _path_for(self, metric_id: int, name: str) -> tuple[str, bool]:
        """locate_metric, the path remembered per id (a name's checks and path never change)."""
        if len(self._known_dirs) >= self.settings.max_remembered_paths:
            self._known_dirs.clear()
        path, missing = locate_metric(self.settings.data_dir, name, self._known_dirs)
        if len(self._paths) >= self.settings.max_remembered_paths:
            self._paths.clear()
        self._paths[metric_id] = path
        return path, missing

    def _create(self, path: str, name: str) -> None:
        self._index_tags(name)
        policy = self.rules.policy_for(name)
        self.store.create(path, policy.archives, policy.x_files_factor, policy.aggregation_method)
        if self.settings.log_creates:
            log.info("created %s (archives=%s xff=%s agg=%s)", path, policy.archives,
                     policy.x_files_factor, policy.aggregation_method)

    def _index_tags(self, name: str) -> None:
        if self.tag_index is None:
            return
        try:
            self.tag_index.index_tagged_metric(name)
        except (TagQueryError, sqlite3.Error) as exc:
            log.warning("cannot index tags of metric=%s: %s (writing it untagged)", name, exc)

    def close(self) -> None:
        """Close the store and the tag index (from the writer thread: their handles are its own)."""
        try:
            self.store.close()
        finally:
            if self.tag_index is not None:
                self.tag_index.close()

    # --- back on the reactor thread --------------------------------------------------

    def _apply(self, outcome: BatchOutcome) -> None:
        if len(outcome.written):
            if self._retried:
                self._retried.difference_update(outcome.written.tolist())
            self.cache.confirm_many(outcome.written)
            self.stats.increment("committedPoints", outcome.points)
            self.stats.extend("updateTimes", outcome.seconds)
        if outcome.creates:
            self.stats.increment("creates", outcome.creates)
        for other in outcome.others:
            if other.created:
                self.stats.increment("creates")
            if other.kind == "dropped_create":
                self.cache.confirm(other.metric_id)
                self.stats.increment("droppedCreates")
                self.updates.give_back(1)
            elif other.kind == "bad_name":
                self.cache.confirm(other.metric_id)
                self.updates.give_back(1)
                self.reject("bad_name", other.name.encode("utf-8", "replace"), "writer")
                log.warning("dropped points of %s", other.detail)
            else:
                self._failed(other.metric_id, other.name, other.detail)

    def _failed(self, metric_id: int, name: str, detail: str) -> None:
        self.stats.increment("errors")
        if metric_id in self._retried:
            self._retried.discard(metric_id)
            self.cache.confirm(metric_id)
            log.error("cannot write metric=%s: %s (second failure; points dropped)", name, detail)
        else:
            self._retried.add(metric_id)
            self.cache.restore(metric_id)
            log.error("cannot write metric=%s: %s (points kept for one retry)", name, detail)

    def _batch_failed(self, failure: Any, batch: Batch) -> None:
        """The batch itself blew up (not one metric): treat every metric still in flight as failed."""
        log.error("writer batch failed: %s", failure.getTraceback())
        for metric_id, name in zip(batch.ids.tolist(), batch.names, strict=True):
            if self.cache.is_inflight(metric_id):
                self._failed(metric_id, name, failure.getErrorMessage())

    # --- work that must not race with writes -------------------------------------------

    def run_exclusive(self, fn: Callable[..., Any], *args: Any) -> defer.Deferred:
        """Run ``fn`` on the writer thread, between batches (metadata reads and changes)."""
        return self.run_blocking(fn, *args)


class ReloadingRules:
    """storage-schemas.conf + storage-aggregation.conf, re-read when either file changes.

    Carbon re-reads them every 60 seconds; a file that fails to load keeps the
    previous rules in force (logged), as carbon does.
    """

    def __init__(
        self,
        schemas_path: Path | None,
        aggregation_path: Path | None,
        load: Callable[[Path | None, Path | None], Any],
    ) -> None:
        """``load`` is ``StorageRules.load``; it raises on a file carbon would refuse."""
        self.schemas_path = schemas_path
        self.aggregation_path = aggregation_path
        self.load = load
        self._stamp = self._mtimes()
        self.current = load(schemas_path, aggregation_path)
        self._log_warnings()

    def _mtimes(self) -> tuple[float | None, float | None]:
        def mtime(path: Path | None) -> float | None:
            try:
                return path.stat().st_mtime if path is not None else None
            except OSError:
                return None

        return (mtime(self.schemas_path), mtime(self.aggregation_path))

    def _log_warnings(self) -> None:
        for warning in getattr(self.current, "warnings", ()):
            log.warning("%s", warning)

    def reload_if_changed(self) -> bool:
        stamp = self._mtimes()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            self.current = self.load(self.schemas_path, self.aggregation_path)
        except (OSError, ValueError) as exc:
            log.error("cannot reload storage rules: %s (keeping the previous rules)", exc)
            return False
        log.info("reloaded storage rules from %s and %s", self.schemas_path, self.aggregation_path)
        self._log_warnings()
        return True

    def policy_for(self, metric: str) -> Any:
        return self.current.policy_for(metric)


class WriterService(Service):
    """Starts the writer thread and loop; on stop flushes the cache, then closes the store."""

    def __init__(
        self,
        writer: Writer,
        clock: Any,
        threadpool: Any = None,
        rules: ReloadingRules | None = None,
        rules_interval: float = 60.0,
    ) -> None:
        self.writer = writer
        self.threadpool = threadpool
        self.rules = rules
        self.reload = LoopingCall(self._reload_rules)
        self.reload.clock = clock
        self.rules_interval = rules_interval

    def _reload_rules(self) -> None:
        if self.rules is not None:
            self.rules.reload_if_changed()

    def startService(self) -> None:  # noqa: N802 (Twisted's name)
        super().startService()
        if self.threadpool is not None:
            self.threadpool.start()
        self.writer.start()
        if self.rules is not None:
            self.reload.start(self.rules_interval, now=False)

    def stopService(self) -> defer.Deferred:  # noqa: N802
        super().stopService()
        if self.reload.running:
            self.reload.stop()
        d = self.writer.flush()
        d.addCallback(lambda _: self.writer.run_exclusive(self.writer.close))
        d.addErrback(lambda failure: log.error("cannot close the store: %s", failure.getErrorMessage()))
        d.addBoth(self._stopped)
        return d

    def _stopped(self, _: Any) -> None:
        self.writer.stop()
        if self.threadpool is not None:
            self.threadpool.stop()
