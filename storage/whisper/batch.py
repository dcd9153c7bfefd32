"""WhisperStore: the carbon daemon's writer (and a fast reader) for many Whisper files.

Each write hands all pending points of one metric to the kernels in one call, with a cached
parsed header and a cache of each archive's base timestamp, so a warm write costs only the
reads and writes of its points. Where those go depends on the file:

- **Mapped** (the usual case): a file whose every block is allocated (created non-sparse or
  with fallocate, by this store or by whisper.py), on a filesystem that overwrites in place
  (`MAPPABLE_FILESYSTEMS`), is mapped MAP_SHARED once and its descriptor closed. A
  1-point write is then a few memory loads and stores, no system call. Linux keeps mmap
  and read/write coherent (one page cache), so whisper.py in other processes reads and
  writes the same bytes. Mappings live in an LRU of `max_mapped_files` (default: half of
  vm.max_map_count); they hold no descriptor, so RLIMIT_NOFILE stops mattering.
- **Descriptor**: everything else (sparse files, other filesystems, read-only files, a
  failed mmap) keeps an open descriptor and uses pread/pwrite, in an LRU of
  `max_open_files` (default: half the process's RLIMIT_NOFILE soft limit).

Why only fully allocated files on in-place filesystems: a store into a hole of a mapped
file (or into a copy-on-write extent) needs a new block, and when the disk is full the
kernel answers with SIGBUS, which kills the daemon, where a pwrite would just fail with
ENOSPC. For the same reason nothing is ever touched past the end of a mapping: the
kernels bounds-check every access against the size the file had when it was mapped,
and a write batch that could run past the end of the file (whisper lets a run of more
future points than a ring holds spill onward) goes through a descriptor instead.

Staying correct while other tools work on the files: a handle not checked for
`revalidate_after` seconds (default 1) is checked before use with one stat of the path. A
file replaced or removed (whisper-resize renames a new file over the old one; rm) is
reopened; a mapped file that shrank (truncated in place) is refused as CorruptWhisperFile
and its mapping dropped before anything touches the lost pages; one that lost allocated
blocks is reopened on the descriptor path; changed header bytes (whisper-set-aggregation-
method) are re-parsed. That leaves a window of at most `revalidate_after`: points written
between whisper-resize's copy and its rename are lost (as with whisper.py itself), and a
file truncated in place inside the window would still fault on its lost pages (no Whisper
tool truncates a file in place).

Thread safety: one writer thread plus any number of reader threads. The LRUs are guarded by
a lock; a handle evicted while another thread still uses it is closed (or unmapped) by its
last user.
"""
from __future__ import annotations

import os
import resource
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import file, kernels
from .errors import CorruptWhisperFile, InvalidConfiguration
from .format import Header

_OPEN_FLAGS = getattr(os, "O_CLOEXEC", 0)
_INT64 = np.dtype(np.int64)
_FLOAT64 = np.dtype(np.float64)

# statfs f_type of filesystems that overwrite allocated blocks in place, so a store into a
# mapped, fully allocated file never needs a new block (btrfs, zfs, and xfs's reflinked
# extents copy on write, and could SIGBUS on a full disk).
MAPPABLE_FILESYSTEMS = frozenset({
    0xEF53,      # ext2, ext3, ext4
    0x01021994,  # tmpfs
})

_BLOCK_UNIT = 512  # st_blocks counts 512-byte units
_MAX_FOLDERS = 1 << 16  # remembered parent folders (forgotten all at once past this)


