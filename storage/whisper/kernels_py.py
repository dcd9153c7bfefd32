"""Readable pure-Python/numpy twins of the compiled kernels in native/whisper_kernels.pyx.

Same functions, arguments and results as the compiled module; tests run both on the same
inputs and compare. The code follows whisper 1.1.10's algorithm step by step (one read or
write per step), so it doubles as the specification the compiled kernels are checked against.

A *target* is where a kernel reads and writes: an int descriptor (pread/pwrite, so no
file position moves and readers and one writer can share it) or a writable buffer holding
the whole file (a mapping from map_file; nothing past its end is touched). A *table* is
Header.table: one (offset, secondsPerPoint, points) int64 row per archive.

Errors: EOFError when the file (or mapping) ends before a read or a mapped write does
(drivers turn it into CorruptWhisperFile), OverflowError for a timestamp that a uint32
cannot hold, OSError from I/O.
"""
from __future__ import annotations

import ctypes
import errno
import mmap
import os
import stat

import numpy as np

from .format import AGGREGATION_TYPE_TO_METHOD, POINT, POINT_SIZE, UINT32_LIMIT, aggregate

_ZERO_CHUNK_SIZE = 1 << 20
_POINT_DTYPE = np.dtype([("timestamp", ">u4"), ("value", ">f8")])


def _inside(target, size: int, offset: int) -> bool:
    return 0 <= offset and 0 <= size and offset + size <= len(target)


def read_at(target, size: int, offset: int) -> bytes:
    """Exactly `size` bytes at `offset` of a descriptor or mapped file, or EOFError."""
    if isinstance(target, int):
        data = os.pread(target, size, offset)
    else:
        data = bytes(memoryview(target)[offset:offset + size]) if _inside(target, size, offset) else b""
    if len(data) != size:
        raise EOFError(f"cannot read bytes={size} at offset={offset}: the file ends first")
    return data


def write_at(target, data: bytes, offset: int) -> None:
    """Write all of `data` at `offset` (a mapped file: EOFError past its end, nothing written)."""
    if not isinstance(target, int):
        if not _inside(target, len(data), offset):
            raise EOFError(f"cannot write bytes={len(data)} at offset={offset}: "
                           "the mapped file ends first")
        memoryview(target)[offset:offset + len(data)] = data
        return
    written = 0
    while written < len(data):
        written += os.pwrite(target, data[written:], offset + written)


def fill_zeros(fd: int, offset: int, length: int) -> None:
    """Write `length` zero bytes at `offset`."""
    zeros = bytes(min(length, _ZERO_CHUNK_SIZE))
    end = offset + length
    while offset < end:
        offset += os.pwrite(fd, zeros[:end - offset], offset)


def allocate(fd: int, offset: int, length: int) -> None:
    """Make `length` bytes at `offset` zeros with their blocks allocated (the file grows to
    cover them): fallocate where the filesystem supports it, else written zeros."""
    if length <= 0:
        return
    try:
        os.posix_fallocate(fd, offset, length)
    except OSError as error:
        if error.errno not in (errno.EOPNOTSUPP, errno.ENOSYS):
            raise
        fill_zeros(fd, offset, length)


_PAGE = 4096


def touch_archive_starts(fd: int, table: np.ndarray, header_size: int, data_end: int) -> None:
    """Write the zeros of the page each archive starts in (offsets from `table`,
    Header.table), past the header's page: a file's first write lands there, and with the
    page written the first store through the mapping is an ordinary fault."""
    past_header = header_size - header_size % _PAGE + _PAGE
    for start in table[:, 0].tolist():
        end = min(start - start % _PAGE + _PAGE, data_end)
        if start >= past_header and end > start:
            write_at(fd, bytes(end - start), start)


