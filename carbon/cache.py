"""The write-back cache between the receivers and the whisper writer.

Points are buffered per metric id in growable numpy arrays (one ``(n, 2)``
float64 block per metric: timestamp, value), never as Python objects per
point. Carbon's rules apply: a repeated timestamp is overwritten by the later
point (resolved when points are read or written), ``MAX_CACHE_SIZE`` bounds
the points held (the excess is refused and counted as overflow), and a full
cache pauses the receivers until it drains below the low watermark.

Unlike carbon, points handed to the writer stay visible to cache queries
until the writer confirms them (``pop`` → ``confirm``), so a graphite-web
query never falls into the gap between cache and disk; ``restore`` puts them
back if a write fails.

All methods run on the reactor thread; the writer thread only ever sees the
arrays ``pop`` hands it.
"""
from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from carbon.filters import MetricFilter

log = logging.getLogger(__name__)

INITIAL_CAPACITY = 4


class _Buffer:
    """Arrival-ordered points of one metric: ``block[:n]`` rows of (timestamp, value).

    ``increasing`` stays True while every point came later in time than the one
    before, the common case, in which the rows hold no repeated timestamp and
    need no sorting.
    """

    __slots__ = ("block", "n", "increasing")

    def __init__(self, capacity: int = INITIAL_CAPACITY) -> None:
        self.block = np.empty((capacity, 2), dtype=np.float64)
        self.n = 0
        self.increasing = True

    def _grow(self, needed: int) -> None:
        grown = np.empty((max(needed, 2 * len(self.block)), 2), dtype=np.float64)
        grown[: self.n] = self.block[: self.n]
        self.block = grown

    def extend(self, timestamps: np.ndarray, values: np.ndarray) -> None:
        count = len(timestamps)
        if count == 0:
            return
        end = self.n + count
        if end > len(self.block):
            self._grow(end)
        if self.increasing and (
            (self.n and timestamps[0] <= self.block[self.n - 1, 0])
            or (count > 1 and not bool(np.all(timestamps[1:] > timestamps[:-1])))
        ):
            self.increasing = False
        self.block[self.n : end, 0] = timestamps
        self.block[self.n : end, 1] = values
        self.n = end

    def append(self, timestamp: float, value: float) -> None:
        if self.n == len(self.block):
            self._grow(self.n + 1)
        if self.n and timestamp <= self.block[self.n - 1, 0]:
            self.increasing = False
        self.block[self.n, 0] = timestamp
        self.block[self.n, 1] = value
        self.n += 1

    def rows(self) -> np.ndarray:
        return self.block[: self.n]

    def distinct_count(self) -> int:
        """Points with distinct timestamps: what carbon's per-metric dict would hold."""
        if self.increasing:
            return self.n
        return len(np.unique(self.block[: self.n, 0]))

    def earliest(self) -> float:
        if self.increasing:
            return float(self.block[0, 0])
        return float(self.block[: self.n, 0].min())


def last_wins(rows: np.ndarray) -> np.ndarray:
    """Rows with one entry per timestamp, the latest-arrived value kept, sorted by timestamp."""
    if len(rows) < 2:
        return rows
    reversed_rows = rows[::-1]
    _, first_in_reversed = np.unique(reversed_rows[:, 0], return_index=True)
    return reversed_rows[first_in_reversed]


# --- drain strategies: the order in which the writer takes metrics -------------


class DrainStrategy(Protocol):
    def choose(self, cache: MetricCache) -> int | None:
        """The id of the next metric to write, or None when there is nothing to take now."""


class SortedStrategy:
    """Carbon's default: snapshot point counts, take the largest first, each metric once a pass.

    Ties go to the metric that entered the cache last (carbon sorts the counts
    stably, ascending, and pops from the end of the list).
    """

    def __init__(self) -> None:
        self._queue: list[int] = []

    def choose(self, cache: MetricCache) -> int | None:
        while True:
            while self._queue:
                metric_id = self._queue.pop()
                if cache.has_pending(metric_id):
                    return metric_id
            counts = cache.counts()
            if not counts:
                return None
            counts.sort(key=lambda item: item[1])
            self._queue = [metric_id for metric_id, _ in counts]


