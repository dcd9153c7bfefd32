"""WhisperStore's mapped files: same bytes as pwrite and whisper.py, and safe when the file
changes underneath (replaced, truncated, holes punched) or cannot be mapped."""
import ctypes
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import native.whisper_kernels as compiled
import numpy as np
import pytest
import whisper as reference
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_whisper_strategies import BASE_NOW, METHODS, archive_lists, point_batches

from storage import whisper as ours
from storage.whisper import CorruptWhisperFile, batch, kernels
from storage.whisper import kernels_py as twin
from storage.whisper.batch import WhisperStore

ARCHIVES = [(60, 10), (300, 10)]
REPO = Path(__file__).resolve().parents[2]


def handle_of(store, path):
    """The store's cached handle for `path` (mapped or on a descriptor), or None."""
    key = os.fspath(path)
    return store._mappings.get(key) or store._descriptors.get(key)


def write_one(store, path, value, now=BASE_NOW):
    return store.write(path, np.array([now]), np.array([float(value)]), now=now)


def last_value(path, now=BASE_NOW):
    return reference.fetch(str(path), now - 60, now, now=now)[1][-1]


def mappings_of(path) -> int:
    """How many of this process's memory areas map `path` (also a file since replaced)."""
    with open("/proc/self/maps") as maps:
        return sum(1 for line in maps if f" {os.fspath(path)}" in line)


def test_non_sparse_files_are_mapped_without_a_descriptor(tmp_path):
    path = tmp_path / "m.wsp"
    before = len(os.listdir("/proc/self/fd"))
    with WhisperStore() as store:
        store.create(path, ARCHIVES, 0.5, "sum")
        write_one(store, path, 1.0)
        assert handle_of(store, path).mapped
        assert len(os.listdir("/proc/self/fd")) == before
        assert mappings_of(path) == 1
    assert mappings_of(path) == 0  # close() unmaps
    assert last_value(path) == 1.0


def test_sparse_files_use_the_descriptor_path(tmp_path):
    archives = [(60, 1000), (300, 1000)]  # 24 KB: room for holes
    whisper_sparse = tmp_path / "whisper.wsp"
    reference.create(str(whisper_sparse), list(archives), 0.5, "sum", sparse=True)
    with WhisperStore(sparse=True) as store:
        store.create(tmp_path / "ours.wsp", archives, 0.5, "sum")
        for path in (whisper_sparse, tmp_path / "ours.wsp"):
            status = os.stat(path)
            assert status.st_blocks * 512 < status.st_size  # really has a hole
            write_one(store, path, 2.0)
            assert not handle_of(store, path).mapped
            assert mappings_of(path) == 0
            assert last_value(path) == 2.0
    assert whisper_sparse.read_bytes() == (tmp_path / "ours.wsp").read_bytes()


def test_a_file_replaced_underneath_gets_the_next_write(tmp_path):
    path = tmp_path / "m.wsp"
    with WhisperStore() as store:
        store.revalidate_after = 0
        store.create(path, ARCHIVES, 0.5, "sum")
        write_one(store, path, 1.0)
        old = handle_of(store, path)
        assert old.mapped
        replacement = tmp_path / "m.wsp.tmp"
        reference.create(str(replacement), [(60, 30), (300, 10)], 0.5, "sum")
        os.replace(replacement, path)  # whisper-resize's last step
        write_one(store, path, 5.0)
        assert last_value(path) == 5.0
        assert store.info(path)["archives"][0]["points"] == 30
        assert old.retired and handle_of(store, path) is not old
        assert mappings_of(path) == 1  # the old inode's mapping is gone


def test_a_replaced_file_is_written_before_revalidation_only_within_the_window(tmp_path):
    path = tmp_path / "m.wsp"
    with WhisperStore() as store:
        store.revalidate_after = 3600
        store.create(path, ARCHIVES, 0.5, "sum")
        replacement = tmp_path / "new.wsp"
        reference.create(str(replacement), list(ARCHIVES), 0.5, "sum")
        os.replace(replacement, path)
        write_one(store, path, 1.0)  # trusted handle: lands in the old, unlinked inode
        assert reference.fetch(str(path), BASE_NOW - 60, BASE_NOW, now=BASE_NOW)[1][-1] is None
        store.revalidate_after = 0
        write_one(store, path, 2.0)
        assert last_value(path) == 2.0


def run_isolated(code: str) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter, so a SIGBUS fails this test instead of killing
    pytest."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO,
                          capture_output=True, text=True, timeout=60)


