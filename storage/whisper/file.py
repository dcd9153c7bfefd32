"""Operations on one open Whisper file (a descriptor), with every option passed in explicitly.

Nothing here reads module flags or the clock behind the caller's back: `now` is a parameter
(None means "the current time", taken once per call), and locking, fsync and fadvise are
arguments. api.py (whisper's path-level functions) and batch.py (the daemon's WhisperStore)
are both thin drivers over these functions, which are thin drivers over the kernels.
"""
from __future__ import annotations

import contextlib
import fcntl
import functools
import math
import operator
import os
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from . import kernels
from .errors import (
    CorruptWhisperFile,
    InvalidConfiguration,
    InvalidTimeInterval,
    TimestampNotCovered,
)
from .format import (
    ARCHIVE_INFO_SIZE,
    METADATA_SIZE,
    ArchiveInfo,
    Header,
    aggregation_type_for,
    build_header,
    checked_x_files_factor,
    normalize_archive_list,
    pack_metadata,
    parse_header,
    parse_retention_def,
)

_HEADER_PROBE = 512  # one read covers the metadata and up to 41 archives

TimeInfo = tuple[int, int, int]
FetchResult = tuple[TimeInfo, np.ndarray, np.ndarray]


def current_time() -> int:
    """What `now=None` means everywhere: whole seconds since the epoch."""
    return int(time.time())


@contextmanager
def corrupt_if_short(name: str) -> Iterator[None]:
    """Around kernel calls: a read that hits the end of the file means the file is corrupt."""
    try:
        yield
    except EOFError as error:
        raise CorruptWhisperFile(str(error), name) from None


def read_header(fd: int, name: str) -> Header:
    """Parse and check the header of the open file `fd` (`name` is used in errors)."""
    data, status = read_header_bytes(fd)
    return parse_header_once(data, status.st_size, name)


def parse_header_once(data: bytes, file_size: int, name: str) -> Header:
    """format.parse_header, remembered: files of one storage schema share their header bytes."""
    try:
        return _parsed_header(data, file_size)
    except CorruptWhisperFile as error:
        raise CorruptWhisperFile(error.error, name) from None


@functools.lru_cache(maxsize=1024)
def _parsed_header(data: bytes, file_size: int) -> Header:
    # a memo of a pure function (Header is frozen); errors are not remembered
    return parse_header(data, file_size, "")


def read_header_bytes(fd: int) -> tuple[bytes, os.stat_result]:
    """The header's bytes (as many as the archive count asks for, if the file has them)
    and the file's status (its size is what parse_header checks against). One pread, one
    fstat."""
    data = os.pread(fd, _HEADER_PROBE, 0)
    status = os.fstat(fd)
    return _whole_header(data, status.st_size, lambda size: os.pread(fd, size, 0)), status


def header_bytes_of(target, file_size: int) -> bytes:
    """read_header_bytes' bytes from a kernel target (a descriptor or a mapped file) of
    `file_size` bytes."""
    return _whole_header(kernels.read_at(target, min(_HEADER_PROBE, file_size), 0), file_size,
                         lambda size: kernels.read_at(target, size, 0))


def _whole_header(data: bytes, file_size: int, read) -> bytes:
    """`data` (the file's first bytes) cut or extended to the header the archive count asks
    for, as far as the file has it."""
    if len(data) >= METADATA_SIZE:
        count = struct.unpack_from("!L", data, METADATA_SIZE - 4)[0]
        needed = METADATA_SIZE + ARCHIVE_INFO_SIZE * count
        if len(data) < needed <= file_size:
            data = read(needed)
        elif needed <= len(data):
            data = data[:needed]
    return data


def plan_create(archive_list, x_files_factor=None, aggregation_method=None) -> Header:
    """Validate create() arguments (whisper's defaults: xff 0.5, 'average') into a new header.

    Everything is checked before a file exists, so a refused create leaves nothing behind.
    Like whisper, a list of archives is sorted in place.
    """
    if isinstance(archive_list, list):
        with contextlib.suppress(TypeError, IndexError, KeyError):  # refused below, with reasons
            archive_list.sort(key=operator.itemgetter(0))
    try:
        key = (tuple(tuple(archive) for archive in archive_list), x_files_factor, aggregation_method)
        hash(key)
    except TypeError:
        return _planned_header.__wrapped__(archive_list, x_files_factor, aggregation_method)
    return _planned_header(*key)