class MaxStrategy:
    """Always the metric holding the most points (the first such in cache order)."""

    def choose(self, cache: MetricCache) -> int | None:
        counts = cache.counts()
        if not counts:
            return None
        return max(counts, key=lambda item: item[1])[0]


class NaiveStrategy:
    """Snapshot the cache's metrics and take them from the end of the snapshot, as carbon does."""

    def __init__(self) -> None:
        self._queue: list[int] = []

    def choose(self, cache: MetricCache) -> int | None:
        while True:
            while self._queue:
                metric_id = self._queue.pop()
                if cache.has_pending(metric_id):
                    return metric_id
            self._queue = cache.pending_ids()
            if not self._queue:
                return None


class TimeSortedStrategy:
    """Oldest first: metrics ordered by their earliest cached timestamp, once a pass.

    ``min_lag`` (carbon's MIN_TIMESTAMP_LAG) leaves metrics whose earliest
    point is that recent for a later pass; a pass that finds nothing old
    enough yields None once so the writer can rest.
    """

    def __init__(self, min_lag: float = 0, now: Callable[[], float] = time.time) -> None:
        self.min_lag = min_lag
        self.now = now
        self._queue: list[int] = []

    def choose(self, cache: MetricCache) -> int | None:
        while self._queue:
            metric_id = self._queue.pop()
            if cache.has_pending(metric_id):
                return metric_id
        marks = cache.earliest_timestamps()
        marks.sort(key=lambda item: item[1], reverse=True)
        if self.min_lag:
            now = self.now()
            marks = [item for item in marks if now - item[1] > self.min_lag]
        self._queue = [metric_id for metric_id, _ in marks]
        if not self._queue:
            return None
        return self._queue.pop()


def make_strategy(
    name: str, min_timestamp_lag: float = 0, now: Callable[[], float] = time.time
) -> DrainStrategy:
    """The strategy named by CACHE_WRITE_STRATEGY."""
    if name == "sorted":
        return SortedStrategy()
    if name == "max":
        return MaxStrategy()
    if name == "naive":
        return NaiveStrategy()
    if name == "timesorted":
        return TimeSortedStrategy(min_timestamp_lag, now)
    raise ValueError(f"cannot use CACHE_WRITE_STRATEGY={name!r}: expected sorted, max, naive or timesorted")


