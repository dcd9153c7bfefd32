"""The write-back cache between the receivers and the whisper writer.

Points are held per metric id in C memory (``native.carbon_cache.SeriesTable``;
its readable twin is :class:`SeriesTablePy`), never as Python objects per
point: a parsed batch is appended in one call. Carbon's rules apply: a
repeated timestamp is overwritten by the later point (resolved when points are
read or written), ``MAX_CACHE_SIZE`` bounds the points held (the excess is
refused and counted as overflow), and a full cache pauses the receivers until
it drains below the low watermark.

Unlike carbon, points handed to the writer stay visible to cache queries
until the writer confirms them (``pop`` → ``confirm``), so a graphite-web
query never falls into the gap between cache and disk; ``restore`` puts them
back if a write fails.

All methods run on the reactor thread; the writer thread only ever sees the
arrays ``pop``/``pop_many`` hand it.
"""
from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from carbon.filters import MetricFilter

try:
    from native.carbon_cache import SeriesTable as NativeSeriesTable
except ImportError:  # the pure twin below serves when the extension is not built
    NativeSeriesTable = None

log = logging.getLogger(__name__)

INITIAL_CAPACITY = 16
_NO_IDS = np.empty(0, dtype=np.int64)
# pop_many asks the strategy again at most this many times after passing over metrics in flight
_MAX_PASSES_OVER = 4


class _Run:
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

    def extend(self, timestamps: np.ndarray, values: np.ndarray) -> None:
        count = len(timestamps)
        if count == 0:
            return
        end = self.n + count
        if end > len(self.block):
            grown = np.empty((max(end, 2 * len(self.block)), 2), dtype=np.float64)
            grown[: self.n] = self.block[: self.n]
            self.block = grown
        if self.increasing and (
            (self.n and timestamps[0] <= self.block[self.n - 1, 0])
            or (count > 1 and not bool(np.all(timestamps[1:] > timestamps[:-1])))
        ):
            self.increasing = False
        self.block[self.n : end, 0] = timestamps
        self.block[self.n : end, 1] = values
        self.n = end

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