@functools.lru_cache(maxsize=256)
def _planned_header(archive_list, x_files_factor, aggregation_method) -> Header:
    # a memo of a pure function (Header is frozen); refusals are not remembered
    xff = checked_x_files_factor(0.5 if x_files_factor is None else x_files_factor)
    aggregation_type = aggregation_type_for(
        "average" if aggregation_method is None else aggregation_method
    )
    archives = normalize_archive_list(archive_list)
    return build_header(archives, xff, aggregation_type)


def create_file(path: str | os.PathLike, header: Header, *, sparse: bool = False,
                fallocate: bool = False, lock: bool = False, fadvise_random: bool = False,
                autoflush: bool = False) -> int:
    """Create `path` holding `header` and an empty data area; returns the open O_RDWR fd.

    The bytes are whisper.create's whatever the options. `sparse` (without `fallocate`)
    writes one zero byte at the end, leaving a hole as whisper does. Otherwise the data area
    gets every block allocated, as whisper's written zeros (or its posix_fallocate) give it:
    by fallocate(2), which hands out zeroed blocks without writing 3 MB of zeros through the
    page cache, falling back to written zeros where the filesystem cannot. A file that
    exists already is refused; a file that fails half-way is removed.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
    except FileExistsError:
        raise InvalidConfiguration(f"cannot create path={os.fspath(path)!r}: file exists") from None
    try:
        if lock:
            fcntl.flock(fd, fcntl.LOCK_EX)
        if fadvise_random:
            advise_random(fd)
        kernels.write_at(fd, header.packed, 0)
        data_start = header.size
        data_end = header.data_end
        if sparse and not fallocate:
            kernels.write_at(fd, b"\x00", data_end - 1)
        else:
            kernels.allocate(fd, data_start, data_end - data_start)
        if autoflush:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(path)
        raise
    return fd


def advise_random(fd: int) -> None:
    """Tell the kernel not to read ahead (FADVISE_RANDOM), where the platform can."""
    if hasattr(os, "posix_fadvise"):
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)


def lock_exclusive(fd: int) -> None:
    """whisper's LOCK: an flock held until the descriptor is closed."""
    fcntl.flock(fd, fcntl.LOCK_EX)


def kernel_now(now: float) -> int:
    """An integer clock for the kernels that keeps `retention < now - t` exact for integer t."""
    return now if isinstance(now, int) else math.ceil(now)


def update_point(fd: int, name: str, header: Header, value: float, timestamp=None,
                 now=None) -> None:
    """whisper.file_update: one point, refused unless 0 <= now - timestamp < maxRetention."""
    if now is None:
        now = current_time()
    if timestamp is None:
        timestamp = now
    timestamp = int(timestamp)
    age = now - timestamp
    if not (age < header.max_retention and age >= 0):
        raise TimestampNotCovered(
            f"cannot update timestamp={timestamp}: not covered by any archive "
            f"(age {age}s, now={now}, maxRetention={header.max_retention}s)"
        )
    update_points(fd, name, header, np.array([timestamp], dtype=np.int64),
                  np.array([float(value)], dtype=np.float64), now)


def unknown_bases(header: Header) -> np.ndarray:
    """A fresh base-timestamp cache for the kernels: nothing known, every base gets read."""
    return np.zeros(len(header.archives), dtype=np.int64)


