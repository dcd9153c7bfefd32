"""storage.whisper against the real whisper 1.1.10: same calls, same bytes, same answers."""
import os
import tempfile
from pathlib import Path

import pytest
import whisper as reference
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_whisper_strategies import BASE_NOW, METHODS, ages, archive_lists, point_batches, values

from storage import whisper as ours

SETTINGS = settings(max_examples=120, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def outcome(call, *args, **kwargs):
    """A call's result, or the name of the exception it raised (classes differ by module)."""
    try:
        return ("ok", call(*args, **kwargs))
    except Exception as error:  # noqa: BLE001 - the exception's kind is the answer
        return ("raised", type(error).__name__)


def same(a, b):
    """Equality that also holds for NaN and tells -0.0 from 0.0."""
    return repr(a) == repr(b)


class Pair:
    """The same file written by the real whisper (a) and by storage.whisper (b)."""

    def __init__(self, directory, name="m"):
        self.a = os.path.join(directory, f"{name}-reference.wsp")
        self.b = os.path.join(directory, f"{name}-ours.wsp")

    def both(self, function, *args, **kwargs):
        first = outcome(getattr(reference, function), self.a, *args, **kwargs)
        second = outcome(getattr(ours, function), self.b, *args, **kwargs)
        return first, second

    def assert_same_bytes(self):
        assert Path(self.a).read_bytes() == Path(self.b).read_bytes()


@st.composite
def scenarios(draw):
    archives = draw(archive_lists())
    max_retention = max(step * points for step, points in archives)
    operation = st.one_of(
        st.tuples(st.just("update_many"), point_batches(max_retention),
                  st.integers(0, max_retention // 2)),
        st.tuples(st.just("update"), ages(max_retention), values, st.integers(0, 30)),
    )
    return {
        "archives": archives,
        "method": draw(st.sampled_from(METHODS)),
        "xff": draw(st.one_of(st.sampled_from([0.0, 0.5, 1.0]), st.floats(0, 1))),
        "sparse": draw(st.booleans()),
        "fallocate": draw(st.booleans()),
        "operations": draw(st.lists(operation, min_size=1, max_size=6)),
        "fetches": draw(st.lists(st.tuples(
            st.integers(-max_retention // 4, 2 * max_retention),
            st.integers(-max_retention // 4, 2 * max_retention),
            st.one_of(st.none(), st.sampled_from([a[0] for a in archives] + ["7", "1m"])),
            st.integers(0, max_retention),
        ), max_size=6)),
    }


def apply(pair, scenario):
    """Create both files and run the scenario's writes, checking bytes after each step."""
    first, second = pair.both("create", list(scenario["archives"]), scenario["xff"],
                              scenario["method"], scenario["sparse"], scenario["fallocate"])
    assert first == second == ("ok", None)
    pair.assert_same_bytes()
    now = BASE_NOW
    for operation in scenario["operations"]:
        if operation[0] == "update_many":
            _, batch, advance = operation
            points = [(now - age - fraction, value) for age, value, fraction in batch]
            first, second = pair.both("update_many", points, now=now)
        else:
            _, age, value, advance = operation
            first, second = pair.both("update", value, now - age, now=now)
        assert first == second
        pair.assert_same_bytes()
        now += advance
    return now


@SETTINGS
@given(scenarios())
def test_writes_produce_identical_bytes_and_fetches(scenario):
    with tempfile.TemporaryDirectory() as directory:
        pair = Pair(directory)
        now = apply(pair, scenario)
        assert same(reference.info(pair.a), ours.info(pair.b))
        for from_age, until_age, archive, later in scenario["fetches"]:
            when = now + later
            args = (when - from_age, when - until_age)
            first, second = pair.both("fetch", *args, now=when, archiveToSelect=archive)
            assert same(first, second)
            # whisper's own file, read back by us
            assert same(first, outcome(ours.fetch, pair.a, *args, now=when, archiveToSelect=archive))
        first, second = pair.both("fetch", now - 10)  # real clock: all of it is in the past
        assert same(first, second)


@settings(SETTINGS, max_examples=50)
@given(scenarios(), scenarios(), st.data())
def test_merge_and_diff_match(source, target, data):
    target = dict(target, archives=source["archives"])
    with tempfile.TemporaryDirectory() as directory:
        src, dst = Pair(directory, "src"), Pair(directory, "dst")
        now = max(apply(src, source), apply(dst, target))
        max_retention = max(s * p for s, p in source["archives"])
        when = now + data.draw(st.integers(0, max_retention))
        ignore_empty = data.draw(st.booleans())
        until = data.draw(st.one_of(st.none(), st.integers(when - 2 * max_retention, when)))
        first = outcome(reference.diff, src.a, dst.a, ignore_empty, until, now=when)
        second = outcome(ours.diff, src.b, dst.b, ignore_empty, until, now=when)
        assert same(first, second)
        time_from = data.draw(st.one_of(st.none(), st.integers(when - 2 * max_retention, when)))
        time_to = data.draw(st.one_of(st.none(), st.integers(when - 2 * max_retention, when + 10)))
        first = outcome(reference.merge, src.a, dst.a, time_from, time_to, now=when)
        second = outcome(ours.merge, src.b, dst.b, time_from, time_to, now=when)
        assert first == second
        dst.assert_same_bytes()


def test_merge_and_diff_refuse_unalike_archives(tmp_path):
    for module in (reference, ours):
        a, b = tmp_path / f"{module.__name__}-a.wsp", tmp_path / f"{module.__name__}-b.wsp"
        module.create(str(a), [(60, 10)])
        module.create(str(b), [(60, 20)])
        with pytest.raises(NotImplementedError):
            module.merge(str(a), str(b))
        with pytest.raises(NotImplementedError):
            module.diff(str(a), str(b))


@SETTINGS
@given(scenarios(), st.lists(st.tuples(
    st.one_of(st.none(), st.sampled_from(METHODS + ("median", "AVERAGE"))),
    st.one_of(st.none(), st.floats(-0.5, 1.5, allow_nan=False), st.just("x")),
), min_size=1, max_size=4))
def test_set_aggregation_and_xff_match(scenario, changes):
    with tempfile.TemporaryDirectory() as directory:
        pair = Pair(directory)
        apply(pair, dict(scenario, operations=scenario["operations"][:1]))
        for method, xff in changes:
            if method is None:
                first, second = pair.both("setXFilesFactor", xff)
            else:
                first, second = pair.both("setAggregationMethod", method, xff)
            assert first == second
            pair.assert_same_bytes()
            assert same(reference.info(pair.a), ours.info(pair.b))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(-2, 400), st.integers(-2, 50)), max_size=5))
def test_validate_archive_list_matches(archives):
    mine, theirs = list(archives), list(archives)
    first = outcome(reference.validateArchiveList, theirs)
    second = outcome(ours.validateArchiveList, mine)
    if any(step <= 0 or points <= 0 for step, points in archives):
        # whisper accepts some nonsense (zero points, negative steps) that it cannot write;
        # we refuse it up front
        assert second == ("raised", "InvalidConfiguration")
    else:
        assert first == second
    assert mine == theirs  # both sort the caller's list in place


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.text(alphabet="0123456789smhdwyx:", max_size=8),
    st.tuples(st.integers(1, 100), st.sampled_from("smhdwyS"), st.integers(0, 100),
              st.sampled_from(["", "s", "min", "h", "d", "w", "y", "q"]))
    .map(lambda t: f"{t[0]}{t[1]}:{t[2]}{t[3]}"),
))
def test_parse_retention_def_matches(definition):
    first = outcome(reference.parseRetentionDef, definition)
    second = outcome(ours.parseRetentionDef, definition)
    if first[1] == "ZeroDivisionError":  # "0:1d": whisper divides by the zero precision
        assert second == ("raised", "ValueError")
    else:
        assert first == second


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(METHODS), st.lists(st.one_of(st.none(), values), min_size=1, max_size=8))
def test_aggregate_matches(method, neighbors):
    known = [v for v in neighbors if v is not None]
    if not known:
        return
    assert same(outcome(reference.aggregate, method, known, neighbors),
                outcome(ours.aggregate, method, known, neighbors))