def default_max_open_files() -> int:
    """Half the process's open-file soft limit (the rest is left for sockets and the like),
    between 64 and 65,536."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 20
    return max(64, min(soft // 2, 65_536))


def default_max_mapped_files() -> int:
    """Half of vm.max_map_count (each mapping is one of the process's memory areas, and
    malloc, libraries and threads need the rest), at most 65,536."""
    try:
        limit = int(Path("/proc/sys/vm/max_map_count").read_text())
    except (OSError, ValueError):
        limit = 65_530  # Linux's default
    return max(0, min(limit // 2, 65_536))


def fully_allocated(status: os.stat_result) -> bool:
    """Whether every byte of a regular file has a block (no holes), from its stat."""
    return stat.S_ISREG(status.st_mode) and status.st_blocks * _BLOCK_UNIT >= status.st_size


@dataclass(eq=False)
class _Handle:
    """An open file with its parsed header; `users` counts threads inside a call with it.

    `target` is what the kernels work on: the file's Mapping (its descriptor is closed) or
    its open descriptor.
    """

    target: object
    header: Header
    header_bytes: bytes
    identity: tuple[int, int]  # (st_dev, st_ino) of the file the handle is on
    bases: np.ndarray  # the kernels' cache of each archive's slot-0 timestamp
    checked_at: float = field(default_factory=time.monotonic)
    users: int = 0
    retired: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    mapped: bool = field(init=False)
    mapped_size: int = field(init=False)  # bytes mapped; 0 on a descriptor

    def __post_init__(self) -> None:
        self.mapped = not isinstance(self.target, int)
        self.mapped_size = len(self.target) if self.mapped else 0

    def close(self) -> None:
        if self.mapped:
            self.target.close()
        else:
            os.close(self.target)


class WhisperStore:
    """Write and read Whisper files by path, byte-identical to whisper.update_many / fetch.

    `max_open_files` bounds open descriptors and `max_mapped_files` mappings (None: sized
    from the process's limits, see default_max_open_files / default_max_mapped_files;
    `max_mapped_files=0` never maps). `sparse` / `fallocate` choose how create() allocates,
    as whisper.create's arguments do.
    """

    def __init__(self, max_open_files: int | None = None, sparse: bool = False,
                 fallocate: bool = False, *, max_mapped_files: int | None = None) -> None:
        if max_open_files is None:
            max_open_files = default_max_open_files()
        if max_mapped_files is None:
            max_mapped_files = default_max_mapped_files()
        if max_open_files < 1:
            raise ValueError(f"cannot keep max_open_files={max_open_files}: must be at least 1")
        if max_mapped_files < 0:
            raise ValueError(f"cannot keep max_mapped_files={max_mapped_files}: must not be negative")
        self.max_open_files = max_open_files
        self.max_mapped_files = max_mapped_files
        self.revalidate_after = 1.0  # seconds a handle is trusted before its path is re-checked
        self.sparse = sparse
        self.fallocate = fallocate
        self._descriptors: OrderedDict[str, _Handle] = OrderedDict()
        self._mappings: OrderedDict[str, _Handle] = OrderedDict()
        self._mappable_devices: dict[int, bool] = {}
        self._folders: set[str] = set()  # parents create() made or found (each mkdir'ed once)
        self._lock = threading.Lock()

    def create(self, path: str | os.PathLike, archives: Sequence[tuple[int, int]],
               x_files_factor: float, aggregation_method: str) -> None:
        """Create a file like whisper.create (with this store's sparse/fallocate choice),
        making missing parent folders; refuses an existing file (InvalidConfiguration).

        The folder, the file, its header and its blocks are made by one kernel call
        (kernels.create_file) and the file mapped at once, ready for its first write."""
        key = os.fspath(path)
        header = file.plan_create(list(archives), x_files_factor, aggregation_method)
        parent = os.path.dirname(key) or "."
        sparse = self.sparse and not self.fallocate
        make_parent = parent not in self._folders  # most new files start a folder: mkdir first
        layout = (header.packed, header.table, header.data_end, sparse)
        try:
            try:
                made = kernels.create_file(key, *layout, make_parent)
            except FileNotFoundError:  # folders above missing, or the folder went away meanwhile
                os.makedirs(parent, exist_ok=True)
                made = kernels.create_file(key, *layout, False)
        except FileExistsError:
            raise InvalidConfiguration(f"cannot create path={key!r}: file exists") from None
        if make_parent:
            if len(self._folders) >= _MAX_FOLDERS:
                self._folders.clear()
            self._folders.add(parent)
        fd, device, inode, size, blocks = made
        try:
            mapping = self._map_new(fd, device, size, blocks)
        except BaseException:
            os.close(fd)
            raise
        self._remember(key, self._handle_on(fd, header, header.packed, (device, inode), mapping))

    def write(self, path: str | os.PathLike, timestamps: np.ndarray, values: np.ndarray,
              now: int | None = None) -> int:
        """Write one metric's pending points (arrival order; of equal timestamps the last wins).

        The file ends up exactly as whisper.update_many(path, points, now) leaves it for the
        same points with duplicates removed that way. Returns how many points fell inside
        the file's retention (older ones are dropped, as whisper drops them).
        """
        stamps = np.asarray(timestamps)
        if stamps.dtype != _INT64 and stamps.dtype != _FLOAT64:
            # floats are truncated towards zero (like int()) by newest_first
            stamps = stamps.astype(np.float64 if stamps.dtype.kind == "f" else np.int64)
        points = np.asarray(values, dtype=np.float64)
        if stamps.shape != points.shape or stamps.ndim != 1:
            raise ValueError(
                f"cannot write path={os.fspath(path)!r}: {stamps.shape} timestamps for "
                f"{points.shape} values"
            )
        count = len(stamps)
        if count == 0:
            return 0
        if not (stamps.flags.c_contiguous and points.flags.c_contiguous):
            stamps = np.ascontiguousarray(stamps)
            points = np.ascontiguousarray(points)
        try:
            stamps, points = kernels.newest_first(stamps, points)
        except ValueError:
            raise ValueError(f"cannot write timestamps to path={os.fspath(path)!r}: not all finite") from None
        key = os.fspath(path)
        handle = self._acquire(key)
        try:
            with handle.lock:  # whisper's writes to one file never interleave
                # whisper lets a run longer than a ring spill past it (see FORMAT.md), so
                # only a batch of at most the smallest ring's points surely stays inside
                if handle.mapped and count > handle.header.smallest_ring:
                    return self._write_through_descriptor(key, handle, stamps, points, now)
                return file.update_points(handle.target, key, handle.header, stamps, points,
                                          now, handle.bases)
        finally:
            self._release(handle)

    def fetch(self, path: str | os.PathLike, from_time: int, until_time: int | None = None,
              now: int | None = None) -> tuple[tuple[int, int, int], np.ndarray] | None:
        """whisper.fetch's answer with the values as float64 (NaN for missing), or None."""
        key = os.fspath(path)
        handle = self._acquire(key)
        try:
            result = file.fetch(handle.target, key, handle.header, from_time, until_time, now)
        finally:
            self._release(handle)
        if result is None:
            return None
        time_info, values, _ = result
        return time_info, values

    def info(self, path: str | os.PathLike) -> dict:
        """whisper.info's dict, from the cached header."""
        key = os.fspath(path)
        handle = self._acquire(key)
        try:
            return handle.header.as_dict()
        finally:
            self._release(handle)

    def close(self) -> None:
        """Close every cached descriptor and mapping (those in use close when their call
        ends). The store stays usable: later calls open files again."""
        with self._lock:
            handles = [*self._descriptors.values(), *self._mappings.values()]
            self._descriptors.clear()
            self._mappings.clear()
        for handle in handles:
            self._retire(handle)

    def __enter__(self) -> WhisperStore:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _write_through_descriptor(self, key: str, handle: _Handle, stamps: np.ndarray,
                                  points: np.ndarray, now: int | None) -> int:
        """A batch that may write past the end of a mapped file: whisper's pwrite grows the
        file there, so do exactly that on a descriptor opened for this one call."""
        fd = os.open(key, os.O_RDWR | _OPEN_FLAGS)
        try:
            status = os.fstat(fd)
            header, bases = handle.header, handle.bases
            if (status.st_dev, status.st_ino) != handle.identity:  # replaced just now
                self._forget(key, handle)
                header = file.read_header(fd, key)
                bases = file.unknown_bases(header)
            return file.update_points(fd, key, header, stamps, points, now, bases)
        finally:
            os.close(fd)

    def _acquire(self, key: str) -> _Handle:
        """A current handle for `key`, counted as in use until _release."""
        with self._lock:
            handle = self._mappings.get(key)
            if handle is not None:
                self._mappings.move_to_end(key)
            else:
                handle = self._descriptors.get(key)
                if handle is not None:
                    self._descriptors.move_to_end(key)
            if handle is not None:
                handle.users += 1
        if handle is not None:
            clock = time.monotonic()
            if clock - handle.checked_at < self.revalidate_after:
                return handle
            try:
                current = self._still_current(key, handle)
            except BaseException:
                self._forget(key, handle)
                self._release(handle)
                raise
            if current:
                handle.checked_at = clock
                return handle
            self._forget(key, handle)
            self._release(handle)
        handle = self._open(key)
        with self._lock:
            handle.users += 1
        self._remember(key, handle)
        return handle

    def _still_current(self, key: str, handle: _Handle) -> bool:
        """False when the path now names another file (or none, or a mapped file that lost
        blocks); raises CorruptWhisperFile for a mapped file that shrank; re-parses a header
        changed in place."""
        try:
            device, inode, file_size, blocks, _ = kernels.file_status(key)
        except FileNotFoundError:
            return False
        if (device, inode) != handle.identity:
            return False
        size = handle.mapped_size
        if size:
            if file_size < size:
                raise CorruptWhisperFile(
                    f"cannot use path={key!r}: it shrank from {size} to {file_size} "
                    "bytes while mapped (truncated in place)", key)
            if blocks * _BLOCK_UNIT < file_size:
                return False  # holes punched: reopen on the descriptor path
        else:
            size = file_size
        try:
            if kernels.read_at(handle.target, len(handle.header_bytes), 0) != handle.header_bytes:
                # metadata changed in place: re-parse it
                with handle.lock:
                    data = file.header_bytes_of(handle.target, size)
                    handle.header = file.parse_header_once(data, size, key)
                    handle.header_bytes = data
                    handle.bases = file.unknown_bases(handle.header)
        except EOFError as error:
            raise CorruptWhisperFile(str(error), key) from None
        return True

    def _open(self, key: str) -> _Handle:
        writable = True
        try:
            fd = os.open(key, os.O_RDWR | _OPEN_FLAGS)
        except PermissionError:
            fd = os.open(key, os.O_RDONLY | _OPEN_FLAGS)  # readable only: fetch still works
            writable = False
        try:
            data, status = file.read_header_bytes(fd)
            header = file.parse_header_once(data, status.st_size, key)
            mapping = self._map(fd, status) if writable else None
            return self._handle_on(fd, header, data, (status.st_dev, status.st_ino), mapping)
        except BaseException:
            os.close(fd)
            raise

    def _handle_on(self, fd: int, header: Header, header_bytes: bytes, identity: tuple[int, int],
                   mapping: object | None) -> _Handle:
        """A handle on the open file `fd`: on its `mapping` (and `fd` closed) when there is one."""
        if mapping is not None:
            os.close(fd)
        return _Handle(fd if mapping is None else mapping, header, header_bytes, identity,
                       file.unknown_bases(header))

    def _mappable(self, fd: int, device: int, size: int, blocks: int) -> bool:
        """Whether mapping the file could never fault: allowed, no holes, not empty, on a
        filesystem that overwrites in place."""
        if self.max_mapped_files == 0 or size == 0 or blocks * _BLOCK_UNIT < size:
            return False
        mappable = self._mappable_devices.get(device)
        if mappable is None:
            try:
                mappable = kernels.filesystem_magic(fd) in MAPPABLE_FILESYSTEMS
            except OSError:  # cannot tell: do not map
                mappable = False
            self._mappable_devices[device] = mappable
        return mappable

    def _map_new(self, fd: int, device: int, size: int, blocks: int) -> object | None:
        """The mapping of the file as ``size`` and ``blocks`` describe it (for a file this
        store created a moment ago, O_EXCL, nothing to check again), or None where mapping
        it could ever fault (see _mappable) or no address space is left."""
        if not self._mappable(fd, device, size, blocks):
            return None
        try:
            return kernels.map_file(fd, size)
        except OSError:  # e.g. ENOMEM at vm.max_map_count: the descriptor path still works
            return None

    def _map(self, fd: int, status: os.stat_result) -> object | None:
        """_map_new for a file found on disk: not a regular file, or one whose size or blocks
        changed while mapping, is not mapped."""
        if not stat.S_ISREG(status.st_mode):
            return None
        mapping = self._map_new(fd, status.st_dev, status.st_size, status.st_blocks)
        if mapping is None:
            return None
        after = os.fstat(fd)
        if after.st_size < status.st_size or not fully_allocated(after):
            mapping.close()
            return None
        return mapping

    def _remember(self, key: str, handle: _Handle) -> None:
        evicted = []
        with self._lock:
            for cache in (self._descriptors, self._mappings):
                previous = cache.pop(key, None)
                if previous is not None:
                    evicted.append(previous)
            if handle.mapped:
                self._mappings[key] = handle
                while len(self._mappings) > self.max_mapped_files:
                    evicted.append(self._mappings.popitem(last=False)[1])
            else:
                self._descriptors[key] = handle
                while len(self._descriptors) > self.max_open_files:
                    evicted.append(self._descriptors.popitem(last=False)[1])
        for old in evicted:
            self._retire(old)

    def _forget(self, key: str, handle: _Handle) -> None:
        with self._lock:
            for cache in (self._descriptors, self._mappings):
                if cache.get(key) is handle:
                    del cache[key]
        self._retire(handle)

    def _retire(self, handle: _Handle) -> None:
        with self._lock:
            if handle.retired:
                return
            handle.retired = True
            close_now = handle.users == 0
        if close_now:
            handle.close()

    def _release(self, handle: _Handle) -> None:
        with self._lock:
            handle.users -= 1
            close_now = handle.retired and handle.users == 0
        if close_now:
            handle.close()
