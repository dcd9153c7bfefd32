"""The compiled Whisper kernels against their pure twin: same inputs, same bytes, same answers."""
import math
import os
import tempfile

import native.whisper_kernels as compiled  # no fallback: a missing build fails here
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_whisper_strategies import BASE_NOW, METHODS, archive_lists, point_batches, values

from storage.whisper import file, format, kernels
from storage.whisper import kernels_py as twin

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def test_known_bases_save_reads_and_give_the_same_bytes(tmp_path):
    """A warm base cache changes no byte, also across a batch that overflows its ring (more
    future points than the ring holds: whisper's overrun into the next archive), after which
    every cached base is either unknown or what the file holds."""
    header = format.build_header(((10, 6), (60, 5)), 0.0, 2)
    outputs = []
    for warm in (False, True):
        fd = file.create_file(tmp_path / f"{warm}.wsp", header)
        bases = file.unknown_bases(header)
        try:
            for step in range(20):
                if not warm:
                    bases[:] = 0
                stamps = np.array([BASE_NOW + 10 * step], dtype=np.int64)
                compiled.update_many(fd, header.table, 2, 0.0, stamps, np.array([1.0]), BASE_NOW, bases)
            overrun = np.arange(BASE_NOW + 300, BASE_NOW + 300 - 10 * 14, -10, dtype=np.int64)
            compiled.update_many(fd, header.table, 2, 0.0, overrun, np.ones(14), BASE_NOW, bases)
            on_disk = [format.POINT.unpack(kernels.read_at(fd, 12, a.offset))[0] for a in header.archives]
            assert all(known in (0, disk) for known, disk in zip(bases, on_disk, strict=True))
            outputs.append(kernels.read_at(fd, os.fstat(fd).st_size, 0))
        finally:
            os.close(fd)
    assert outputs[0] == outputs[1]


def test_the_compiled_kernels_are_the_ones_in_use():
    assert kernels.NATIVE
    assert kernels.update_many is compiled.update_many


def outcome(call, *args):
    try:
        return ("ok", call(*args))
    except Exception as error:  # noqa: BLE001 - the exception's kind is the answer
        return ("raised", type(error).__name__, str(error))


class TwinFiles:
    """One empty Whisper file per implementation, driven with identical calls, through
    descriptors or (`mapped`) through each implementation's own mapping of its file."""

    def __init__(self, directory, archives, method, xff, mapped=False):
        self.header = format.build_header(tuple(archives), xff, format.AGGREGATION_METHOD_TO_TYPE[method])
        self.paths = [os.path.join(directory, name) for name in ("twin.wsp", "compiled.wsp")]
        self.fds = [file.create_file(path, self.header) for path in self.paths]
        self.bases = [file.unknown_bases(self.header) for _ in self.paths]
        self.targets = list(self.fds)
        if mapped:
            size = os.fstat(self.fds[0]).st_size
            self.targets = [twin.map_file(self.fds[0], size), compiled.map_file(self.fds[1], size)]

    def close(self):
        for target in self.targets:
            if not isinstance(target, int):
                target.close()
        for fd in self.fds:
            os.close(fd)

    def call(self, name, *args):
        """Run writing kernel `name` on both files, each with its own base cache."""
        first = outcome(getattr(twin, name), self.targets[0], *args, self.bases[0])
        second = outcome(getattr(compiled, name), self.targets[1], *args, self.bases[1])
        np.testing.assert_array_equal(self.bases[0], self.bases[1])
        return first, second

    def forget_bases(self):
        for bases in self.bases:
            bases[:] = 0

    def same_bytes(self):
        contents = []
        for path in self.paths:
            with open(path, "rb") as handle:
                contents.append(handle.read())
        return contents[0] == contents[1]


@st.composite
def kernel_runs(draw):
    archives = draw(archive_lists())
    max_retention = max(s * p for s, p in archives)
    call = st.one_of(
        st.tuples(st.just("update_many"), point_batches(max_retention), st.booleans()),
        st.tuples(st.just("archive_update_many"), point_batches(max_retention),
                  st.integers(0, len(archives) - 1)),
        st.tuples(st.just("fetch_archive"), st.integers(0, len(archives) - 1),
                  st.integers(-2 * max_retention, 2 * max_retention), st.integers(1, 3 * max_retention)),
    )
    return (archives, draw(st.sampled_from(METHODS)), draw(st.floats(0, 1)),
            draw(st.lists(st.tuples(call, st.integers(0, max_retention), st.booleans()),
                          min_size=1, max_size=8)), draw(st.booleans()))