def test_create_refusals_match(tmp_path):
    path = str(tmp_path / "x.wsp")
    for archives, xff, method, expected in [
        ([], 0.5, "average", "InvalidConfiguration"),
        ([(60, 10), (60, 20)], 0.5, "average", "InvalidConfiguration"),
        ([(60, 10), (90, 20)], 0.5, "average", "InvalidConfiguration"),
        ([(60, 10), (120, 5)], 0.5, "average", "InvalidConfiguration"),
        ([(60, 1), (120, 50)], 0.5, "average", "InvalidConfiguration"),
        ([(60, 10)], 1.5, "average", "InvalidXFilesFactor"),
        ([(60, 10)], "abc", "average", "InvalidXFilesFactor"),
        ([(60, 10)], 0.5, "median", "InvalidAggregationMethod"),
    ]:
        assert outcome(ours.create, path, archives, xff, method) == ("raised", expected)
        assert not os.path.exists(path)  # refused before anything was written
        assert outcome(reference.create, path, list(archives), xff, method) == ("raised", expected)
        if os.path.exists(path):  # whisper leaves an empty file behind for bad xff/method
            os.unlink(path)
    ours.create(path, [(60, 10)])
    assert outcome(ours.create, path, [(60, 10)]) == ("raised", "InvalidConfiguration")
    assert outcome(reference.create, path, [(60, 10)]) == ("raised", "InvalidConfiguration")


def test_module_surface_matches_reference():
    names = [
        "create", "update", "update_many", "fetch", "info", "setAggregationMethod",
        "setXFilesFactor", "validateArchiveList", "parseRetentionDef", "merge", "diff",
        "file_update", "file_update_many", "file_fetch", "file_merge", "file_diff", "aggregate",
        "WhisperException", "InvalidConfiguration", "InvalidAggregationMethod",
        "InvalidTimeInterval", "InvalidXFilesFactor", "TimestampNotCovered", "CorruptWhisperFile",
        "longFormat", "longSize", "floatFormat", "floatSize", "valueFormat", "valueSize",
        "pointFormat", "pointSize", "metadataFormat", "metadataSize", "archiveInfoFormat",
        "archiveInfoSize", "LOCK", "AUTOFLUSH", "CACHE_HEADERS", "FADVISE_RANDOM",
        "UnitMultipliers", "getUnitString",
    ]
    import inspect

    for name in names:
        theirs, mine = getattr(reference, name), getattr(ours, name)
        if inspect.isfunction(theirs):
            assert list(inspect.signature(mine).parameters) == list(
                inspect.signature(theirs).parameters), name
        elif not inspect.isclass(theirs):
            assert mine == theirs, name
    assert dict(ours.aggregationTypeToMethod) == reference.aggregationTypeToMethod
    assert dict(ours.aggregationMethodToType) == reference.aggregationMethodToType
    assert list(ours.aggregationMethods) == list(reference.aggregationMethods)
    assert issubclass(ours.CorruptWhisperFile, ours.WhisperException)
    error = ours.CorruptWhisperFile("bad", "/x.wsp")
    assert (error.error, error.path, str(error)) == ("bad", "/x.wsp", "bad (/x.wsp)")