class SeriesTablePy:
    """Pure twin of ``native.carbon_cache.SeriesTable``: pending and flying points per id.

    Pending runs live in a dict whose order is the order metrics entered the
    cache (carbon's dict order); a popped metric leaves it and re-enters at the end.
    """

    def __init__(self) -> None:
        self._pending: dict[int, _Run] = {}
        self._flying: dict[int, _Run] = {}
        self.pending_points = 0
        self.flying_points = 0

    @property
    def pending_metrics(self) -> int:
        return len(self._pending)

    @property
    def flying_metrics(self) -> int:
        return len(self._flying)

    def __len__(self) -> int:
        return len(self._pending)

    def append_many(self, ids: np.ndarray, timestamps: np.ndarray, values: np.ndarray) -> None:
        if not len(ids) == len(timestamps) == len(values):
            raise ValueError(f"cannot cache ids={len(ids)}: {len(timestamps)} timestamps, "
                             f"{len(values)} values")
        if len(ids) == 0:
            return
        if ids.min() < 0:
            raise ValueError(f"cannot cache metric id={ids.min()}: ids are not negative")
        order = np.argsort(ids, kind="stable")
        sorted_ids = ids[order]
        bounds = np.concatenate(([0], np.flatnonzero(np.diff(sorted_ids)) + 1, [len(ids)]))
        # Metrics enter the cache in order of their first point in this batch.
        for group in np.argsort(order[bounds[:-1]], kind="stable").tolist():
            chosen = order[bounds[group]:bounds[group + 1]]
            self._run_for(int(sorted_ids[bounds[group]])).extend(timestamps[chosen], values[chosen])
        self.pending_points += len(ids)

    def append(self, metric_id: int, timestamp: float, value: float) -> None:
        if metric_id < 0:
            raise ValueError(f"cannot cache metric id={metric_id}: ids are not negative")
        self._run_for(metric_id).extend(np.array([timestamp]), np.array([value]))
        self.pending_points += 1

    def _run_for(self, metric_id: int) -> _Run:
        run = self._pending.get(metric_id)
        if run is None:
            run = self._pending[metric_id] = _Run()
        return run

    def is_pending(self, metric_id: int) -> bool:
        return metric_id in self._pending

    def is_flying(self, metric_id: int) -> bool:
        return metric_id in self._flying

    def pending_mask(self, ids: np.ndarray) -> np.ndarray:
        return np.array([int(i) in self._pending for i in ids], dtype=bool)

    def ready_mask(self, ids: np.ndarray) -> np.ndarray:
        return np.array([int(i) in self._pending and int(i) not in self._flying for i in ids],
                        dtype=bool)

    def pending_ids(self) -> np.ndarray:
        return np.array(list(self._pending), dtype=np.int64)

    def flying_ids(self) -> list[int]:
        return sorted(self._flying)

    def counts(self) -> tuple[np.ndarray, np.ndarray]:
        return self.pending_ids(), np.array(
            [run.distinct_count() for run in self._pending.values()], dtype=np.int64)

    def earliest(self) -> tuple[np.ndarray, np.ndarray]:
        return self.pending_ids(), np.array(
            [run.earliest() for run in self._pending.values()], dtype=np.float64)

    def pop_many(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        chosen = [int(i) for i in ids]
        for position, metric_id in enumerate(chosen):
            if metric_id not in self._pending:
                raise KeyError(metric_id)
            if metric_id in self._flying:
                raise RuntimeError(f"cannot pop metric id={metric_id}: a batch is already in flight")
            if metric_id in chosen[:position]:
                raise RuntimeError(f"cannot pop metric id={metric_id} twice in one call")
        runs = [self._pending.pop(metric_id) for metric_id in chosen]
        for metric_id, run in zip(chosen, runs, strict=True):
            self._flying[metric_id] = run
            self.pending_points -= run.n
            self.flying_points += run.n
        offsets = np.zeros(len(runs) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([run.n for run in runs])
        rows = np.concatenate([run.rows() for run in runs]) if runs else np.empty((0, 2))
        return offsets, np.ascontiguousarray(rows[:, 0]), np.ascontiguousarray(rows[:, 1])

    def confirm_many(self, ids: np.ndarray) -> int:
        freed = 0
        for metric_id in ids:
            run = self._flying.pop(int(metric_id), None)
            if run is not None:
                freed += run.n
        self.flying_points -= freed
        return freed

    def restore(self, metric_id: int) -> int:
        run = self._flying.pop(metric_id, None)
        if run is None:
            return 0
        newer = self._pending.pop(metric_id, None)
        merged = _Run(run.n + (newer.n if newer is not None else 0))
        merged.extend(run.rows()[:, 0], run.rows()[:, 1])
        if newer is not None:
            merged.extend(newer.rows()[:, 0], newer.rows()[:, 1])
        self._pending[metric_id] = merged
        self.flying_points -= run.n
        self.pending_points += run.n
        return run.n

    def rows(self, metric_id: int) -> tuple[np.ndarray, bool]:
        flying = self._flying.get(metric_id)
        pending = self._pending.get(metric_id)
        runs = [run for run in (flying, pending) if run is not None and run.n]
        if not runs:
            return np.empty((0, 2)), True
        increasing = all(run.increasing for run in runs) and not (
            len(runs) == 2 and runs[1].block[0, 0] <= runs[0].block[runs[0].n - 1, 0])
        return np.concatenate([run.rows() for run in runs]), increasing


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


class _SnapshotStrategy:
    """A queue of ids snapshotted from the cache once a pass, consumed from its end.

    ``choose_many`` gives what ``choose`` called repeatedly (each choice popped
    before the next) would give, without a Python step per metric.
    """

    def __init__(self) -> None:
        self._queue = _NO_IDS
        self._end = 0

    def _snapshot(self, cache: MetricCache) -> np.ndarray:
        raise NotImplementedError

    def _refill(self, cache: MetricCache) -> bool:
        self._queue = self._snapshot(cache)
        self._end = len(self._queue)
        return self._end > 0

    def choose(self, cache: MetricCache) -> int | None:
        while True:
            while self._end:
                self._end -= 1
                metric_id = int(self._queue[self._end])
                if cache.has_pending(metric_id):
                    return metric_id
            if not self._refill(cache):
                return None

    def choose_many(self, cache: MetricCache, limit: int) -> np.ndarray:
        """Up to ``limit`` distinct pending ids in choice order; fewer (never none while
        anything is pending) when the pass ends: pop them, then ask again."""
        if not self._end and not self._refill(cache):
            return _NO_IDS
        while True:
            chosen = []
            wanted = limit
            while self._end and wanted:
                start = max(self._end - wanted, 0)
                candidates = self._queue[start:self._end][::-1]
                self._end = start
                candidates = candidates[cache.pending_mask(candidates)]
                chosen.append(candidates)
                wanted -= len(candidates)
            if wanted < limit:
                return np.concatenate(chosen)
            if not self._refill(cache):
                return _NO_IDS


class SortedStrategy(_SnapshotStrategy):
    """Carbon's default: snapshot point counts, take the largest first, each metric once a pass.

    Ties go to the metric that entered the cache last (carbon sorts the counts
    stably, ascending, and pops from the end of the list).
    """

    def _snapshot(self, cache: MetricCache) -> np.ndarray:
        ids, counts = cache.counts_arrays()
        return ids[np.argsort(counts, kind="stable")]


class NaiveStrategy(_SnapshotStrategy):
    """Snapshot the cache's metrics and take them from the end of the snapshot, as carbon does."""

    def _snapshot(self, cache: MetricCache) -> np.ndarray:
        return cache.pending_id_array()


class MaxStrategy:
    """Always the metric holding the most points (the first such in cache order)."""

    def choose(self, cache: MetricCache) -> int | None:
        ids, counts = cache.counts_arrays()
        if not len(ids):
            return None
        return int(ids[np.argmax(counts)])

    def choose_many(self, cache: MetricCache, limit: int) -> np.ndarray:
        ids, counts = cache.counts_arrays()
        return ids[np.argsort(-counts, kind="stable")[:limit]]


class TimeSortedStrategy(_SnapshotStrategy):
    """Oldest first: metrics ordered by their earliest cached timestamp, once a pass.

    ``min_lag`` (carbon's MIN_TIMESTAMP_LAG) leaves metrics whose earliest
    point is that recent for a later pass; a pass that finds nothing old
    enough yields None once so the writer can rest.
    """

    def __init__(self, min_lag: float = 0, now: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.min_lag = min_lag
        self.now = now

    def _snapshot(self, cache: MetricCache) -> np.ndarray:
        ids, marks = cache.earliest_arrays()
        order = np.argsort(-marks, kind="stable")  # newest first, ties in cache order
        ids, marks = ids[order], marks[order]
        if self.min_lag:
            ids = ids[self.now() - marks > self.min_lag]
        return ids

    def choose(self, cache: MetricCache) -> int | None:
        while self._end:
            self._end -= 1
            metric_id = int(self._queue[self._end])
            if cache.has_pending(metric_id):
                return metric_id
        if not self._refill(cache):
            return None
        self._end -= 1
        return int(self._queue[self._end])

    def choose_many(self, cache: MetricCache, limit: int) -> np.ndarray:
        chosen = []
        wanted = limit
        while self._end and wanted:
            start = max(self._end - wanted, 0)
            candidates = self._queue[start:self._end][::-1]
            self._end = start
            candidates = candidates[cache.pending_mask(candidates)]
            chosen.append(candidates)
            wanted -= len(candidates)
        if wanted == limit:  # the pass is over: one new snapshot, possibly empty
            if not self._refill(cache):
                return _NO_IDS
            start = max(self._end - limit, 0)
            chosen.append(self._queue[start:self._end][::-1])
            self._end = start
        return np.concatenate(chosen)


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
        native: bool | None = None,
    ) -> None:
        """``native``: True needs the compiled table, False uses the pure twin, None picks."""
        if native and NativeSeriesTable is None:
            raise ImportError("cannot use native=True: native.carbon_cache is not built")
        use_native = NativeSeriesTable is not None if native is None else native
        self.strategy: DrainStrategy = strategy if strategy is not None else SortedStrategy()
        self.max_size = max_size
        self.low_watermark = max_size * 0.95 if low_watermark is None else low_watermark
        self.table: Any = NativeSeriesTable() if use_native else SeriesTablePy()
        self.too_full = False
        self.space_listeners: list[Callable[[], None]] = []
        # Called when points arrive in an empty cache (the writer wakes up at once).
        self.arrival_listeners: list[Callable[[], None]] = []

    # --- sizes -----------------------------------------------------------------

    @property
    def pending_points(self) -> int:
        return self.table.pending_points

    @property
    def inflight_points(self) -> int:
        return self.table.flying_points

    @property
    def size(self) -> int:
        """Points held, including those the writer has taken but not yet confirmed."""
        return self.table.pending_points + self.table.flying_points

    @property
    def is_full(self) -> bool:
        return self.size >= self.max_size

    def __len__(self) -> int:
        """Metrics waiting to be written (carbon's ``cache.queues``)."""
        return self.table.pending_metrics

    def __bool__(self) -> bool:
        return self.table.pending_metrics > 0

    def has_pending(self, metric_id: int) -> bool:
        return self.table.is_pending(metric_id)

    def pending_mask(self, ids: np.ndarray) -> np.ndarray:
        return self.table.pending_mask(np.ascontiguousarray(ids, dtype=np.int64))

    def pending_ids(self) -> list[int]:
        return self.table.pending_ids().tolist()

    def pending_id_array(self) -> np.ndarray:
        return self.table.pending_ids()

    def inflight_ids(self) -> list[int]:
        return self.table.flying_ids()

    @property
    def inflight_metrics(self) -> int:
        return self.table.flying_metrics

    def is_inflight(self, metric_id: int) -> bool:
        return self.table.is_flying(metric_id)

    def counts(self) -> list[tuple[int, int]]:
        """(metric id, distinct timestamps waiting) in cache order, as carbon counts them."""
        ids, counts = self.table.counts()
        return list(zip(ids.tolist(), counts.tolist(), strict=True))

    def counts_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`counts` as two int64 arrays."""
        return self.table.counts()

    def earliest_timestamps(self) -> list[tuple[int, float]]:
        """(metric id, earliest waiting timestamp) in cache order."""
        ids, marks = self.table.earliest()
        return list(zip(ids.tolist(), marks.tolist(), strict=True))

    def earliest_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return self.table.earliest()

    # --- storing ---------------------------------------------------------------

    def store(self, metric_id: int, timestamp: float, value: float) -> bool:
        """Cache one point; False when the cache is full and the point was refused."""
        if self.is_full:
            self._mark_full()
            return False
        was_empty = not self.table.pending_metrics
        self.table.append(metric_id, timestamp, value)
        if was_empty:
            self._arrived()
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
            self._mark_full()
            if kept == 0:
                return refused
        was_empty = not self.table.pending_metrics
        self.table.append_many(ids, timestamps, values)
        if self.is_full:
            self._mark_full()
        if was_empty:
            self._arrived()
        return refused

    def _arrived(self) -> None:
        for listener in list(self.arrival_listeners):
            listener()

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
        rows, increasing = self.table.rows(metric_id)
        return rows if increasing else last_wins(rows)

    def datapoints(self, metric_id: int) -> list[tuple[float, float]]:
        """:meth:`points` as the (timestamp, value) tuples carbon's cache query returns."""
        rows = self.points(metric_id)
        return list(zip(rows[:, 0].tolist(), rows[:, 1].tolist(), strict=True))

    # --- draining --------------------------------------------------------------

    def choose(self) -> int | None:
        """The next metric to write according to the drain strategy, or None."""
        if not self.table.pending_metrics:
            return None
        return self.strategy.choose(self)

    def pop(self, metric_id: int) -> tuple[np.ndarray, np.ndarray]:
        """Hand a metric's waiting points to the writer: (timestamps, values) in arrival order.

        The points stay visible to :meth:`points` until :meth:`confirm` or
        :meth:`restore`. One batch per metric may be in flight at a time.
        """
        _, timestamps, values = self.table.pop_many(np.array([metric_id], dtype=np.int64))
        return timestamps, values

    def pop_many(self, limit: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Choose and pop up to ``limit`` metrics as the strategy orders them, in a few calls.

        Returns ``(ids, offsets, timestamps, values)``: metric ``ids[k]``'s points are
        ``timestamps[offsets[k]:offsets[k + 1]]`` (and the same of ``values``).
        A metric whose earlier batch is still being written is passed over (its new
        points wait for a later pass), so one metric's batches reach disk in order.
        """
        parts = []
        taken = 0
        passed_over = 0
        choose_many = getattr(self.strategy, "choose_many", None)
        while taken < limit and self.table.pending_metrics:
            if choose_many is not None:
                ids = np.ascontiguousarray(choose_many(self, limit - taken), dtype=np.int64)
            else:
                chosen = self.strategy.choose(self)
                ids = _NO_IDS if chosen is None else np.array([chosen], dtype=np.int64)
            if not len(ids):
                break
            if self.table.flying_metrics:
                ready = ids[self.table.ready_mask(ids)]
                if len(ready) < len(ids):
                    passed_over += 1
                    if passed_over > _MAX_PASSES_OVER:  # e.g. max: it chooses the same ones again
                        break
                    ids = ready
                    if not len(ids):
                        continue
            parts.append((ids, *self.table.pop_many(ids)))
            taken += len(ids)
        if not parts:
            return _NO_IDS, np.zeros(1, dtype=np.int64), np.empty(0), np.empty(0)
        if len(parts) == 1:
            return parts[0]
        ids = np.concatenate([part[0] for part in parts])
        lengths = np.concatenate([np.diff(part[1]) for part in parts])
        offsets = np.zeros(len(ids) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return (ids, offsets, np.concatenate([part[2] for part in parts]),
                np.concatenate([part[3] for part in parts]))

    def confirm(self, metric_id: int) -> None:
        """The writer is done with the popped points (written, or given up on): forget them."""
        self.confirm_many(np.array([metric_id], dtype=np.int64))

    def confirm_many(self, ids: np.ndarray) -> None:
        """:meth:`confirm` for many ids in one call."""
        if self.table.confirm_many(np.ascontiguousarray(ids, dtype=np.int64)):
            self._check_space()

    def restore(self, metric_id: int) -> None:
        """Put popped points back ahead of any that arrived since (a failed write to retry)."""
        self.table.restore(metric_id)


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

