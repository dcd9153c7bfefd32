"""The writer: cache → whisper files under carbon's rate limits, driven by a fake clock."""
import math
import os

import numpy as np
import pytest
import whisper
from twisted.internet import defer
from twisted.internet.task import Clock

from carbon.cache import MetricCache, make_strategy
from carbon.instrumentation import Stats
from carbon.names import MetricIndex
from carbon.writer import (
    ReloadingRules,
    TokenBucket,
    Writer,
    WriterService,
    WriterSettings,
    create_bucket,
    update_bucket,
)
from storage.paths import metric_path
from storage.schemas import StorageRules
from storage.whisper.batch import WhisperStore

NOW = 1_700_000_040  # a multiple of 60


class FailingStore:
    """A WhisperStore whose writes to chosen file names fail (``times`` times each)."""

    def __init__(self, inner, failing, times=math.inf):
        self.inner = inner
        self.failing = dict.fromkeys(failing, times)

    def create(self, *args):
        return self.inner.create(*args)

    def write(self, path, timestamps, values, now=None):
        name = os.path.basename(path)
        if self.failing.get(name, 0) > 0 and os.path.exists(path):  # a missing file is created first
            self.failing[name] -= 1
            raise OSError(5, "Input/output error")
        return self.inner.write(path, timestamps, values, now)

    def close(self):
        self.inner.close()


class Rig:
    def __init__(self, tmp_path, store=None, strategy="sorted", run_blocking=None, **settings):
        self.clock = Clock()
        self.clock.advance(NOW)
        self.index = MetricIndex()
        self.cache = MetricCache(make_strategy(strategy, now=self.clock.seconds))
        self.stats = Stats()
        self.rejects = []
        self.data_dir = tmp_path / "whisper"
        schemas = tmp_path / "storage-schemas.conf"
        schemas.write_text("[fast]\npattern = ^fast\\.\nretentions = 10s:1h\n"
                           "[default]\npattern = .*\nretentions = 60:1d\n")
        aggregation = tmp_path / "storage-aggregation.conf"
        aggregation.write_text("[max]\npattern = \\.max$\nxFilesFactor = 0.1\naggregationMethod = max\n")
        self.rules = ReloadingRules(schemas, aggregation, StorageRules.load)
        self.store = store if store is not None else WhisperStore()
        self.writer = Writer(
            self.cache, self.index, self.store, self.rules,
            WriterSettings(data_dir=self.data_dir, **settings),
            self.clock, run_blocking or defer.maybeDeferred, self.stats,
            lambda reason, sample, peer: self.rejects.append((reason, sample)),
        )

    def put(self, name, *points):
        metric_id = self.index.id_for(name)
        for ts, value in points:
            self.cache.store(metric_id, float(ts), float(value))
        return metric_id

    def path(self, name):
        return metric_path(self.data_dir, name)

    def on_disk(self, name):
        (start, end, step), values = whisper.fetch(str(self.path(name)), NOW - 3000, NOW + 60, now=NOW + 60)
        return {start + i * step: v for i, v in enumerate(values) if v is not None}


def test_writes_every_cached_point_with_the_matching_schema(tmp_path):
    rig = Rig(tmp_path)
    rig.put("fast.a", (NOW - 20, 1), (NOW - 10, 2))
    rig.put("slow.b.max", (NOW - 120, 5))
    rig.writer.start()
    rig.clock.advance(0)
    assert rig.cache.size == 0 and len(rig.cache) == 0
    assert rig.on_disk("fast.a") == {NOW - 20: 1.0, NOW - 10: 2.0}
    assert rig.on_disk("slow.b.max") == {NOW - 120: 5.0}
    fast = whisper.info(str(rig.path("fast.a")))
    slow = whisper.info(str(rig.path("slow.b.max")))
    assert fast["archives"][0]["secondsPerPoint"] == 10
    assert (slow["archives"][0]["secondsPerPoint"], slow["aggregationMethod"]) == (60, "max")
    assert slow["xFilesFactor"] == pytest.approx(0.1)
    assert rig.stats.counters["committedPoints"] == 3
    assert rig.stats.counters["creates"] == 2
    assert len(rig.stats.samples["updateTimes"]) == 2


class CountingStore:
    """A WhisperStore that counts write calls per file name."""

    def __init__(self, inner):
        self.inner = inner
        self.writes = {}

    def create(self, *args):
        return self.inner.create(*args)

    def write(self, path, timestamps, values, now=None):
        name = os.path.basename(path)
        self.writes[name] = self.writes.get(name, 0) + 1
        return self.inner.write(path, timestamps, values, now)

    def close(self):
        self.inner.close()


