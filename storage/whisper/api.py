"""whisper 1.1.10's module-level API (same names, arguments, results and exceptions).

Each function reads the package's compatibility flags once, at the call (see the package
docstring), and hands them down as explicit arguments to file.py. The file_* functions take
any file object: real files are used through their descriptor; other objects (GzipFile,
BytesIO) are copied into an anonymous temporary file, worked on, and written back.
"""
from __future__ import annotations

import io
import os
import shutil
import struct
import sys
import tempfile
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from threading import Lock

import numpy as np

from . import file
from .format import Header, get_unit_string, normalize_archive_list, parse_retention_def
from .format import aggregate as aggregate_values

_BUFFERED_FILES = (io.BufferedReader, io.BufferedWriter, io.BufferedRandom)


@dataclass(frozen=True)
class Flags:
    """The package's compatibility flags, as read at the start of one call."""

    lock: bool
    autoflush: bool
    cache_headers: bool
    fadvise_random: bool


def current_flags() -> Flags:
    """Read LOCK, AUTOFLUSH, CACHE_HEADERS and FADVISE_RANDOM from the package, once per call."""
    package = sys.modules[__package__]
    return Flags(bool(package.LOCK), bool(package.AUTOFLUSH), bool(package.CACHE_HEADERS),
                 bool(package.FADVISE_RANDOM))


class HeaderCache:
    """Headers by (device, inode), for CACHE_HEADERS. Bounded; a replaced file gets a new key."""

    def __init__(self, max_entries: int = 65536) -> None:
        self._entries: OrderedDict[tuple[int, int], Header] = OrderedDict()
        self._max_entries = max_entries
        self._lock = Lock()

    def header(self, fd: int, name: str) -> Header:
        status = os.fstat(fd)
        key = (status.st_dev, status.st_ino)
        with self._lock:
            cached = self._entries.get(key)
        if cached is not None:
            return cached
        header = file.read_header(fd, name)
        with self._lock:
            self._entries[key] = header
            if len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
        return header

    def forget(self, fd: int) -> None:
        status = os.fstat(fd)
        with self._lock:
            self._entries.pop((status.st_dev, status.st_ino), None)


# The one piece of module state: whisper's CACHE_HEADERS cache, only consulted when the flag is on.
_HEADER_CACHE = HeaderCache()


def _read_header(fd: int, name: str, flags: Flags) -> Header:
    if flags.cache_headers:
        return _HEADER_CACHE.header(fd, name)
    return file.read_header(fd, name)


def _finish_write(fd: int, flags: Flags) -> None:
    if flags.autoflush:
        os.fsync(fd)


@contextmanager
def _opened(path, writable: bool, flags: Flags | None = None) -> Iterator[int]:
    fd = os.open(path, (os.O_RDWR if writable else os.O_RDONLY) | getattr(os, "O_CLOEXEC", 0))
    try:
        if flags is not None and flags.fadvise_random:
            file.advise_random(fd)
        yield fd
    finally:
        os.close(fd)


@contextmanager
def _descriptor_of(fh, writes: bool) -> Iterator[int]:
    """A descriptor holding fh's bytes; changes made through it end up in fh."""
    if isinstance(fh, io.FileIO):
        yield fh.fileno()
    elif isinstance(fh, _BUFFERED_FILES):
        fh.flush()
        yield fh.fileno()
        if writes and fh.readable():
            position = fh.tell()
            fh.seek(0, os.SEEK_END)  # drops read-ahead that our pwrites made stale
            fh.seek(position)
    else:
        with tempfile.TemporaryFile() as scratch:
            fh.seek(0)
            shutil.copyfileobj(fh, scratch)
            scratch.flush()
            yield scratch.fileno()
            if writes:
                scratch.seek(0)
                fh.seek(0)
                shutil.copyfileobj(scratch, fh)


def _name_of(fh) -> str:
    return str(getattr(fh, "name", repr(fh)))