def arrays(batch, now, newest_first):
    timestamps = np.array([now - age for age, _, _ in batch], dtype=np.int64)
    vals = np.array([value for _, value, _ in batch], dtype=np.float64)
    if newest_first:
        return file.newest_first(timestamps, vals, last_wins=False)
    return timestamps, vals  # arrival order: file_update_many takes whatever it is given


@SETTINGS
@given(kernel_runs())
def test_compiled_kernels_match_the_twin(run):
    archives, method, xff, calls, mapped = run
    now = BASE_NOW
    with tempfile.TemporaryDirectory() as directory:
        files = TwinFiles(directory, archives, method, xff, mapped)
        header = files.header
        try:
            for (name, *args), advance, forget in calls:
                if forget:  # a fresh call through the module API knows no base
                    files.forget_bases()
                if name == "update_many":
                    batch, newest = args
                    result = files.call(name, header.table, header.aggregation_type,
                                        header.x_files_factor, *arrays(batch, now, newest), now)
                elif name == "archive_update_many":
                    batch, index = args
                    timestamps, vals = arrays(batch, now, True)
                    result = files.call(name, header.table, header.aggregation_type,
                                        header.x_files_factor, index, timestamps[::-1].copy(),
                                        vals[::-1].copy())
                else:
                    index, start, length = args
                    archive = header.archives[index]
                    step = archive.seconds_per_point
                    start = now - start
                    outputs = []
                    for _ in range(2):
                        outputs.append((np.zeros(archive.points + length // step + 2),
                                        np.zeros(archive.points + length // step + 2, np.uint8)))
                    first = outcome(twin.fetch_archive, files.targets[0], archive.offset, step,
                                    archive.points, start, start + length, *outputs[0])
                    second = outcome(compiled.fetch_archive, files.targets[1], archive.offset, step,
                                     archive.points, start, start + length, *outputs[1])
                    result = (first, second)
                    if first[0] == "ok":
                        count = first[1]
                        np.testing.assert_array_equal(outputs[0][1][:count], outputs[1][1][:count])
                        assert outputs[0][0][:count].tobytes() == outputs[1][0][:count].tobytes()
                assert result[0] == result[1]
                assert files.same_bytes()
                now += advance
        finally:
            files.close()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**32 - 1), values), max_size=20))
def test_pack_and_unpack_match(points):
    timestamps = np.array([t for t, _ in points], dtype=np.int64)
    vals = np.array([v for _, v in points], dtype=np.float64)
    packed = twin.pack_points(timestamps, vals)
    assert compiled.pack_points(timestamps, vals) == packed
    assert packed == b"".join(format.POINT.pack(t, v) for t, v in points)
    for implementation in (twin, compiled):
        got_timestamps, got_values = implementation.unpack_points(packed + b"\x01\x02")
        np.testing.assert_array_equal(got_timestamps, timestamps)
        assert got_values.tobytes() == vals.tobytes()


@pytest.mark.parametrize("timestamp", [-1, 2**32])
def test_unrepresentable_timestamps_overflow_in_both(timestamp):
    for implementation in (twin, compiled):
        with pytest.raises(OverflowError, match=f"timestamp={timestamp}"):
            implementation.pack_points(np.array([timestamp]), np.array([1.0]))


def test_short_reads_raise_eof_in_both(tmp_path):
    path = tmp_path / "short"
    path.write_bytes(b"\x00" * 30)
    fd = os.open(path, os.O_RDWR)
    try:
        for implementation in (twin, compiled):
            assert implementation.read_at(fd, 10, 20) == b"\x00" * 10
            with pytest.raises(EOFError, match="offset=25"):
                implementation.read_at(fd, 10, 25)
            with pytest.raises(EOFError):
                implementation.fetch_archive(fd, 28, 60, 5, 0, 600, np.zeros(10), np.zeros(10, np.uint8))
    finally:
        os.close(fd)


def test_fill_zeros_and_write_at_match(tmp_path):
    contents = []
    for implementation in (twin, compiled):
        path = tmp_path / implementation.__name__
        fd = os.open(path, os.O_RDWR | os.O_CREAT)
        try:
            implementation.write_at(fd, b"\xff" * 200_000, 0)
            implementation.fill_zeros(fd, 7, 150_001)
            implementation.write_at(fd, b"abc", 199_999)
        finally:
            os.close(fd)
        contents.append(path.read_bytes())
    assert contents[0] == contents[1]
    assert contents[0][:7] == b"\xff" * 7 and contents[0][7:150_008] == bytes(150_001)
    assert len(contents[0]) == 200_002