class MetricCache:
    """Per-metric point buffers with carbon's size limit and drain strategies."""

    def __init__(
        self,
        strategy: DrainStrategy | None = None,
        max_size: float = math.inf,
        low_watermark: float | None = None,
    ) -> None:
        self.strategy: DrainStrategy = strategy if strategy is not None else SortedStrategy()
        self.max_size = max_size
        self.low_watermark = max_size * 0.95 if low_watermark is None else low_watermark
        self._pending: dict[int, _Buffer] = {}
        self._inflight: dict[int, np.ndarray] = {}
        self.pending_points = 0
        self.inflight_points = 0
        self.too_full = False
        self.space_listeners: list[Callable[[], None]] = []

    # --- sizes -----------------------------------------------------------------

    @property
    def size(self) -> int:
        """Points held, including those the writer has taken but not yet confirmed."""
        return self.pending_points + self.inflight_points

    @property
    def is_full(self) -> bool:
        return self.size >= self.max_size

    def __len__(self) -> int:
        """Metrics waiting to be written (carbon's ``cache.queues``)."""
        return len(self._pending)

    def __bool__(self) -> bool:
        return bool(self._pending)

    def has_pending(self, metric_id: int) -> bool:
        return metric_id in self._pending

    def pending_ids(self) -> list[int]:
        return list(self._pending)

    def inflight_ids(self) -> list[int]:
        return list(self._inflight)

    def counts(self) -> list[tuple[int, int]]:
        """(metric id, distinct timestamps waiting) in cache order, as carbon counts them."""
        return [(metric_id, buf.distinct_count()) for metric_id, buf in self._pending.items()]

    def earliest_timestamps(self) -> list[tuple[int, float]]:
        """(metric id, earliest waiting timestamp) in cache order."""
        return [(metric_id, buf.earliest()) for metric_id, buf in self._pending.items()]

    # --- storing ---------------------------------------------------------------

    def store(self, metric_id: int, timestamp: float, value: float) -> bool:
        """Cache one point; False when the cache is full and the point was refused."""
        if self.is_full:
            self._mark_full()
            return False
        buf = self._pending.get(metric_id)
        if buf is None:
            buf = self._pending[metric_id] = _Buffer()
        buf.append(timestamp, value)
        self.pending_points += 1
        return True

    def store_many(self, ids: np.ndarray, timestamps: np.ndarray, values: np.ndarray) -> int:
        """Cache points in arrival order; returns how many were refused because the cache is full.

        When the batch does not fit, its first points are kept and the rest refused.
        """
        count = len(ids)
        if count == 0:
            return 0
        room = self.max_size - self.size
        refused = 0
        if room < count:
            kept = max(int(room), 0)
            refused = count - kept
            ids, timestamps, values = ids[:kept], timestamps[:kept], values[:kept]
            count = kept
            self._mark_full()
            if count == 0:
                return refused
        if count == 1:
            self._buffer_for(int(ids[0])).append(float(timestamps[0]), float(values[0]))
        else:
            order = np.argsort(ids, kind="stable")
            sorted_ids = ids[order]
            starts = np.flatnonzero(np.diff(sorted_ids)) + 1
            bounds = np.concatenate(([0], starts, [count]))
            ts_sorted = timestamps[order]
            values_sorted = values[order]
            # Metrics enter the cache in order of their first point in this batch.
            first_seen = order[bounds[:-1]]
            starts_list = bounds.tolist()
            ids_list = sorted_ids.tolist()
            ts_list = ts_sorted.tolist()
            values_list = values_sorted.tolist()
            for group in np.argsort(first_seen, kind="stable").tolist():
                lo, hi = starts_list[group], starts_list[group + 1]
                buf = self._buffer_for(ids_list[lo])
                if hi - lo == 1:  # the common case: one point per metric per batch
                    buf.append(ts_list[lo], values_list[lo])
                else:
                    buf.extend(ts_sorted[lo:hi], values_sorted[lo:hi])
        self.pending_points += count
        if self.is_full:
            self._mark_full()
        return refused

    def _buffer_for(self, metric_id: int) -> _Buffer:
        buf = self._pending.get(metric_id)
        if buf is None:
            buf = self._pending[metric_id] = _Buffer()
        return buf

    def _mark_full(self) -> None:
        if not self.too_full:
            self.too_full = True
            log.warning("cache is full (%d points, MAX_CACHE_SIZE %s)", self.size, self.max_size)

    def _check_space(self) -> None:
        if self.too_full and self.size < self.low_watermark:
            self.too_full = False
            log.info("cache below its low watermark (%d points); receiving again", self.size)
            for listener in list(self.space_listeners):
                listener()

    # --- reading ---------------------------------------------------------------

    def points(self, metric_id: int) -> np.ndarray:
        """Every cached point of a metric, written or not: rows (timestamp, value), last wins."""
        buf = self._pending.get(metric_id)
        flying = self._inflight.get(metric_id)
        if flying is None:
            if buf is None:
                return np.empty((0, 2))
            if buf.increasing:
                return buf.rows().copy()
            rows = buf.rows()
        elif buf is None:
            rows = flying
        else:
            rows = np.concatenate((flying, buf.rows()))
        return last_wins(rows)

    def datapoints(self, metric_id: int) -> list[tuple[float, float]]:
        """:meth:`points` as the (timestamp, value) tuples carbon's cache query returns."""
        rows = self.points(metric_id)
        return list(zip(rows[:, 0].tolist(), rows[:, 1].tolist(), strict=True))

    # --- draining --------------------------------------------------------------

    def choose(self) -> int | None:
        """The next metric to write according to the drain strategy, or None."""
        if not self._pending:
            return None
        return self.strategy.choose(self)

    def pop(self, metric_id: int) -> tuple[np.ndarray, np.ndarray]:
        """Hand a metric's waiting points to the writer: (timestamps, values) in arrival order.

        The points stay visible to :meth:`points` until :meth:`confirm` or
        :meth:`restore`. One batch per metric may be in flight at a time.
        """
        if metric_id in self._inflight:
            raise RuntimeError(f"cannot pop metric id={metric_id}: a batch is already in flight")
        buf = self._pending.pop(metric_id)
        rows = buf.rows()
        self._inflight[metric_id] = rows
        self.pending_points -= len(rows)
        self.inflight_points += len(rows)
        return np.ascontiguousarray(rows[:, 0]), np.ascontiguousarray(rows[:, 1])

    def confirm(self, metric_id: int) -> None:
        """The writer is done with the popped points (written, or given up on): forget them."""
        rows = self._inflight.pop(metric_id, None)
        if rows is not None:
            self.inflight_points -= len(rows)
            self._check_space()

    def restore(self, metric_id: int) -> None:
        """Put popped points back ahead of any that arrived since (a failed write to retry)."""
        rows = self._inflight.pop(metric_id, None)
        if rows is None:
            return
        self.inflight_points -= len(rows)
        newer = self._pending.pop(metric_id, None)
        buf = _Buffer(len(rows) + (newer.n if newer is not None else 0))
        buf.extend(rows[:, 0], rows[:, 1])
        if newer is not None:
            buf.extend(newer.rows()[:, 0], newer.rows()[:, 1])
        self._pending[metric_id] = buf
        self.pending_points += len(rows)