def create_file(path, header: bytes, table: np.ndarray, data_end: int, sparse: bool,
                make_parent: bool) -> tuple[int, int, int, int, int]:
    """mkdir the folder (when asked; an existing one is fine), open the file O_EXCL, write
    `header`, then allocate the data area up to `data_end` (and write the zeros of the page
    each archive starts in, from `table`, Header.table: see touch_archive_starts; or,
    `sparse`, write its last byte). (fd, st_dev, st_ino, st_size, st_blocks); a file that
    fails half-way is removed."""
    encoded = os.fsencode(path)
    if not header or data_end < len(header):
        raise ValueError(f"cannot create path={os.fsdecode(encoded)!r}: {len(header)}-byte "
                         f"header, data ending at {data_end}")
    if make_parent:
        try:
            os.mkdir(os.path.dirname(encoded) or b".")
        except FileExistsError:
            pass
    fd = os.open(encoded, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        write_at(fd, header, 0)
        if data_end > len(header):
            if sparse:
                write_at(fd, b"\x00", data_end - 1)
            else:
                allocate(fd, len(header), data_end - len(header))
                touch_archive_starts(fd, table, len(header), data_end)
        status = os.fstat(fd)
    except BaseException:
        os.close(fd)
        os.unlink(encoded)
        raise
    return fd, status.st_dev, status.st_ino, status.st_size, status.st_blocks


def map_file(fd: int, size: int) -> mmap.mmap:
    """A MAP_SHARED read-write mapping of the first `size` bytes of `fd`'s file, advised
    RANDOM. (Python's mmap keeps a duplicate of the descriptor; the compiled Mapping
    does not.) The caller checks that every block of the file is allocated."""
    if size <= 0:
        raise ValueError(f"cannot map size={size}: must be positive")
    mapping = mmap.mmap(fd, size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    mapping.madvise(mmap.MADV_RANDOM)
    return mapping


def file_status(path) -> tuple[int, int, int, int, bool]:
    """(st_dev, st_ino, st_size, st_blocks, is a regular file) of `path`, following
    symlinks; OSError as os.stat raises it."""
    status = os.stat(path)
    return (status.st_dev, status.st_ino, status.st_size, status.st_blocks,
            stat.S_ISREG(status.st_mode))


def filesystem_magic(fd: int) -> int:
    """The filesystem type (statfs f_type, the first field of struct statfs) holding `fd`."""
    libc = ctypes.CDLL(None, use_errno=True)
    status = ctypes.create_string_buffer(512)  # larger than any struct statfs
    if libc.fstatfs(fd, status) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return ctypes.c_long.from_buffer(status).value


def pack_points(timestamps: np.ndarray, values: np.ndarray) -> bytes:
    """Points as the file stores them: 12 bytes each, big-endian uint32 then float64."""
    for timestamp in timestamps:
        _check_timestamp(int(timestamp))
    return b"".join(POINT.pack(int(t), float(v)) for t, v in zip(timestamps, values, strict=True))


def _check_timestamp(timestamp: int) -> None:
    if not 0 <= timestamp < UINT32_LIMIT:
        raise OverflowError(f"cannot write timestamp={timestamp}: not a 32-bit unsigned number")


def newest_first(timestamps: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points in arrival order as update_many takes them: (int64 timestamps, float64 values),
    newest first, each second once. Of points in one second the one with the smallest
    timestamp wins, of equal timestamps the last arrival (carbon's cache keeps the last
    arrival of each timestamp and hands them to whisper sorted; whisper keeps the first of
    each int()). Float timestamps are truncated towards zero like int(); ValueError when one
    is not finite."""
    if not isinstance(timestamps, np.ndarray) or not isinstance(values, np.ndarray):
        raise TypeError("cannot order points: timestamps and values must be numpy arrays")
    if len(timestamps) != len(values):
        raise ValueError("cannot order points: timestamps and values differ in length")
    moments = timestamps
    if timestamps.dtype.kind == "f":
        if not np.isfinite(timestamps).all():
            raise ValueError("cannot order points: not all timestamps are finite")
        with np.errstate(invalid="ignore"):
            timestamps = timestamps.astype(np.int64)
    timestamps = timestamps.astype(np.int64, copy=False)
    values = values.astype(np.float64, copy=False)
    # by second, then moment, then the latest arrival first: each second's winner leads its run
    order = np.lexsort((-np.arange(len(timestamps)), moments, timestamps))
    ordered = timestamps[order]
    keep = np.ones(len(ordered), dtype=bool)
    keep[1:] = ordered[1:] != ordered[:-1]
    winners = order[keep][::-1]
    return timestamps[winners], values[winners]


def unpack_points(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of pack_points; a trailing partial point is ignored."""
    points = np.frombuffer(data, dtype=_POINT_DTYPE, count=len(data) // POINT_SIZE)
    return points["timestamp"].astype(np.int64), points["value"].astype(np.float64)


def _base_timestamp(target, offset: int) -> int:
    """Timestamp of an archive's first slot; 0 means the archive was never written."""
    return POINT.unpack(read_at(target, POINT_SIZE, offset))[0]


def _known_base(target, table: np.ndarray, archive: int, bases: np.ndarray) -> int:
    """_base_timestamp, answered from `bases` when known (not 0). A known base stays valid:
    whisper only overwrites slot 0 with a timestamp that maps to slot 0 again."""
    if not bases[archive]:
        bases[archive] = _base_timestamp(target, int(table[archive, 0]))
    return int(bases[archive])


def _slot(interval: int, base: int, step: int, points: int) -> int:
    return ((interval - base) // step) % points


def _read_ring(target, offset: int, points: int, first_slot: int, end_slot: int) -> bytes:
    """Slots first..end (end excluded) of a ring; equal slots mean the whole ring, as in whisper."""
    if first_slot < end_slot:
        return read_at(target, (end_slot - first_slot) * POINT_SIZE, offset + first_slot * POINT_SIZE)
    tail = read_at(target, (points - first_slot) * POINT_SIZE, offset + first_slot * POINT_SIZE)
    return tail + read_at(target, end_slot * POINT_SIZE, offset)


def fetch_archive(target, offset: int, step: int, points: int, from_interval: int,
                  until_interval: int, values: np.ndarray, known: np.ndarray) -> int:
    """Read one archive's points for [from_interval, until_interval) into values/known.

    Returns how many values whisper would return; values[i] is the point for
    from_interval + i*step and known[i] says whether its slot held that timestamp (values
    is NaN where not). Like whisper, a range longer than the ring returns fewer values.
    """
    base = _base_timestamp(target, offset)
    if base == 0:
        count = max(0, (until_interval - from_interval) // step)
        values[:count] = np.nan
        known[:count] = 0
        return count
    first = _slot(from_interval, base, step, points)
    end = _slot(until_interval, base, step, points)
    timestamps, stored = unpack_points(_read_ring(target, offset, points, first, end))
    count = len(timestamps)
    hit = timestamps == from_interval + step * np.arange(count, dtype=np.int64)
    values[:count] = np.where(hit, stored, np.nan)
    known[:count] = hit
    return count


def update_many(target, table: np.ndarray, aggregation_type: int, xff: float,
                timestamps: np.ndarray, values: np.ndarray, now: int, bases: np.ndarray) -> int:
    """whisper.file_update_many: points in processing order (newest first); returns points kept.

    `bases` (one int64 per archive, 0 = unknown) caches each archive's slot-0 timestamp
    across calls on the same file; it is read and updated in place.

    Each point goes to the first archive whose retention covers its age (archives are only
    ever walked forwards); once a point is too old for the last archive, it and all later
    ones are dropped. Each archive's batch is committed (written, then propagated) before
    the next archive's.
    """
    kept = 0
    archive = 0
    batch: list[int] = []
    for index in range(len(timestamps)):
        age = now - int(timestamps[index])
        while archive < len(table) and table[archive, 1] * table[archive, 2] < age:
            if batch:
                _commit(target, table, aggregation_type, xff, archive, batch, timestamps, values, bases)
                batch = []
            archive += 1
        if archive == len(table):
            break
        batch.append(index)
        kept += 1
    if archive < len(table) and batch:
        _commit(target, table, aggregation_type, xff, archive, batch, timestamps, values, bases)
    return kept


def _commit(target, table, aggregation_type, xff, archive, batch, timestamps, values, bases) -> None:
    chronological = batch[::-1]
    archive_update_many(target, table, aggregation_type, xff, archive,
                        timestamps[chronological], values[chronological], bases)


def archive_update_many(target, table: np.ndarray, aggregation_type: int, xff: float,
                        archive: int, timestamps: np.ndarray, values: np.ndarray,
                        bases: np.ndarray) -> None:
    """Write chronological points into one archive, then propagate them to lower ones.

    Like whisper: align each timestamp to the archive's step; of points sharing an interval
    keep the last; pack contiguous intervals into runs, each written with one write (two
    when it wraps past the ring's end); then propagate every distinct lower interval, one
    lower archive at a time, stopping after the first lower archive where none propagated.
    """
    offset, step, points = (int(x) for x in table[archive])
    aligned = [int(t) - int(t) % step for t in timestamps]
    runs: list[tuple[int, bytes]] = []
    run: list[bytes] = []
    previous = None
    for i, interval in enumerate(aligned):
        if i + 1 < len(aligned) and aligned[i + 1] == interval:
            continue
        _check_timestamp(interval)
        # whisper tests `not previousInterval`, so a run after interval 0 never breaks
        if previous and interval != previous + step:
            runs.append((previous - step * (len(run) - 1), b"".join(run)))
            run = []
        run.append(POINT.pack(interval, float(values[i])))
        previous = interval
    runs.append((previous - step * (len(run) - 1), b"".join(run)))

    base = _known_base(target, table, archive, bases)  # read once for the whole batch
    if base == 0:
        base = runs[0][0]
    archive_end = offset + points * POINT_SIZE
    slot_zero = None  # the timestamp last written to slot 0
    overflowed = False
    for start, packed in runs:
        position = offset + _slot(start, base, step, points) * POINT_SIZE
        beyond = position + len(packed) - archive_end
        if beyond > 0:
            write_at(target, packed[:-beyond], position)
            write_at(target, packed[-beyond:], offset)  # may run past the ring, as in whisper
            slot_zero = POINT.unpack_from(packed, len(packed) - beyond)[0]
            overflowed = overflowed or beyond > points * POINT_SIZE
        else:
            write_at(target, packed, position)
            if position == offset:
                slot_zero = POINT.unpack_from(packed)[0]
    if overflowed:  # other archives' slots were overwritten: forget every known base
        bases[:] = 0
    elif slot_zero is not None:
        bases[archive] = slot_zero

    higher = archive
    for lower in range(len(table)):
        lower_step = int(table[lower, 1])
        if lower_step <= step:
            continue
        intervals = set(interval - interval % lower_step for interval in aligned)
        propagated = False
        for interval in intervals:  # a set's iteration order, exactly what whisper uses
            if _propagate(target, table, aggregation_type, xff, interval, higher, lower, bases):
                propagated = True
        if not propagated:
            break
        higher = lower


def _propagate(target, table, aggregation_type: int, xff: float, interval: int, higher: int,
               lower: int, bases: np.ndarray) -> bool:
    """Aggregate one lower interval from the higher archive; False when too few points known."""
    h_offset, h_step, h_points = (int(x) for x in table[higher])
    l_offset, l_step, l_points = (int(x) for x in table[lower])
    lower_start = interval - interval % l_step
    h_base = _known_base(target, table, higher, bases)
    first = 0 if h_base == 0 else _slot(lower_start, h_base, h_step, h_points)
    end = (first + l_step // h_step) % h_points
    timestamps, stored = unpack_points(_read_ring(target, h_offset, h_points, first, end))
    neighbors = [
        float(value) if int(ts) == lower_start + i * h_step else None
        for i, (ts, value) in enumerate(zip(timestamps, stored, strict=True))
    ]
    known = [value for value in neighbors if value is not None]
    if not known or float(len(known)) / float(len(neighbors)) < xff:
        return False
    value = aggregate(AGGREGATION_TYPE_TO_METHOD[aggregation_type], known, neighbors)
    l_base = _known_base(target, table, lower, bases)
    slot = 0 if l_base == 0 else _slot(lower_start, l_base, l_step, l_points)
    write_at(target, POINT.pack(lower_start, value), l_offset + slot * POINT_SIZE)
    if slot == 0:
        bases[lower] = lower_start
    return True