def _point_arrays(points) -> tuple[np.ndarray, np.ndarray]:
    pairs = [(int(t), float(v)) for t, v in points]
    try:
        timestamps = np.array([t for t, _ in pairs], dtype=np.int64)
    except OverflowError:
        raise struct.error("cannot write a timestamp beyond 64 bits: argument out of range") from None
    return timestamps, np.array([v for _, v in pairs], dtype=np.float64)


def validateArchiveList(archiveList) -> None:
    """Raise InvalidConfiguration unless the archives follow Whisper's rules (sorts a list in place)."""
    normalize_archive_list(archiveList)


def parseRetentionDef(retentionDef: str) -> tuple[int, int]:
    """'60s:1d' -> (60, 1440)."""
    return parse_retention_def(retentionDef)


def getUnitString(s: str) -> str:
    """The unit name that `s` abbreviates: 'm' -> 'minutes'."""
    return get_unit_string(s)


def aggregate(aggregationMethod, knownValues, neighborValues=None):
    """Combine the known values of one interval the way propagation does."""
    return aggregate_values(aggregationMethod, knownValues, neighborValues)


def create(path, archiveList, xFilesFactor=None, aggregationMethod=None, sparse=False,
           useFallocate=False) -> None:
    """Create a Whisper file; archiveList is [(secondsPerPoint, points), ...]."""
    header = file.plan_create(archiveList, xFilesFactor, aggregationMethod)
    flags = current_flags()
    fd = file.create_file(path, header, sparse=sparse, fallocate=useFallocate, lock=flags.lock,
                          fadvise_random=flags.fadvise_random, autoflush=flags.autoflush)
    os.close(fd)


def update(path, value, timestamp=None, now=None) -> None:
    """Store one point (default timestamp: now) and propagate it to lower archives."""
    value = float(value)
    flags = current_flags()
    with _opened(path, True, flags) as fd:
        _update_fd(fd, os.fspath(path), value, timestamp, now, flags)


def file_update(fh, value, timestamp, now=None) -> None:
    """update() on an open file object."""
    flags = current_flags()
    with _descriptor_of(fh, writes=True) as fd:
        _update_fd(fd, _name_of(fh), value, timestamp, now, flags)


def _update_fd(fd: int, name: str, value, timestamp, now, flags: Flags) -> None:
    if flags.lock:
        file.lock_exclusive(fd)
    file.update_point(fd, name, _read_header(fd, name, flags), value, timestamp, now)
    _finish_write(fd, flags)


def update_many(path, points, now=None) -> None:
    """Store many (timestamp, value) points; too-old ones are dropped, future ones kept."""
    if not points:
        return
    timestamps, values = file.newest_first(*_point_arrays(points), last_wins=False)
    flags = current_flags()
    with _opened(path, True, flags) as fd:
        _update_many_fd(fd, os.fspath(path), timestamps, values, now, flags)


def file_update_many(fh, points, now=None) -> None:
    """update_many() on an open file object; like whisper, points must already be newest first."""
    timestamps, values = _point_arrays(points)
    flags = current_flags()
    with _descriptor_of(fh, writes=True) as fd:
        _update_many_fd(fd, _name_of(fh), timestamps, values, now, flags)


def _update_many_fd(fd: int, name: str, timestamps, values, now, flags: Flags) -> None:
    if flags.lock:
        file.lock_exclusive(fd)
    file.update_points(fd, name, _read_header(fd, name, flags), timestamps, values, now)
    _finish_write(fd, flags)


def info(path) -> dict | None:
    """The header as whisper's dict, or None when the file cannot be opened or read."""
    try:
        with _opened(path, False) as fd:
            return _read_header(fd, os.fspath(path), current_flags()).as_dict()
    except OSError:
        return None


def fetch(path, fromTime, untilTime=None, now=None, archiveToSelect=None):
    """((fromInterval, untilInterval, step), [value or None, ...]) or None (see file.fetch)."""
    with _opened(path, False) as fd:
        return _fetch_fd(fd, os.fspath(path), fromTime, untilTime, now, archiveToSelect)