def update_points(target, name: str, header: Header, timestamps: np.ndarray,
                  values: np.ndarray, now=None, bases: np.ndarray | None = None) -> int:
    """whisper.file_update_many on points already in processing order (newest first).

    `target` is a descriptor or a mapped file (see kernels). Returns how many points fell
    inside some archive (the rest are dropped as too old). `bases` is the kernels' per-file
    base cache (see unknown_bases); keep one per open file to save reads, or leave it None.
    """
    if now is None:
        now = current_time()
    if bases is None:
        bases = unknown_bases(header)
    try:
        return kernels.update_many(target, header.table, header.aggregation_type,
                                   header.x_files_factor, timestamps, values, kernel_now(now),
                                   bases)
    except EOFError as error:
        raise CorruptWhisperFile(str(error), name) from None
    except OverflowError as error:  # whisper's struct.pack fails the same way
        raise struct.error(str(error)) from None


def newest_first(timestamps: np.ndarray, values: np.ndarray, *, last_wins: bool
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Points in whisper.update_many's processing order: newest first, a stable sort.

    Equal timestamps keep arrival order, so whisper ends up keeping the first arrival;
    `last_wins` keeps only the last arrival of each timestamp instead (carbon's cache does
    that before whisper sees the points).
    """
    if len(timestamps) < 2:
        return timestamps, values
    order = np.argsort(-timestamps, kind="stable")
    if last_wins:
        ordered = timestamps[order]
        order = order[np.append(ordered[1:] != ordered[:-1], True)]
    return timestamps[order], values[order]


def select_archive(header: Header, from_time: int, now: int, archive_to_select=None) -> ArchiveInfo:
    """The archive fetch reads: the first covering `now - from_time`, or the one asked for."""
    if archive_to_select:
        step = parse_retention_def(f"{archive_to_select}:1")[0]
        for archive in header.archives:
            if archive.seconds_per_point == step:
                return archive
        raise ValueError(
            f"cannot fetch archiveToSelect={archive_to_select!r}: Invalid granularity: no "
            f"archive has {step}s per point"
        )
    age = now - from_time
    for archive in header.archives:
        if archive.retention >= age:
            return archive
    return header.archives[-1]


def fetch(target, name: str, header: Header, from_time, until_time=None, now=None,
          archive_to_select=None) -> FetchResult | None:
    """whisper.file_fetch on a descriptor or mapped file, returning arrays: (timeInfo,
    values with NaN, known mask) or None."""
    if now is None:
        now = current_time()
    if until_time is None:
        until_time = now
    from_time = int(from_time)
    until_time = int(until_time)
    if from_time > until_time:
        raise InvalidTimeInterval(
            f"cannot fetch fromTime={from_time}: Invalid time interval: from time "
            f"'{from_time}' is after until time '{until_time}'"
        )
    oldest = now - header.max_retention
    if from_time > now or until_time < oldest:
        return None
    if from_time < oldest:
        from_time = oldest
    if until_time > now:
        until_time = now
    archive = select_archive(header, from_time, now, archive_to_select)
    return archive_fetch(target, name, archive, from_time, until_time)


def archive_fetch(target, name: str, archive: ArchiveInfo, from_time, until_time) -> FetchResult:
    """Read one archive for (from_time, until_time], aligned as whisper aligns it."""
    step = archive.seconds_per_point
    from_interval = int(from_time - (from_time % step)) + step
    until_interval = int(until_time - (until_time % step)) + step
    if from_interval == until_interval:
        until_interval += step  # a zero-length range still returns the next point
    capacity = max(archive.points, (until_interval - from_interval) // step, 0)
    values = np.empty(capacity, dtype=np.float64)
    known = np.empty(capacity, dtype=np.uint8)
    try:
        count = kernels.fetch_archive(target, archive.offset, step, archive.points, from_interval,
                                      until_interval, values, known)
    except EOFError as error:
        raise CorruptWhisperFile(str(error), name) from None
    return (from_interval, until_interval, step), values[:count], known[:count].view(np.bool_)


def value_list(values: np.ndarray, known: np.ndarray) -> list:
    """whisper's value list: floats where known, None where not (patching the minority)."""
    known_count = int(np.count_nonzero(known))
    if known_count * 2 >= len(known):
        result = values.tolist()
        for index in np.flatnonzero(~known).tolist():
            result[index] = None
        return result
    result = [None] * len(known)
    indices = np.flatnonzero(known)
    for index, value in zip(indices.tolist(), values[indices].tolist(), strict=True):
        result[index] = value
    return result


def read_archive(fd: int, name: str, archive: ArchiveInfo) -> tuple[np.ndarray, np.ndarray]:
    """Every slot of an archive in file order, raw (whisper-dump's view): timestamps, values."""
    with corrupt_if_short(name):
        data = kernels.read_at(fd, archive.size, archive.offset)
    return kernels.unpack_points(data)


def set_aggregation(fd: int, header: Header, aggregation_method=None, x_files_factor=None
                    ) -> None:
    """Rewrite the metadata with a new aggregation method and/or xFilesFactor."""
    method = header.aggregation_method if aggregation_method is None else aggregation_method
    xff = header.x_files_factor if x_files_factor is None else x_files_factor
    aggregation_type = aggregation_type_for(method)
    xff = checked_x_files_factor(xff)
    kernels.write_at(
        fd, pack_metadata(aggregation_type, header.max_retention, xff, len(header.archives)), 0
    )


def _same_archives(name_from: str, header_from: Header, name_to: str, header_to: Header,
                   action: str) -> None:
    if header_from.archives != header_to.archives:
        raise NotImplementedError(
            f"cannot {action} path={name_from!r} into path={name_to!r}: archive configurations "
            "are unalike. Resize the input first"
        )


def _by_retention(header: Header) -> list[tuple[int, ArchiveInfo]]:
    return sorted(enumerate(header.archives), key=lambda item: item[1].retention)


def merge(fd_from: int, name_from: str, header_from: Header, fd_to: int, name_to: str,
          header_to: Header, time_from=None, time_to=None, now=None) -> None:
    """whisper.file_merge: copy every known point of each archive, shortest retention first,
    into the same archive of the destination, propagating as update_many does."""
    _same_archives(name_from, header_from, name_to, header_to, "merge")
    if now is None:
        now = current_time()
    until_time = time_to if time_to is not None else now
    from_time = time_from if time_from is not None else 0
    if until_time < from_time:
        raise ValueError(f"cannot merge time_to={time_to}: time_to must be >= time_from")
    for index, archive in _by_retention(header_from):
        oldest = now - archive.retention
        if until_time < oldest:
            continue
        (start, _, step), values, known = archive_fetch(
            fd_from, name_from, archive, max(from_time, oldest), until_time
        )
        if not known.any():
            continue
        timestamps = start + step * np.arange(len(values), dtype=np.int64)
        with corrupt_if_short(name_to):
            kernels.archive_update_many(fd_to, header_to.table, header_to.aggregation_type,
                                        header_to.x_files_factor, index, timestamps[known],
                                        values[known], unknown_bases(header_to))


def diff(fd_from: int, name_from: str, header_from: Header, fd_to: int, name_to: str,
         header_to: Header, ignore_empty: bool = False, until_time=None, now=None) -> list:
    """whisper.file_diff: per archive (shortest retention first), the points that differ."""
    _same_archives(name_from, header_from, name_to, header_to, "diff")
    if now is None:
        now = current_time()
    until = until_time if until_time else now
    result = []
    for number, (_, archive) in enumerate(_by_retention(header_from)):
        start_time = now - archive.retention
        from_info, from_values, from_known = archive_fetch(fd_from, name_from, archive, start_time, until)
        to_info, to_values, to_known = archive_fetch(fd_to, name_to, archive, start_time, until)
        values_a = value_list(from_values, from_known)
        values_b = value_list(to_values, to_known)
        start = min(from_info[0], to_info[0])
        end = max(from_info[1], to_info[1])
        step = min(from_info[2], to_info[2])
        points = [(start + i * step, values_a[i], values_b[i]) for i in range((end - start) // step)]
        if ignore_empty:
            points = [p for p in points if p[1] is not None and p[2] is not None]
        else:
            points = [p for p in points if p[1] is not None or p[2] is not None]
        result.append((number, [p for p in points if p[1] != p[2]], len(points)))
        until = min(start_time, until)
    return result