def test_a_new_metric_is_created_before_its_first_write_without_a_failed_one(tmp_path):
    inner = WhisperStore()
    inner.revalidate_after = 0  # notice the removal at once
    store = CountingStore(inner)
    rig = Rig(tmp_path, store=store)
    rig.put("new.one", (NOW - 60, 1))
    rig.writer.start()
    rig.clock.advance(0)
    assert store.writes == {"one.wsp": 1}
    assert rig.on_disk("new.one") == {NOW - 60: 1.0}
    os.unlink(rig.path("new.one"))  # removed while known: the write finds no file, creates it
    rig.put("new.one", (NOW - 30, 2))
    rig.clock.advance(1)
    assert store.writes == {"one.wsp": 3}
    assert rig.on_disk("new.one") == {NOW - 60: 2.0}
    assert rig.stats.counters["creates"] == 2


def test_duplicates_last_wins_on_disk(tmp_path):
    rig = Rig(tmp_path)
    rig.put("a", (NOW - 60, 1), (NOW - 60, 2), (NOW - 120, 3), (NOW - 60, 4))
    rig.writer.start()
    rig.clock.advance(0)
    assert rig.on_disk("a") == {NOW - 120: 3.0, NOW - 60: 4.0}


def test_update_rate_limit_paces_writes_on_the_clock(tmp_path):
    rig = Rig(tmp_path, max_updates_per_second=2)
    for i in range(5):
        rig.put(f"m.{i}", (NOW - 60, i))
    rig.writer.start()
    rig.clock.advance(0)
    assert len(rig.cache) == 3
    rig.clock.advance(0.5)
    assert len(rig.cache) == 2
    rig.clock.advance(0.5)
    assert len(rig.cache) == 1
    rig.clock.advance(0.5)
    assert len(rig.cache) == 0
    assert rig.stats.counters["committedPoints"] == 5


def test_no_create_token_drops_the_points_like_carbon(tmp_path):
    rig = Rig(tmp_path, max_creates_per_minute=1)
    rig.put("old", (NOW - 60, 1))
    rig.writer.start()
    rig.clock.advance(0)  # uses the only create token
    rig.put("old", (NOW - 120, 2))
    rig.put("new.a", (NOW - 60, 1))
    rig.put("new.b", (NOW - 60, 1))
    rig.clock.advance(0.1)
    assert rig.stats.counters["droppedCreates"] == 2
    assert rig.on_disk("old") == {NOW - 120: 2.0, NOW - 60: 1.0}
    assert not rig.path("new.a").exists() and not rig.path("new.b").exists()
    assert rig.cache.size == 0
    rig.put("new.a", (NOW, 7))
    rig.clock.advance(60)  # a minute refills the bucket
    assert rig.path("new.a").exists()


def test_a_file_removed_while_running_is_created_again_under_the_create_limit(tmp_path):
    """The writer learns that a file is missing from the write itself (no stat first): a
    file removed behind its back is made again, and that takes a create token."""
    rig = Rig(tmp_path, max_creates_per_minute=2)
    rig.store.revalidate_after = 0  # notice the removal at the next write
    rig.put("gone.a", (NOW - 120, 1))
    rig.put("gone.b", (NOW - 120, 1))
    rig.writer.start()
    rig.clock.advance(0)
    assert rig.stats.counters["creates"] == 2
    rig.path("gone.a").unlink()
    rig.path("gone.b").unlink()
    rig.put("gone.a", (NOW - 60, 2))
    rig.put("gone.b", (NOW - 60, 2))
    rig.clock.advance(30)  # one token back
    assert rig.stats.counters["creates"] == 3
    assert rig.stats.counters["droppedCreates"] == 1
    made_again = [name for name in ("gone.a", "gone.b") if rig.path(name).exists()]
    assert len(made_again) == 1
    assert rig.on_disk(made_again[0]) == {NOW - 60: 2.0}
    assert rig.cache.size == 0


def test_invalid_name_is_rejected_and_others_still_land(tmp_path):
    rig = Rig(tmp_path)
    rig.put("a.b.", (NOW - 60, 1))
    rig.put("good.one", (NOW - 60, 2))
    rig.writer.start()
    rig.clock.advance(0)
    assert rig.rejects == [("bad_name", b"a.b.")]
    assert rig.on_disk("good.one") == {NOW - 60: 2.0}
    assert rig.cache.size == 0
    assert not list(tmp_path.glob("**/b.wsp"))


