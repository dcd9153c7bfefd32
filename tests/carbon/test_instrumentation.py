"""Self-metrics: carbon's names and values, recorded into the cache on the clock."""
import pytest
from twisted.internet.task import Clock

from carbon.cache import MetricCache
from carbon.instrumentation import (
    CpuMeter,
    InstrumentationService,
    Recorder,
    Stats,
    agent_prefix,
    memory_usage,
)
from carbon.names import MetricIndex


def test_agent_prefix_follows_carbon():
    assert agent_prefix("carbon", None, "web01.example.com") == "carbon.agents.web01_example_com"
    assert agent_prefix("carbon", "a", "vm") == "carbon.agents.vm-a"
    assert agent_prefix("stats.carbon", None).startswith("stats.carbon.agents.")


def test_stats_take_starts_a_new_interval():
    stats = Stats()
    stats.increment("metricsReceived", 3)
    stats.increment("metricsReceived")
    stats.append("updateTimes", 0.5)
    counters, samples = stats.take()
    assert counters == {"metricsReceived": 4} and samples == {"updateTimes": [0.5]}
    assert stats.take() == ({}, {})


def make_recorder(cache=None, connections=2):
    clock = Clock()
    clock.advance(1_700_000_000)
    stats = Stats()
    index = MetricIndex()
    cache = cache if cache is not None else MetricCache()
    recorder = Recorder(stats, cache, index, "carbon.agents.h", lambda: connections, clock.seconds,
                        CpuMeter(clock.seconds))
    return clock, stats, index, cache, recorder


def test_values_cover_carbons_cache_metrics_and_rejects():
    clock, stats, index, cache, recorder = make_recorder()
    cache.store(index.id_for("x"), 1.0, 1.0)
    cache.store(index.id_for("y"), 1.0, 1.0)
    cache.store(index.id_for("y"), 2.0, 1.0)
    stats.increment("metricsReceived", 10)
    stats.increment("committedPoints", 6)
    stats.append("updateTimes", 0.1)
    stats.append("updateTimes", 0.3)
    stats.increment("creates", 2)
    stats.increment("rejected.bad_name", 4)
    stats.increment("cache.queries", 5)
    stats.increment("blacklistMatches", 1)
    clock.advance(60)
    values = recorder.values()
    assert values["cache.size"] == 3 and values["cache.queues"] == 2
    assert values["metricsReceived"] == 10
    assert values["committedPoints"] == 6
    assert values["updateOperations"] == 2
    assert values["pointsPerUpdate"] == 3
    assert values["avgUpdateTime"] == pytest.approx(0.2)
    assert values["creates"] == 2 and values["droppedCreates"] == 0
    assert values["rejected.bad_name"] == 4
    assert values["cache.queries"] == 5 and values["cache.overflow"] == 0
    assert values["blacklistMatches"] == 1 and values["whitelistRejects"] == 0
    assert values["errors"] == 0
    assert values["activeConnections"] == 2
    assert "cpuUsage" in values
    assert recorder.values()["metricsReceived"] == 0  # a new interval


def test_record_stores_points_in_the_cache_at_clock_time():
    clock, stats, index, cache, recorder = make_recorder()
    stats.increment("metricsReceived", 7)
    recorder.record()
    received = index.lookup("carbon.agents.h.metricsReceived")
    assert cache.datapoints(received) == [(1_700_000_000.0, 7.0)]
    size = index.lookup("carbon.agents.h.cache.size")
    assert cache.datapoints(size) == [(1_700_000_000.0, 0.0)]


def test_service_records_every_interval_and_not_at_zero():
    clock, stats, index, cache, recorder = make_recorder()
    service = InstrumentationService(recorder, 60, clock)
    service.startService()
    assert len(cache) == 0
    clock.advance(60)
    first = len(cache)
    assert first > 10
    stats.increment("metricsReceived")
    clock.advance(60)
    received = index.lookup("carbon.agents.h.metricsReceived")
    assert [v for _, v in cache.datapoints(received)] == [0.0, 1.0]
    service.stopService()
    assert not clock.getDelayedCalls()
    disabled = InstrumentationService(recorder, 0, clock)
    disabled.startService()
    assert not clock.getDelayedCalls()
    disabled.stopService()


def test_memory_usage_is_positive_on_linux():
    assert memory_usage() > 0
