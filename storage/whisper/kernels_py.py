"""Readable pure-Python/numpy twins of the compiled kernels in native/whisper_kernels.pyx.

Same functions, arguments and results as the compiled module; tests run both on the same
inputs and compare. The code follows whisper 1.1.10's algorithm step by step (one read or
write per step), so it doubles as the specification the compiled kernels are checked against.

Files are int descriptors, read and written with pread/pwrite (no file position moves, so
readers and one writer can share a descriptor). A *table* is Header.table: one (offset, secondsPerPoint, points) int64 row per archive.

Errors: EOFError when the file ends before a read does (drivers turn it into
CorruptWhisperFile), OverflowError for a timestamp that a uint32 cannot hold, OSError from I/O.
"""
from __future__ import annotations

import os

import numpy as np

from .format import AGGREGATION_TYPE_TO_METHOD, POINT, POINT_SIZE, UINT32_LIMIT, aggregate

_ZERO_CHUNK_SIZE = 1 << 20
_POINT_DTYPE = np.dtype([("timestamp", ">u4"), ("value", ">f8")])


def read_at(fd: int, size: int, offset: int) -> bytes:
    """Exactly `size` bytes at `offset`, or EOFError."""
    data = os.pread(fd, size, offset)
    if len(data) != size:
        raise EOFError(f"cannot read bytes={size} at offset={offset}: the file ends first")
    return data


def write_at(fd: int, data: bytes, offset: int) -> None:
    """Write all of `data` at `offset`."""
    written = 0
    while written < len(data):
        written += os.pwrite(fd, data[written:], offset + written)


def fill_zeros(fd: int, offset: int, length: int) -> None:
    """Write `length` zero bytes at `offset` (the non-sparse, non-fallocate data area)."""
    zeros = bytes(min(length, _ZERO_CHUNK_SIZE))
    end = offset + length
    while offset < end:
        offset += os.pwrite(fd, zeros[:end - offset], offset)


def pack_points(timestamps: np.ndarray, values: np.ndarray) -> bytes:
    """Points as the file stores them: 12 bytes each, big-endian uint32 then float64."""
    for timestamp in timestamps:
        _check_timestamp(int(timestamp))
    return b"".join(POINT.pack(int(t), float(v)) for t, v in zip(timestamps, values, strict=True))


def _check_timestamp(timestamp: int) -> None:
    if not 0 <= timestamp < UINT32_LIMIT:
        raise OverflowError(f"cannot write timestamp={timestamp}: not a 32-bit unsigned number")