@pytest.mark.parametrize("method", METHODS)
def test_propagation_aggregates_nan_and_signed_zero_like_python(tmp_path, method):
    """max/min/absmax/absmin keep Python's first-wins comparisons with NaN; avg_zero counts
    -0.0 as zero. One higher archive of 4 points feeds each lower point."""
    neighbors = [math.nan, -0.0, 3.0, -7.0]
    contents = []
    for implementation in (twin, compiled):
        header = format.build_header(((1, 8), (4, 4)), 0.0, format.AGGREGATION_METHOD_TO_TYPE[method])
        fd = file.create_file(tmp_path / f"{implementation.__name__}.wsp", header)
        try:
            implementation.update_many(fd, header.table, header.aggregation_type, 0.0,
                                       np.array([103, 102, 101, 100], dtype=np.int64),
                                       np.array(neighbors[::-1]), 104, file.unknown_bases(header))
            contents.append(kernels.read_at(fd, header.archives[1].size, header.archives[1].offset))
        finally:
            os.close(fd)
    assert contents[0] == contents[1]
    stored = format.POINT.unpack_from(contents[0])
    expected = format.aggregate(method, neighbors, neighbors)
    assert stored[0] == 100 and repr(stored[1]) == repr(expected)


@pytest.mark.parametrize("steps", [(10, 60, 30), (10, 60, 90), (60, 10, 600)])
def test_hand_made_archive_orders_match_the_twin_and_stay_in_bounds(tmp_path, steps):
    """Files whisper would never create (unsorted steps, steps that do not divide) still
    parse; the kernels must then do what whisper's arithmetic does, within the buffers."""
    archives = tuple((step, 40) for step in steps)
    offset = format.METADATA_SIZE + format.ARCHIVE_INFO_SIZE * len(archives)
    infos = []
    for step, points in archives:
        infos.append(format.ArchiveInfo(offset, step, points))
        offset += points * format.POINT_SIZE
    header = format.Header(2, max(a.retention for a in infos), 0.0, tuple(infos))
    stamps = np.arange(BASE_NOW - 390, BASE_NOW, 10, dtype=np.int64)[::-1].copy()
    contents = []
    for implementation in (twin, compiled):
        fd = file.create_file(tmp_path / f"{implementation.__name__}.wsp", header)
        try:
            for _ in range(2):
                implementation.update_many(fd, header.table, 2, 0.0, stamps, np.ones(len(stamps)),
                                           BASE_NOW, file.unknown_bases(header))
            contents.append(kernels.read_at(fd, offset, 0))
        finally:
            os.close(fd)
    assert contents[0] == contents[1]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 700), st.integers(1, 30)), min_size=1, max_size=4),
       st.sampled_from(METHODS), st.floats(0, 1),
       st.lists(st.tuples(st.integers(-200, 3000), values), min_size=1, max_size=25))
def test_any_parseable_archive_table_matches_the_twin(tmp_path_factory, archives, method, xff, points):
    """Archive tables whisper would refuse to create but will happily read (any steps, any
    order, rings shorter than a step ratio): compiled and twin still agree byte for byte."""
    offset = format.METADATA_SIZE + format.ARCHIVE_INFO_SIZE * len(archives)
    infos = []
    for step, count in archives:
        infos.append(format.ArchiveInfo(offset, step, count))
        offset += count * format.POINT_SIZE
    header = format.Header(format.AGGREGATION_METHOD_TO_TYPE[method],
                           max(a.retention for a in infos), xff, tuple(infos))
    stamps = np.array([BASE_NOW - age for age, _ in points], dtype=np.int64)
    stamps, vals = file.newest_first(stamps, np.array([v for _, v in points]), last_wins=False)
    directory = tmp_path_factory.mktemp("tables")
    contents = []
    for implementation in (twin, compiled):
        fd = file.create_file(directory / f"{implementation.__name__}.wsp", header)
        try:
            result = outcome(implementation.update_many, fd, header.table, header.aggregation_type,
                             header.x_files_factor, stamps, vals, BASE_NOW, file.unknown_bases(header))
            contents.append((result, kernels.read_at(fd, os.fstat(fd).st_size, 0)))
        finally:
            os.close(fd)
    assert contents[0] == contents[1]


def _last_wins_reference(timestamps, vals):
    """Carbon's rule spelled out: each timestamp's last arrival, newest timestamp first."""
    last = {}
    for stamp, value in zip(timestamps, vals, strict=True):
        last[int(stamp)] = value
    ordered = sorted(last, reverse=True)
    return ordered, [last[stamp] for stamp in ordered]