def test_a_truncated_mapped_file_is_corrupt_not_a_crash(tmp_path):
    path = tmp_path / "m.wsp"
    other = tmp_path / "other.wsp"
    result = run_isolated(f"""
        import os
        import numpy as np
        from storage.whisper import CorruptWhisperFile
        from storage.whisper.batch import WhisperStore
        one = (np.array([{BASE_NOW}]), np.array([1.0]))
        store = WhisperStore()
        store.revalidate_after = 0
        for name in ({str(path)!r}, {str(other)!r}):
            store.create(name, [(60, 1000), (300, 1000)], 0.5, "sum")
            store.write(name, *one, now={BASE_NOW})
        assert store._mappings[{str(path)!r}].mapped
        os.truncate({str(path)!r}, 100)  # inside the first archive: later pages are gone
        for call in (lambda: store.write({str(path)!r}, *one, now={BASE_NOW}),
                     lambda: store.fetch({str(path)!r}, {BASE_NOW} - 600, now={BASE_NOW}),
                     lambda: store.info({str(path)!r})):
            try:
                call()
            except CorruptWhisperFile as error:
                assert error.path == {str(path)!r}, error
            else:
                raise AssertionError("a truncated file was used")
        store.write({str(other)!r}, *one, now={BASE_NOW})  # the store carries on
        store.close()
        print("survived")
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "survived"


def test_a_mapped_file_that_shrank_is_refused_with_the_reason(tmp_path):
    path = tmp_path / "m.wsp"
    with WhisperStore() as store:
        store.revalidate_after = 0
        store.create(path, ARCHIVES, 0.5, "sum")
        size = os.path.getsize(path)
        os.truncate(path, size - 12)
        with pytest.raises(CorruptWhisperFile, match=f"shrank from {size} to {size - 12}"):
            write_one(store, path, 1.0)
        assert handle_of(store, path) is None  # the mapping was dropped
        with pytest.raises(CorruptWhisperFile):  # reopened: now the header says so
            write_one(store, path, 1.0)


def punch_hole(path, offset, length):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
    fd = os.open(path, os.O_RDWR)
    try:
        if libc.fallocate(fd, 0x01 | 0x02, offset, length) != 0:  # KEEP_SIZE | PUNCH_HOLE
            pytest.skip(f"cannot punch holes here: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(fd)


def test_a_file_that_lost_blocks_moves_to_the_descriptor_path(tmp_path):
    path = tmp_path / "m.wsp"
    with WhisperStore() as store:
        store.revalidate_after = 0
        store.create(path, [(1, 5000)], 0.5, "sum")
        assert handle_of(store, path).mapped
        punch_hole(path, 8192, 8192)
        write_one(store, path, 3.0)
        assert not handle_of(store, path).mapped
    assert last_value(path) == 3.0


def test_the_mapping_cap_is_respected(tmp_path):
    paths = [tmp_path / f"m{i}.wsp" for i in range(10)]
    with WhisperStore(max_mapped_files=3) as store:
        for index, path in enumerate(paths):
            store.create(path, ARCHIVES, 0.5, "sum")
            write_one(store, path, index)
            assert len(store._mappings) <= 3
            assert sum(mappings_of(p) for p in paths) <= 3
        for index, path in enumerate(paths):  # evicted files are mapped again on use
            assert store.fetch(path, BASE_NOW - 120, now=BASE_NOW)[1][-1] == index
        assert sum(mappings_of(p) for p in paths) == 3
        assert not store._descriptors
    assert sum(mappings_of(p) for p in paths) == 0


def test_no_mappings_when_asked_or_when_mapping_is_unsafe_or_fails(tmp_path, monkeypatch):
    path = tmp_path / "m.wsp"
    reference.create(str(path), list(ARCHIVES), 0.5, "sum")
    with WhisperStore(max_mapped_files=0) as store:
        write_one(store, path, 1.0)
        assert not handle_of(store, path).mapped
    monkeypatch.setattr(batch, "MAPPABLE_FILESYSTEMS", frozenset())  # e.g. btrfs
    with WhisperStore() as store:
        write_one(store, path, 2.0)
        assert not handle_of(store, path).mapped
    monkeypatch.undo()

    def no_address_space(fd, size):
        raise OSError(12, "Cannot allocate memory")  # what mmap says at vm.max_map_count

    monkeypatch.setattr(kernels, "map_file", no_address_space)
    with WhisperStore() as store:
        write_one(store, path, 3.0)
        assert not handle_of(store, path).mapped
    assert last_value(path) == 3.0
    with pytest.raises(ValueError, match="max_mapped_files=-1"):
        WhisperStore(max_mapped_files=-1)


def test_other_processes_see_mapped_writes_and_the_store_sees_theirs(tmp_path):
    path = tmp_path / "m.wsp"
    with WhisperStore() as store:
        store.create(path, ARCHIVES, 0.5, "sum")
        write_one(store, path, 7.0)
        assert handle_of(store, path).mapped
        result = run_isolated(f"""
            import whisper
            print(whisper.fetch({str(path)!r}, {BASE_NOW - 60}, {BASE_NOW}, now={BASE_NOW})[1][-1])
            whisper.update_many({str(path)!r}, [({BASE_NOW - 60}, 9.0)], now={BASE_NOW})
        """)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "7.0"
        assert store.fetch(path, BASE_NOW - 120, now=BASE_NOW)[1][-2] == 9.0


def test_defaults_follow_the_process_limits(monkeypatch):
    monkeypatch.setattr(batch.resource, "getrlimit", lambda which: (1024, 4096))
    assert batch.default_max_open_files() == 512
    monkeypatch.setattr(batch.resource, "getrlimit", lambda which: (100, 100))
    assert batch.default_max_open_files() == 64
    monkeypatch.setattr(batch.resource, "getrlimit",
                        lambda which: (batch.resource.RLIM_INFINITY, batch.resource.RLIM_INFINITY))
    assert batch.default_max_open_files() == 65_536
    max_map_count = int(Path("/proc/sys/vm/max_map_count").read_text())
    assert batch.default_max_mapped_files() == min(max_map_count // 2, 65_536)
    store = WhisperStore()
    assert store.max_mapped_files == batch.default_max_mapped_files()


def test_creates_allocate_every_block_unless_sparse(tmp_path):
    archives = [(10, 2160), (60, 10080)]
    reference.create(str(tmp_path / "whisper.wsp"), list(archives), 0.5, "max")
    ours.create(str(tmp_path / "api.wsp"), list(archives), 0.5, "max")
    ours.create(str(tmp_path / "fallocate.wsp"), list(archives), 0.5, "max", useFallocate=True)
    ours.create(str(tmp_path / "sparse.wsp"), list(archives), 0.5, "max", sparse=True)
    with WhisperStore() as store:
        store.create(tmp_path / "store.wsp", archives, 0.5, "max")
    expected = (tmp_path / "whisper.wsp").read_bytes()
    for name in ("api", "fallocate", "sparse", "store"):
        assert (tmp_path / f"{name}.wsp").read_bytes() == expected, name
        status = os.stat(tmp_path / f"{name}.wsp")
        assert (status.st_blocks * 512 >= status.st_size) == (name != "sparse"), name


def test_mapping_unmaps_only_when_no_buffer_is_exported(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(bytes(range(256)) * 20)
    fd = os.open(path, os.O_RDWR)
    try:
        mapping = compiled.map_file(fd, 5000)
    finally:
        os.close(fd)  # the mapping keeps working without the descriptor
    assert len(mapping) == 5000 and compiled.read_at(mapping, 3, 256) == b"\x00\x01\x02"
    view = memoryview(mapping)
    mapping.close()
    assert mapping.closed and view[1] == 1  # still mapped for the view's holder
    with pytest.raises(ValueError, match="closed mapping"):
        compiled.read_at(mapping, 1, 0)
    view.release()
    with pytest.raises(ValueError, match="size=0"):
        compiled.map_file(0, 0)


@pytest.mark.parametrize("implementation", [twin, compiled], ids=["twin", "compiled"])
def test_mapped_targets_are_bounds_checked(tmp_path, implementation):
    path = tmp_path / "f"
    path.write_bytes(bytes(100))
    fd = os.open(path, os.O_RDWR)
    try:
        mapping = implementation.map_file(fd, 100)
        with pytest.raises(EOFError, match="cannot write bytes=4 at offset=98: the mapped file ends"):
            implementation.write_at(mapping, b"abcd", 98)
        with pytest.raises(EOFError, match="cannot read bytes=4 at offset=98"):
            implementation.read_at(mapping, 4, 98)
        with pytest.raises(EOFError):
            implementation.read_at(mapping, 1, -1)
        implementation.write_at(mapping, b"ab", 98)
        assert implementation.read_at(fd, 2, 98) == b"ab"  # one page cache
        assert implementation.filesystem_magic(fd) == compiled.filesystem_magic(fd)
        mapping.close()
    finally:
        os.close(fd)
    assert path.read_bytes() == bytes(98) + b"ab"


@pytest.mark.parametrize("implementation", [twin, compiled], ids=["twin", "compiled"])
def test_allocate_gives_zeroed_allocated_blocks_after_existing_bytes(tmp_path, implementation):
    path = tmp_path / "f"
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    try:
        implementation.write_at(fd, b"header", 0)
        implementation.allocate(fd, 6, 300_001)
        status = os.fstat(fd)
    finally:
        os.close(fd)
    assert path.read_bytes() == b"header" + bytes(300_001)
    assert status.st_blocks * 512 >= status.st_size == 300_007


SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@st.composite
def consecutive_points(draw, archives):
    """A run of consecutive finest-archive intervals, often longer than a ring and often in
    the future: whisper spills such a run past its ring, and past the file's end when the
    ring is the last one."""
    step, points = archives[0]
    max_retention = max(s * p for s, p in archives)
    first_age = draw(st.integers(-max_retention, max_retention))
    length = draw(st.integers(1, 2 * sum(p for _, p in archives) + 3))
    return [(first_age - index * step, draw(values_of_runs), 0.0) for index in range(length)]


values_of_runs = st.sampled_from([1.0, -2.5, 0.0, 1e9])


@st.composite
def runs(draw):
    archives = draw(archive_lists())
    max_retention = max(s * p for s, p in archives)
    batch = st.one_of(point_batches(max_retention, max_size=60), consecutive_points(archives))
    return (archives, draw(st.sampled_from(METHODS)), draw(st.floats(0, 1)),
            draw(st.lists(st.tuples(batch, st.integers(0, max_retention)), min_size=1, max_size=5)))


@SETTINGS
@given(runs())
def test_mapped_pwrite_and_whisper_files_stay_byte_identical(run):
    """Batches of any size (also more future points than a ring holds, which whisper spills
    past the ring and even past the end of the file) through a mapped file, through the
    descriptor path and through whisper.py: the same bytes and the same fetches."""
    archives, method, xff, batches = run
    with tempfile.TemporaryDirectory() as directory, WhisperStore() as mapped, \
            WhisperStore(max_mapped_files=0) as unmapped:
        paths = {name: os.path.join(directory, f"{name}.wsp") for name in ("whisper", "mmap", "pwrite")}
        reference.create(paths["whisper"], list(archives), xff, method)
        mapped.create(paths["mmap"], archives, xff, method)
        unmapped.create(paths["pwrite"], archives, xff, method)
        assert handle_of(mapped, paths["mmap"]).mapped
        assert not handle_of(unmapped, paths["pwrite"]).mapped
        now = BASE_NOW
        for batch_points, advance in batches:
            latest = {}
            for age, value, _ in batch_points:
                latest.pop(now - age, None)
                latest[now - age] = value  # the store keeps the last arrival, as carbon
            stamps = np.array(list(latest), dtype=np.int64)
            values = np.array(list(latest.values()))
            reference.update_many(paths["whisper"], list(latest.items()), now=now)
            assert mapped.write(paths["mmap"], stamps, values, now=now) == \
                unmapped.write(paths["pwrite"], stamps, values, now=now)
            contents = {name: Path(path).read_bytes() for name, path in paths.items()}
            assert contents["mmap"] == contents["whisper"] == contents["pwrite"]
            for store, name in ((mapped, "mmap"), (unmapped, "pwrite")):
                ours_result = store.fetch(paths[name], now - max(s * p for s, p in archives), now=now)
                theirs = reference.fetch(paths["whisper"], now - max(s * p for s, p in archives), now=now)
                assert ours_result[0] == theirs[0]
                assert [None if v != v else v for v in ours_result[1].tolist()] == \
                    [None if v is None or v != v else v for v in theirs[1]]
            now += advance


def test_file_status_matches_the_twin_and_os_stat(tmp_path):
    target = tmp_path / "f.wsp"
    target.write_bytes(bytes(5000))
    (tmp_path / "link.wsp").symlink_to(target)
    for path in (target, str(tmp_path / "link.wsp"), os.fsencode(tmp_path)):
        status = os.stat(path)
        expected = (status.st_dev, status.st_ino, status.st_size, status.st_blocks,
                    Path(os.fsdecode(path)).is_file())
        assert compiled.file_status(path) == twin.file_status(path) == expected
    for implementation in (twin, compiled):
        with pytest.raises(FileNotFoundError):
            implementation.file_status(tmp_path / "missing.wsp")
