"""WhisperStore: the carbon daemon's writer (and a fast reader) for many Whisper files.

Each write hands all pending points of one metric to the kernels in one call, on a cached
descriptor with a cached parsed header, using pread/pwrite only; contiguous runs go out as
one write each. Descriptors live in a bounded LRU (`max_open_files`).

Each archive's base timestamp is cached with the descriptor too, so a warm write costs only
the reads and writes of the points themselves (one pwrite, plus one pread and one pwrite per
lower archive it propagates to).

Staying correct while other tools work on the files: a handle not checked for
`revalidate_after` seconds (default 1) is checked before use, at two system calls: a stat of
the path notices a file replaced or removed (whisper-resize, rm) and reopens it, and a read
of the header bytes notices in-place metadata changes (whisper-set-aggregation-method) and
re-parses them. That leaves the same short window whisper-resize itself has (points written
between its copy and its rename are lost with or without this store).

Thread safety: one writer thread plus any number of reader threads. The LRU is guarded by a
lock; a descriptor evicted while another thread still uses it is closed by its last user.
"""
from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from . import file, kernels
from .format import Header

_OPEN_FLAGS = getattr(os, "O_CLOEXEC", 0)


@dataclass(eq=False)
class _Handle:
    """An open file with its parsed header; `users` counts threads inside a call with it."""

    fd: int
    header: Header
    header_bytes: bytes
    identity: tuple[int, int]  # (st_dev, st_ino) of the file the descriptor is open on
    bases: np.ndarray  # the kernels' cache of each archive's slot-0 timestamp
    checked_at: float = field(default_factory=time.monotonic)
    users: int = 0
    retired: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