class Stats(Protocol):
    def increment(self, name: str, amount: float = 1) -> None: ...


class Producer(Protocol):
    def pauseProducing(self) -> None: ...  # noqa: N802 (Twisted's interface)

    def resumeProducing(self) -> None: ...  # noqa: N802


class RejectLog:
    """Logs refused input without letting a hostile client flood the log.

    At most ``burst`` lines per reason per ``period`` seconds; the rest are
    only counted, and the count is reported with the next line logged.
    """

    def __init__(self, period: float = 10.0, burst: int = 5, now: Callable[[], float] = time.monotonic) -> None:
        self.period = period
        self.burst = burst
        self.now = now
        self._windows: dict[str, tuple[float, int, int]] = {}

    def __call__(self, reason: str, sample: bytes, peer: str) -> None:
        now = self.now()
        start, logged, silenced = self._windows.get(reason, (now, 0, 0))
        if now - start >= self.period:
            start, logged = now, 0
        if logged >= self.burst:
            self._windows[reason] = (start, logged, silenced + 1)
            return
        shown = sample[:200] + (b"..." if len(sample) > 200 else b"")
        extra = f" ({silenced} more not logged)" if silenced else ""
        log.info("refused input from %s: %s %r%s", peer, reason, shown, extra)
        self._windows[reason] = (start, logged + 1, 0)