@SETTINGS
@given(st.lists(st.tuples(st.integers(-2**40, 2**40), values), max_size=40),
       st.sampled_from(["int", "float", "fraction"]), st.booleans())
def test_newest_first_keeps_each_timestamps_last_arrival(points, kind, few_stamps):
    if few_stamps:  # many duplicates
        points = [(t % 5, v) for t, v in points]
    stamps = np.array([t for t, _ in points], dtype=np.int64)
    vals = np.array([v for _, v in points], dtype=np.float64)
    given_stamps = {"int": stamps, "float": stamps.astype(np.float64),
                    "fraction": stamps.astype(np.float64) + np.where(stamps < 0, -0.75, 0.75)}[kind]
    expected = _last_wins_reference(stamps, vals)
    for implementation in (twin, compiled):
        got_stamps, got_values = implementation.newest_first(given_stamps, vals)
        assert got_stamps.dtype == np.int64 and got_values.dtype == np.float64
        assert got_stamps.tolist() == expected[0]
        assert got_values.tobytes() == np.array(expected[1], dtype=np.float64).tobytes()


def test_newest_first_increasing_and_shuffled_runs_agree_with_file_order():
    rng = np.random.default_rng(7)
    stamps = np.arange(1_000, 1_600, 10, dtype=np.int64)
    for order in (stamps, stamps[::-1], rng.permutation(np.repeat(stamps, 3))):
        vals = rng.random(len(order))
        want = file.newest_first(order, vals, last_wins=True)
        for implementation in (twin, compiled):
            got = implementation.newest_first(order.astype(np.float64), vals)
            np.testing.assert_array_equal(got[0], want[0])
            assert got[1].tobytes() == want[1].tobytes()


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_newest_first_refuses_non_finite_timestamps_in_both(bad):
    for implementation in (twin, compiled):
        with pytest.raises(ValueError, match="not all timestamps are finite"):
            implementation.newest_first(np.array([1.0, bad]), np.array([1.0, 2.0]))
        with pytest.raises(ValueError, match="differ in length"):
            implementation.newest_first(np.array([1.0]), np.array([1.0, 2.0]))
        empty = implementation.newest_first(np.array([], dtype=np.int64), np.array([]))
        assert [len(part) for part in empty] == [0, 0]


def test_newest_first_out_of_range_floats_agree_in_both():
    stamps = np.array([1e300, -1e300, 2.0**63, -(2.0**63), 12.9])
    with np.errstate(invalid="ignore"):
        want = sorted(set(stamps.astype(np.int64).tolist()), reverse=True)  # numpy's cast
    for implementation in (twin, compiled):
        assert implementation.newest_first(stamps, np.arange(5.0))[0].tolist() == want


@pytest.mark.parametrize("sparse", [False, True])
def test_create_file_matches_the_twin_and_whisper_create(tmp_path, sparse):
    import whisper

    header = file.plan_create([(10, 360), (60, 1440)], 0.5, "average")
    reference = tmp_path / "reference.wsp"
    whisper.create(str(reference), [(10, 360), (60, 1440)], 0.5, "average", sparse=sparse)
    for implementation in (twin, compiled):
        path = tmp_path / implementation.__name__ / "new" / "m.wsp"
        os.makedirs(path.parent.parent)
        fd, device, inode, size, blocks = implementation.create_file(
            str(path), header.packed, header.table, header.data_end, sparse, True)
        try:
            status = os.fstat(fd)
            assert (device, inode, size, blocks) == (status.st_dev, status.st_ino, status.st_size,
                                                     status.st_blocks)
            assert os.pread(fd, 1, 0) == header.packed[:1]  # open for reading and writing
            os.pwrite(fd, header.packed[:1], 0)
        finally:
            os.close(fd)
        assert path.read_bytes() == reference.read_bytes()
        assert (blocks * 512 >= size) is not sparse  # fully allocated unless sparse
        with pytest.raises(FileExistsError):
            implementation.create_file(str(path), header.packed, header.table, header.data_end,
                                       sparse, True)
        with pytest.raises(FileNotFoundError):  # one folder level only
            implementation.create_file(str(tmp_path / implementation.__name__ / "a" / "b" / "m.wsp"),
                                       header.packed, header.table, header.data_end, sparse, True)


def test_a_create_failing_half_way_leaves_no_file(tmp_path):
    header = file.plan_create([(60, 10)], 0.5, "average")
    for implementation in (twin, compiled):
        path = tmp_path / f"{implementation.__name__}.wsp"
        with pytest.raises(OSError):  # no filesystem gives a file this many blocks
            implementation.create_file(str(path), header.packed, header.table, 1 << 62, False, False)
        assert not path.exists()