def file_fetch(fh, fromTime, untilTime, now=None, archiveToSelect=None):
    """fetch() on an open file object (also a GzipFile, as graphite-web's gzip reader uses it)."""
    with _descriptor_of(fh, writes=False) as fd:
        return _fetch_fd(fd, _name_of(fh), fromTime, untilTime, now, archiveToSelect)


def _fetch_fd(fd: int, name: str, from_time, until_time, now, archive_to_select):
    header = _read_header(fd, name, current_flags())
    result = file.fetch(fd, name, header, from_time, until_time, now, archive_to_select)
    if result is None:
        return None
    time_info, values, known = result
    return time_info, file.value_list(values, known)


def setAggregationMethod(path, aggregationMethod, xFilesFactor=None) -> str:
    """Change the aggregation method (and the xFilesFactor unless None); returns the old method."""
    return _set_aggregation(path, aggregationMethod, xFilesFactor).aggregation_method


def setXFilesFactor(path, xFilesFactor) -> float:
    """Change the xFilesFactor; returns the old one."""
    return _set_aggregation(path, None, xFilesFactor).x_files_factor


def _set_aggregation(path, aggregation_method, x_files_factor) -> Header:
    flags = current_flags()
    with _opened(path, True) as fd:
        if flags.lock:
            file.lock_exclusive(fd)
        old = _read_header(fd, os.fspath(path), flags)
        file.set_aggregation(fd, old, aggregation_method, x_files_factor)
        _finish_write(fd, flags)
        _HEADER_CACHE.forget(fd)
    return old


def merge(path_from, path_to, time_from=None, time_to=None, now=None) -> None:
    """Copy the known points of path_from into path_to (same archive layout required)."""
    with _opened(path_from, False) as fd_from, _opened(path_to, True) as fd_to:
        _merge_fds(fd_from, os.fspath(path_from), fd_to, os.fspath(path_to), time_from, time_to, now)


def file_merge(fh_from, fh_to, time_from=None, time_to=None, now=None) -> None:
    """merge() on open file objects."""
    with _descriptor_of(fh_from, writes=False) as fd_from, _descriptor_of(fh_to, writes=True) as fd_to:
        _merge_fds(fd_from, _name_of(fh_from), fd_to, _name_of(fh_to), time_from, time_to, now)


def _merge_fds(fd_from, name_from, fd_to, name_to, time_from, time_to, now) -> None:
    flags = current_flags()
    file.merge(fd_from, name_from, _read_header(fd_from, name_from, flags),
               fd_to, name_to, _read_header(fd_to, name_to, flags), time_from, time_to, now)


def diff(path_from, path_to, ignore_empty=False, until_time=None, now=None) -> list:
    """[(archiveNumber, [(timestamp, valueFrom, valueTo), ...differing], pointsCompared), ...]."""
    with _opened(path_from, False) as fd_from, _opened(path_to, False) as fd_to:
        return _diff_fds(fd_from, os.fspath(path_from), fd_to, os.fspath(path_to),
                         ignore_empty, until_time, now)


def file_diff(fh_from, fh_to, ignore_empty=False, until_time=None, now=None) -> list:
    """diff() on open file objects."""
    with _descriptor_of(fh_from, writes=False) as fd_from, _descriptor_of(fh_to, writes=False) as fd_to:
        return _diff_fds(fd_from, _name_of(fh_from), fd_to, _name_of(fh_to),
                         ignore_empty, until_time, now)


def _diff_fds(fd_from, name_from, fd_to, name_to, ignore_empty, until_time, now) -> list:
    flags = current_flags()
    return file.diff(fd_from, name_from, _read_header(fd_from, name_from, flags),
                     fd_to, name_to, _read_header(fd_to, name_to, flags),
                     ignore_empty, until_time, now)