def test_a_failed_write_is_retried_once(tmp_path):
    rig = Rig(tmp_path, store=FailingStore(WhisperStore(), {"bad.wsp"}, times=1))
    rig.put("x.bad", (NOW - 60, 1))
    rig.put("x.good", (NOW - 60, 2))
    rig.writer.start()
    rig.clock.advance(0)
    assert rig.stats.counters["errors"] == 1
    assert rig.on_disk("x.good") == {NOW - 60: 2.0}
    assert rig.on_disk("x.bad") == {NOW - 60: 1.0}
    assert rig.cache.size == 0


def test_a_metric_failing_twice_is_dropped_and_the_writer_goes_on(tmp_path):
    rig = Rig(tmp_path, store=FailingStore(WhisperStore(), {"bad.wsp"}))
    rig.put("x.bad", (NOW - 60, 1))
    rig.writer.start()
    rig.clock.advance(0)
    assert rig.stats.counters["errors"] == 2
    assert rig.cache.size == 0
    rig.put("x.good", (NOW - 60, 2))
    rig.clock.advance(1)
    assert rig.on_disk("x.good") == {NOW - 60: 2.0}


class HeldWrites:
    """A run_blocking that holds each batch until the test lets the oldest one run."""

    def __init__(self):
        self.held = []

    def __call__(self, fn, *args):
        d = defer.Deferred()
        self.held.append((d, fn, args))
        return d

    def ids(self, position):
        return set(self.held[position][2][0].ids.tolist())

    def finish_oldest(self):
        d, fn, args = self.held.pop(0)
        d.callback(fn(*args))


def test_points_stay_queryable_while_the_write_is_in_flight(tmp_path):
    writes = HeldWrites()
    rig = Rig(tmp_path, run_blocking=writes)
    metric_id = rig.put("a.b", (NOW - 60, 1))
    rig.writer.start()
    rig.clock.advance(0)
    assert rig.cache.inflight_ids() == [metric_id]
    assert rig.cache.datapoints(metric_id) == [(NOW - 60.0, 1.0)]
    rig.clock.advance(1)  # the only metric is in flight: nothing else is taken
    assert len(writes.held) == 1
    writes.finish_oldest()
    assert rig.cache.datapoints(metric_id) == []
    assert rig.on_disk("a.b") == {NOW - 60: 1.0}


def test_the_next_batch_is_taken_while_one_is_written_without_its_metrics(tmp_path):
    writes = HeldWrites()
    rig = Rig(tmp_path, run_blocking=writes, batch_metrics=2)
    ids = [rig.put(f"m.n{k}", (NOW - 60, k)) for k in range(6)]
    rig.writer.start()
    rig.clock.advance(0)
    rig.clock.advance(0)
    assert len(writes.held) == 2  # one batch being written, the next waiting: no third
    first, second = writes.ids(0), writes.ids(1)
    assert len(first) == len(second) == 2 and not first & second
    # newer points of a metric in flight wait until its batch is over
    early = sorted(first)[0]
    rig.put(f"m.n{ids.index(early)}", (NOW - 60, 100.0))
    writes.finish_oldest()
    rig.clock.advance(0)
    assert len(writes.held) == 2
    assert not writes.ids(1) & second
    while writes.held:
        writes.finish_oldest()
        rig.clock.advance(0)
    assert rig.cache.size == 0
    for k in range(6):
        expected = 100.0 if ids[k] == early else float(k)
        assert rig.on_disk(f"m.n{k}") == {NOW - 60: expected}


def test_a_metric_written_by_two_batches_keeps_the_later_value(tmp_path):
    """The value that arrived last wins on disk although its batch was taken while the
    earlier one was still being written (it waits for that one)."""
    writes = HeldWrites()
    rig = Rig(tmp_path, run_blocking=writes, batch_metrics=1)
    rig.put("a.b", (NOW - 60, 1))
    rig.writer.start()
    rig.clock.advance(0)
    rig.put("a.b", (NOW - 60, 2))
    rig.clock.advance(0)
    assert len(writes.held) == 1  # the only metric is in flight: nothing else to take
    writes.finish_oldest()
    rig.clock.advance(0)
    assert len(writes.held) == 1
    writes.finish_oldest()
    assert rig.on_disk("a.b") == {NOW - 60: 2.0}


