"""Carbon's own metrics: counters kept while running, recorded into the cache.

Every ``CARBON_METRIC_INTERVAL`` seconds the counters of the interval are
turned into points named ``<CARBON_METRIC_PREFIX>.agents.<host>[-<instance>].<stat>``
(host with ``.`` replaced by ``_``, as carbon does) and stored straight into
the cache, so they are written like any other metric.
"""
from __future__ import annotations

import logging
import os
import resource
import socket
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from twisted.application.service import Service
from twisted.internet.task import LoopingCall

log = logging.getLogger(__name__)

# Counters recorded every interval even when zero, as carbon-cache does.
ALWAYS_RECORDED = (
    "metricsReceived",
    "committedPoints",
    "updateOperations",
    "creates",
    "droppedCreates",
    "errors",
    "cache.queries",
    "cache.bulk_queries",
    "cache.overflow",
    "blacklistMatches",
    "whitelistRejects",
)


class Stats:
    """Counters and samples of the current interval (reactor thread only)."""

    def __init__(self) -> None:
        self.counters: defaultdict[str, float] = defaultdict(float)
        self.samples: defaultdict[str, list[float]] = defaultdict(list)

    def increment(self, name: str, amount: float = 1) -> None:
        self.counters[name] += amount

    def append(self, name: str, value: float) -> None:
        self.samples[name].append(value)

    def extend(self, name: str, values: list[float]) -> None:
        self.samples[name].extend(values)

    def take(self) -> tuple[dict[str, float], dict[str, list[float]]]:
        """The interval's counters and samples; starts a new interval."""
        counters, samples = dict(self.counters), dict(self.samples)
        self.counters.clear()
        self.samples.clear()
        return counters, samples


def agent_prefix(metric_prefix: str, instance: str | None, hostname: str | None = None) -> str:
    """``carbon.agents.<host>[-<instance>]``, host dots turned into underscores."""
    host = (hostname if hostname is not None else socket.gethostname()).replace(".", "_")
    node = f"{host}-{instance}" if instance else host
    return f"{metric_prefix}.agents.{node}"


class CpuMeter:
    """Percent of one CPU used by this process since the previous reading."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._last_used = self._used()
        self._last_time = clock()

    @staticmethod
    def _used() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    def percent(self) -> float:
        used, now = self._used(), self.clock()
        elapsed = max(now - self._last_time, 1e-6)
        result = (used - self._last_used) / elapsed * 100.0
        self._last_used, self._last_time = used, now
        return result


def memory_usage() -> float | None:
    """Resident set size in bytes (Linux), None where /proc is missing."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return float(pages * os.sysconf("SC_PAGESIZE"))


class Recorder:
    """Turns one interval's stats into points and stores them in the cache."""

    def __init__(
        self,
        stats: Stats,
        cache: Any,
        index: Any,
        prefix: str,
        active_connections: Callable[[], int],
        clock: Callable[[], float],
        cpu: CpuMeter | None = None,
    ) -> None:
        """``cache`` is a MetricCache, ``index`` the MetricIndex, ``clock`` gives epoch seconds."""
        self.stats = stats
        self.cache = cache
        self.index = index
        self.prefix = prefix
        self.active_connections = active_connections
        self.clock = clock
        self.cpu = cpu if cpu is not None else CpuMeter()

    def values(self) -> dict[str, float]:
        """The interval's self-metrics by stat name (and starts the next interval)."""
        counters, samples = self.stats.take()
        # Cache-derived numbers first, before this very recording adds to the cache.
        result: dict[str, float] = {
            "cache.size": float(self.cache.size),
            "cache.queues": float(len(self.cache)),
        }
        update_times = samples.get("updateTimes", [])
        if update_times:
            result["avgUpdateTime"] = sum(update_times) / len(update_times)
            committed = counters.get("committedPoints", 0)
            if committed:
                result["pointsPerUpdate"] = committed / len(update_times)
        bulk_sizes = samples.get("cacheBulkQuerySize", [])
        if bulk_sizes:
            result["cache.bulk_queries_average_size"] = sum(bulk_sizes) / len(bulk_sizes)
        for name in ALWAYS_RECORDED:
            result[name] = float(counters.get(name, 0))
        result["updateOperations"] = float(len(update_times))
        for name, value in counters.items():
            if name.startswith("rejected."):
                result[name] = float(value)
        result["activeConnections"] = float(self.active_connections())
        result["cpuUsage"] = self.cpu.percent()
        memory = memory_usage()
        if memory is not None:
            result["memUsage"] = memory
        return result

    def record(self) -> None:
        now = self.clock()
        for stat, value in self.values().items():
            metric_id = self.index.id_for(f"{self.prefix}.{stat}")
            self.cache.store(metric_id, now, value)


class InstrumentationService(Service):
    """Runs :class:`Recorder` every interval on the given reactor (a Clock in tests)."""

    def __init__(self, recorder: Recorder, interval: float, reactor: Any) -> None:
        self.recorder = recorder
        self.interval = interval
        self.loop = LoopingCall(self._record)
        self.loop.clock = reactor

    def _record(self) -> None:
        try:
            self.recorder.record()
        except Exception:
            log.exception("cannot record self-metrics")

    def startService(self) -> None:  # noqa: N802 (Twisted's name)
        super().startService()
        if self.interval > 0:
            self.loop.start(self.interval, now=False)

    def stopService(self) -> None:  # noqa: N802
        if self.loop.running:
            self.loop.stop()
        return super().stopService()