class WhisperStore:
    """Write and read Whisper files by path, byte-identical to whisper.update_many / fetch."""

    def __init__(self, max_open_files: int = 512, sparse: bool = False,
                 fallocate: bool = False) -> None:
        if max_open_files < 1:
            raise ValueError(f"cannot keep max_open_files={max_open_files}: must be at least 1")
        self.max_open_files = max_open_files
        self.revalidate_after = 1.0  # seconds a handle is trusted before its path is re-checked
        self.sparse = sparse
        self.fallocate = fallocate
        self._handles: OrderedDict[str, _Handle] = OrderedDict()
        self._lock = threading.Lock()


    def exists(self, path: str | os.PathLike) -> bool:
        return os.path.exists(path)

    def create(self, path: str | os.PathLike, archives: Sequence[tuple[int, int]],
               x_files_factor: float, aggregation_method: str) -> None:
        """Create a file like whisper.create (with this store's sparse/fallocate choice),
        making missing parent folders; refuses an existing file (InvalidConfiguration)."""
        key = os.fspath(path)
        header = file.plan_create(list(archives), x_files_factor, aggregation_method)
        try:
            fd = file.create_file(key, header, sparse=self.sparse, fallocate=self.fallocate)
        except FileNotFoundError:  # a parent folder is missing: make it, once
            os.makedirs(os.path.dirname(key) or ".", exist_ok=True)
            fd = file.create_file(key, header, sparse=self.sparse, fallocate=self.fallocate)
        status = os.fstat(fd)
        handle = _Handle(fd, header, header.packed, (status.st_dev, status.st_ino),
                         file.unknown_bases(header))
        self._remember(key, handle)

    def write(self, path: str | os.PathLike, timestamps: np.ndarray, values: np.ndarray,
              now: int | None = None) -> int:
        """Write one metric's pending points (arrival order; of equal timestamps the last wins).

        The file ends up exactly as whisper.update_many(path, points, now) leaves it for the
        same points with duplicates removed that way. Returns how many points fell inside
        the file's retention (older ones are dropped, as whisper drops them).
        """
        stamps = np.asarray(timestamps)
        if stamps.dtype.kind == "f":
            if not np.isfinite(stamps).all():
                raise ValueError(f"cannot write timestamps to path={os.fspath(path)!r}: not all finite")
        stamps = stamps.astype(np.int64, copy=False)  # truncates towards zero, like int()
        points = np.asarray(values, dtype=np.float64)
        if stamps.shape != points.shape or stamps.ndim != 1:
            raise ValueError(
                f"cannot write path={os.fspath(path)!r}: {stamps.shape} timestamps for "
                f"{points.shape} values"
            )
        if not len(stamps):
            return 0
        stamps, points = file.newest_first(stamps, points, last_wins=True)
        stamps = np.ascontiguousarray(stamps)
        points = np.ascontiguousarray(points)
        key = os.fspath(path)
        handle = self._acquire(key)
        try:
            with handle.lock:  # whisper's writes to one file never interleave
                return file.update_points(handle.fd, key, handle.header, stamps, points, now,
                                          handle.bases)
        finally:
            self._release(handle)

    def fetch(self, path: str | os.PathLike, from_time: int, until_time: int | None = None,
              now: int | None = None) -> tuple[tuple[int, int, int], np.ndarray] | None:
        """whisper.fetch's answer with the values as float64 (NaN for missing), or None."""
        key = os.fspath(path)
        handle = self._acquire(key)
        try:
            result = file.fetch(handle.fd, key, handle.header, from_time, until_time, now)
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
        """Close every cached descriptor (those in use close when their call ends)."""
        with self._lock:
            handles = list(self._handles.values())
            self._handles.clear()
        for handle in handles:
            self._retire(handle)

    def __enter__(self) -> WhisperStore:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _acquire(self, key: str) -> _Handle:
        """A current handle for `key`, counted as in use until _release."""
        with self._lock:
            handle = self._handles.get(key)
            if handle is not None:
                handle.users += 1
                self._handles.move_to_end(key)
        if handle is not None:
            if time.monotonic() - handle.checked_at < self.revalidate_after:
                return handle
            if self._still_current(key, handle):
                handle.checked_at = time.monotonic()
                return handle
            self._forget(key, handle)
            self._release(handle)
        handle = self._open(key)
        with self._lock:
            handle.users += 1
        self._remember(key, handle)
        return handle

    def _still_current(self, key: str, handle: _Handle) -> bool:
        try:
            status = os.stat(key)
        except FileNotFoundError:
            return False
        if (status.st_dev, status.st_ino) != handle.identity:
            return False
        with file.corrupt_if_short(key):
            if kernels.read_at(handle.fd, len(handle.header_bytes), 0) != handle.header_bytes:
                # metadata changed in place: re-parse it
                with handle.lock:
                    handle.header = file.read_header(handle.fd, key)
                    handle.header_bytes = kernels.read_at(handle.fd, handle.header.size, 0)
                    handle.bases = file.unknown_bases(handle.header)
        return True

    def _open(self, key: str) -> _Handle:
        try:
            fd = os.open(key, os.O_RDWR | _OPEN_FLAGS)
        except PermissionError:
            fd = os.open(key, os.O_RDONLY | _OPEN_FLAGS)  # readable only: fetch still works
        try:
            data, status = file.read_header_bytes(fd)
            header = file.parse_header_once(data, status.st_size, key)
            return _Handle(fd, header, data, (status.st_dev, status.st_ino),
                           file.unknown_bases(header))
        except BaseException:
            os.close(fd)
            raise

    def _remember(self, key: str, handle: _Handle) -> None:
        evicted = []
        with self._lock:
            previous = self._handles.pop(key, None)
            if previous is not None:
                evicted.append(previous)
            self._handles[key] = handle
            while len(self._handles) > self.max_open_files:
                evicted.append(self._handles.popitem(last=False)[1])
        for old in evicted:
            self._retire(old)

    def _forget(self, key: str, handle: _Handle) -> None:
        with self._lock:
            if self._handles.get(key) is handle:
                del self._handles[key]
        self._retire(handle)

    def _retire(self, handle: _Handle) -> None:
        with self._lock:
            if handle.retired:
                return
            handle.retired = True
            close_now = handle.users == 0
        if close_now:
            os.close(handle.fd)

    def _release(self, handle: _Handle) -> None:
        with self._lock:
            handle.users -= 1
            close_now = handle.retired and handle.users == 0
        if close_now:
            os.close(handle.fd)