def test_flush_ignores_rate_limits_by_default(tmp_path):
    rig = Rig(tmp_path, max_updates_per_second=1, max_creates_per_minute=1, strategy="timesorted")
    rig.cache.strategy.min_lag = 3600
    for i in range(10):
        rig.put(f"m.{i}", (NOW - 60, i))
    rig.writer.start()
    rig.clock.advance(0)
    assert len(rig.cache) == 10  # everything is too recent for the lag
    done = rig.writer.flush()
    fired = []
    done.addCallback(fired.append)
    rig.clock.advance(0)
    while not fired and rig.clock.getDelayedCalls():
        rig.clock.advance(0)
    assert fired and rig.cache.size == 0
    assert rig.stats.counters["committedPoints"] == 10
    assert rig.stats.counters["droppedCreates"] == 0


def test_flush_at_the_configured_shutdown_rate(tmp_path):
    rig = Rig(tmp_path, max_updates_per_second=1, max_updates_per_second_on_shutdown=4)
    for i in range(8):
        rig.put(f"m.{i}", (NOW - 60, i))
    fired = []
    rig.writer.flush().addCallback(fired.append)
    rig.clock.advance(0)
    assert len(rig.cache) == 4 and not fired
    rig.clock.advance(1)
    rig.clock.advance(0)
    assert len(rig.cache) == 0 and fired


def test_writer_service_flushes_then_closes_on_stop(tmp_path):
    closed = []

    class ClosingStore(FailingStore):
        def close(self):
            closed.append(True)
            self.inner.close()

    rig = Rig(tmp_path, store=ClosingStore(WhisperStore(), set()), max_updates_per_second=1)
    service = WriterService(rig.writer, rig.clock, rules=rig.rules)
    service.startService()
    for i in range(3):
        rig.put(f"m.{i}", (NOW - 60, i))
    stopped = []
    service.stopService().addCallback(stopped.append)
    for _ in range(5):
        rig.clock.advance(0)
    assert stopped and closed and rig.cache.size == 0
    assert not rig.clock.getDelayedCalls()


def test_rules_reload_when_the_files_change(tmp_path):
    rig = Rig(tmp_path)
    import os
    schemas = tmp_path / "storage-schemas.conf"
    schemas.write_text("[all]\npattern = .*\nretentions = 5s:1h\n")
    os.utime(schemas, (NOW, NOW))
    assert rig.rules.reload_if_changed()
    assert rig.rules.policy_for("x").archives == ((5, 720),)
    assert not rig.rules.reload_if_changed()


def test_broken_rules_keep_the_previous_ones(tmp_path):
    rig = Rig(tmp_path)
    import os
    schemas = tmp_path / "storage-schemas.conf"
    schemas.write_text("[all]\npattern = .*\nretentions = 5min:1h\n")
    os.utime(schemas, (NOW, NOW))
    assert not rig.rules.reload_if_changed()
    assert rig.rules.policy_for("fast.x").archives == ((10, 360),)


def test_token_bucket_refills_on_the_clock():
    clock = Clock()
    bucket = TokenBucket(2, 2, clock.seconds)
    assert bucket.take() and bucket.take() and not bucket.take()
    assert bucket.seconds_until(1) == pytest.approx(0.5)
    clock.advance(0.5)
    assert bucket.take() and not bucket.take()
    clock.advance(100)
    assert bucket.available() == 2
    bucket.give_back(5)
    assert bucket.available() == 2


def test_create_bucket_is_per_minute_and_inf_is_unlimited():
    clock = Clock()
    bucket = create_bucket(60, clock.seconds)
    assert bucket.fill_rate == 1
    unlimited = create_bucket(math.inf, clock.seconds)
    assert all(unlimited.take() for _ in range(1000))
    assert unlimited.seconds_until(10) == 0


def test_fractional_rates_still_make_progress_and_zero_creates_none():
    clock = Clock()
    slow = update_bucket(0.5, clock.seconds)
    assert slow.take() and not slow.take()
    assert slow.seconds_until(1) == pytest.approx(2)
    none = create_bucket(0, clock.seconds)
    clock.advance(3600)
    assert not none.take()


def test_write_arrays_are_plain_float64():
    cache = MetricCache()
    cache.store(1, 1.0, 2.0)
    ts, vals = cache.pop(1)
    assert ts.dtype == np.float64 and ts.flags.c_contiguous and vals.flags.c_contiguous