def unpack_points(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of pack_points; a trailing partial point is ignored."""
    points = np.frombuffer(data, dtype=_POINT_DTYPE, count=len(data) // POINT_SIZE)
    return points["timestamp"].astype(np.int64), points["value"].astype(np.float64)


def _base_timestamp(fd: int, offset: int) -> int:
    """Timestamp of an archive's first slot; 0 means the archive was never written."""
    return POINT.unpack(read_at(fd, POINT_SIZE, offset))[0]


def _known_base(fd: int, table: np.ndarray, archive: int, bases: np.ndarray) -> int:
    """_base_timestamp, answered from `bases` when known (not 0). A known base stays valid:
    whisper only overwrites slot 0 with a timestamp that maps to slot 0 again."""
    if not bases[archive]:
        bases[archive] = _base_timestamp(fd, int(table[archive, 0]))
    return int(bases[archive])


def _slot(interval: int, base: int, step: int, points: int) -> int:
    return ((interval - base) // step) % points


def _read_ring(fd, offset: int, points: int, first_slot: int, end_slot: int) -> bytes:
    """Slots first..end (end excluded) of a ring; equal slots mean the whole ring, as in whisper."""
    if first_slot < end_slot:
        return read_at(fd, (end_slot - first_slot) * POINT_SIZE, offset + first_slot * POINT_SIZE)
    tail = read_at(fd, (points - first_slot) * POINT_SIZE, offset + first_slot * POINT_SIZE)
    return tail + read_at(fd, end_slot * POINT_SIZE, offset)


def fetch_archive(fd, offset: int, step: int, points: int, from_interval: int,
                  until_interval: int, values: np.ndarray, known: np.ndarray) -> int:
    """Read one archive's points for [from_interval, until_interval) into values/known.

    Returns how many values whisper would return; values[i] is the point for
    from_interval + i*step and known[i] says whether its slot held that timestamp (values
    is NaN where not). Like whisper, a range longer than the ring returns fewer values.
    """
    base = _base_timestamp(fd, offset)
    if base == 0:
        count = max(0, (until_interval - from_interval) // step)
        values[:count] = np.nan
        known[:count] = 0
        return count
    first = _slot(from_interval, base, step, points)
    end = _slot(until_interval, base, step, points)
    timestamps, stored = unpack_points(_read_ring(fd, offset, points, first, end))
    count = len(timestamps)
    hit = timestamps == from_interval + step * np.arange(count, dtype=np.int64)
    values[:count] = np.where(hit, stored, np.nan)
    known[:count] = hit
    return count


def update_many(fd, table: np.ndarray, aggregation_type: int, xff: float,
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
                _commit(fd, table, aggregation_type, xff, archive, batch, timestamps, values, bases)
                batch = []
            archive += 1
        if archive == len(table):
            break
        batch.append(index)
        kept += 1
    if archive < len(table) and batch:
        _commit(fd, table, aggregation_type, xff, archive, batch, timestamps, values, bases)
    return kept


def _commit(fd, table, aggregation_type, xff, archive, batch, timestamps, values, bases) -> None:
    chronological = batch[::-1]
    archive_update_many(fd, table, aggregation_type, xff, archive,
                        timestamps[chronological], values[chronological], bases)


def archive_update_many(fd, table: np.ndarray, aggregation_type: int, xff: float,
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

    base = _known_base(fd, table, archive, bases)  # read once for the whole batch
    if base == 0:
        base = runs[0][0]
    archive_end = offset + points * POINT_SIZE
    slot_zero = None  # the timestamp last written to slot 0
    overflowed = False
    for start, packed in runs:
        position = offset + _slot(start, base, step, points) * POINT_SIZE
        beyond = position + len(packed) - archive_end
        if beyond > 0:
            write_at(fd, packed[:-beyond], position)
            write_at(fd, packed[-beyond:], offset)  # may run past the ring, as in whisper
            slot_zero = POINT.unpack_from(packed, len(packed) - beyond)[0]
            overflowed = overflowed or beyond > points * POINT_SIZE
        else:
            write_at(fd, packed, position)
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
            if _propagate(fd, table, aggregation_type, xff, interval, higher, lower, bases):
                propagated = True
        if not propagated:
            break
        higher = lower


def _propagate(fd, table, aggregation_type: int, xff: float, interval: int, higher: int,
               lower: int, bases: np.ndarray) -> bool:
    """Aggregate one lower interval from the higher archive; False when too few points known."""
    h_offset, h_step, h_points = (int(x) for x in table[higher])
    l_offset, l_step, l_points = (int(x) for x in table[lower])
    lower_start = interval - interval % l_step
    h_base = _known_base(fd, table, higher, bases)
    first = 0 if h_base == 0 else _slot(lower_start, h_base, h_step, h_points)
    end = (first + l_step // h_step) % h_points
    timestamps, stored = unpack_points(_read_ring(fd, h_offset, h_points, first, end))
    neighbors = [
        float(value) if int(ts) == lower_start + i * h_step else None
        for i, (ts, value) in enumerate(zip(timestamps, stored, strict=True))
    ]
    known = [value for value in neighbors if value is not None]
    if not known or float(len(known)) / float(len(neighbors)) < xff:
        return False
    value = aggregate(AGGREGATION_TYPE_TO_METHOD[aggregation_type], known, neighbors)
    l_base = _known_base(fd, table, lower, bases)
    slot = 0 if l_base == 0 else _slot(lower_start, l_base, l_step, l_points)
    write_at(fd, POINT.pack(lower_start, value), l_offset + slot * POINT_SIZE)
    if slot == 0:
        bases[lower] = lower_start
    return True