class Sink:
    """What the receivers hand their points to: filters, counts, flow control, then the cache.

    Implements the protocols' sink interface (``accept``, ``reject``,
    ``register_producer``, ``unregister_producer``).
    """

    def __init__(
        self,
        cache: MetricCache,
        names: Any,
        stats: Stats,
        metric_filter: MetricFilter | None = None,
        min_timestamp_resolution: int = 0,
        use_flow_control: bool = True,
        reject_log: Callable[[str, bytes, str], None] | None = None,
    ) -> None:
        """``names`` is the MetricIndex the parsers intern into (``.name(id)``)."""
        self.cache = cache
        self.names = names
        self.stats = stats
        self.metric_filter = metric_filter
        self.resolution = min_timestamp_resolution
        self.use_flow_control = use_flow_control
        self.reject_log = reject_log if reject_log is not None else RejectLog()
        self.producers: set[Producer] = set()
        self.paused = False
        self.closed = False
        self._verdicts: dict[int, str | None] = {}
        self._verdict_generation: object = None
        cache.space_listeners.append(self._space_available)

    # --- the protocols' interface ---------------------------------------------

    def accept(self, points: Any, peer: str) -> None:
        """Take a parsed batch (``ids``, ``timestamps``, ``values``, ``rejects``)."""
        for rejected in points.rejects:
            self.reject(rejected.reason, rejected.sample, peer)
        ids = np.asarray(points.ids, dtype=np.int64)
        if len(ids) == 0:
            return
        timestamps = np.asarray(points.timestamps, dtype=np.float64)
        values = np.asarray(points.values, dtype=np.float64)
        nan = np.isnan(values)
        if nan.any():
            self.stats.increment("rejected.nan_value", int(nan.sum()))
            keep = ~nan
            ids, timestamps, values = ids[keep], timestamps[keep], values[keep]
        if self.metric_filter is not None:
            ids, timestamps, values = self._filtered(ids, timestamps, values)
        if len(ids) == 0:
            return
        if self.resolution:
            timestamps = np.floor(timestamps / self.resolution) * self.resolution
        self.stats.increment("metricsReceived", len(ids))
        refused = self.cache.store_many(ids, timestamps, values)
        if refused:
            self.stats.increment("cache.overflow", refused)
        if self.cache.too_full and self.use_flow_control:
            self._pause_all()

    def reject(self, reason: str, sample: bytes, peer: str) -> None:
        self.stats.increment(f"rejected.{reason}")
        self.reject_log(reason, sample, peer)

    def register_producer(self, transport: Producer) -> None:
        self.producers.add(transport)
        if self.paused or self.closed:
            transport.pauseProducing()

    def unregister_producer(self, transport: Producer) -> None:
        self.producers.discard(transport)

    # --- internals ---------------------------------------------------------------

    def _filtered(
        self, ids: np.ndarray, timestamps: np.ndarray, values: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        assert self.metric_filter is not None
        generation = self.metric_filter.generation
        if generation != self._verdict_generation:
            self._verdicts.clear()
            self._verdict_generation = generation
        keep = np.ones(len(ids), dtype=bool)
        for position, metric_id in enumerate(ids.tolist()):
            if metric_id in self._verdicts:
                counter = self._verdicts[metric_id]
            else:
                verdict = self.metric_filter.verdict(self.names.name(metric_id))
                counter = self._verdicts[metric_id] = verdict.value if verdict else None
            if counter is not None:
                keep[position] = False
                self.stats.increment(counter)
        if keep.all():
            return ids, timestamps, values
        return ids[keep], timestamps[keep], values[keep]

    def _pause_all(self) -> None:
        if not self.paused:
            self.paused = True
            if self.closed:
                return
            log.warning("pausing %d receiver(s) until the cache drains", len(self.producers))
            for producer in list(self.producers):
                producer.pauseProducing()

    def _space_available(self) -> None:
        if self.paused:
            self.paused = False
            if self.closed:
                return
            log.info("resuming %d receiver(s)", len(self.producers))
            for producer in list(self.producers):
                producer.resumeProducing()

    def stop_receiving(self) -> None:
        """Stop reading from every producer for good (shutdown: the cache must stop growing)."""
        if not self.closed:
            self.closed = True
            for producer in list(self.producers):
                producer.pauseProducing()

