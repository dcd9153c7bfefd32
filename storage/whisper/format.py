"""The Whisper file format as data: struct layouts, aggregation tables, a typed header.

Everything here is pure (no I/O): bytes in, typed values out, and back. FORMAT.md draws
the layout these constants describe.
"""
from __future__ import annotations

import operator
import re
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from types import MappingProxyType

import numpy as np

from .errors import (
    CorruptWhisperFile,
    InvalidAggregationMethod,
    InvalidConfiguration,
    InvalidXFilesFactor,
)

# Struct layouts: big-endian ("!"), no padding. Names follow whisper.py's constants.
LONG_FORMAT = "!L"
LONG_SIZE = struct.calcsize(LONG_FORMAT)
FLOAT_FORMAT = "!f"
FLOAT_SIZE = struct.calcsize(FLOAT_FORMAT)
VALUE_FORMAT = "!d"
VALUE_SIZE = struct.calcsize(VALUE_FORMAT)
POINT_FORMAT = "!Ld"  # timestamp: uint32, value: float64
POINT_SIZE = struct.calcsize(POINT_FORMAT)
METADATA_FORMAT = "!2LfL"  # aggregationType, maxRetention, xFilesFactor, archiveCount
METADATA_SIZE = struct.calcsize(METADATA_FORMAT)
ARCHIVE_INFO_FORMAT = "!3L"  # offset, secondsPerPoint, points
ARCHIVE_INFO_SIZE = struct.calcsize(ARCHIVE_INFO_FORMAT)

METADATA = struct.Struct(METADATA_FORMAT)
ARCHIVE_INFO = struct.Struct(ARCHIVE_INFO_FORMAT)
POINT = struct.Struct(POINT_FORMAT)

UINT32_LIMIT = 1 << 32
DEFAULT_X_FILES_FACTOR = 0.5
DEFAULT_AGGREGATION_METHOD = "average"

AGGREGATION_TYPE_TO_METHOD = MappingProxyType({
    1: "average",
    2: "sum",
    3: "last",
    4: "max",
    5: "min",
    6: "avg_zero",
    7: "absmax",
    8: "absmin",
})
AGGREGATION_METHOD_TO_TYPE = MappingProxyType(
    {method: code for code, method in AGGREGATION_TYPE_TO_METHOD.items()}
)

UNIT_MULTIPLIERS = MappingProxyType({
    "seconds": 1,
    "minutes": 60,
    "hours": 3600,
    "days": 86400,
    "weeks": 86400 * 7,
    "years": 86400 * 365,
})
_NUMBER_WITH_UNIT = re.compile(r"^(\d+)([a-z]+)$")


@dataclass(frozen=True)
class ArchiveInfo:
    """One archive's entry in the header: where its ring of points starts and its shape."""

    offset: int
    seconds_per_point: int
    points: int

    @property
    def retention(self) -> int:
        return self.seconds_per_point * self.points

    @property
    def size(self) -> int:
        return self.points * POINT_SIZE

    @property
    def end(self) -> int:
        return self.offset + self.size

    def as_dict(self) -> dict:
        """The dict whisper.info() shows for this archive (same keys, same order)."""
        return {
            "offset": self.offset,
            "secondsPerPoint": self.seconds_per_point,
            "points": self.points,
            "retention": self.retention,
            "size": self.size,
        }


@dataclass(frozen=True)
class Header:
    """A file's parsed header. Frozen, so a cached copy cannot be changed by its users."""

    aggregation_type: int
    max_retention: int
    x_files_factor: float  # the float32 stored in the file, widened to a Python float
    archives: tuple[ArchiveInfo, ...]

    @property
    def aggregation_method(self) -> str:
        return AGGREGATION_TYPE_TO_METHOD[self.aggregation_type]

    @property
    def size(self) -> int:
        """Bytes taken by the metadata and the archive table."""
        return METADATA_SIZE + ARCHIVE_INFO_SIZE * len(self.archives)

    @cached_property
    def table(self) -> np.ndarray:
        """(archives x 3) int64 array of offset, secondsPerPoint, points: what kernels take."""
        rows = [(a.offset, a.seconds_per_point, a.points) for a in self.archives]
        table = np.array(rows, dtype=np.int64).reshape(len(rows), 3)
        table.setflags(write=False)
        return table

    @cached_property
    def smallest_ring(self) -> int:
        """The fewest points any archive holds."""
        return min(archive.points for archive in self.archives)

    @cached_property
    def data_end(self) -> int:
        """The file's size: where its last archive ends."""
        return max(archive.end for archive in self.archives)

    @cached_property
    def packed(self) -> bytes:
        """The header's bytes as they start the file (see pack_header)."""
        return pack_header(self)

    def as_dict(self) -> dict:
        """whisper.info()'s dict; a fresh one per call, since callers may mutate it."""
        return {
            "aggregationMethod": self.aggregation_method,
            "maxRetention": self.max_retention,
            "xFilesFactor": self.x_files_factor,
            "archives": [archive.as_dict() for archive in self.archives],
        }


def parse_header(data: bytes, file_size: int, path: str) -> Header:
    """Decode and check a header read from the start of a file of `file_size` bytes.

    Refuses (CorruptWhisperFile naming `path`) everything whisper refuses, and also what it
    would only trip over later: no archives, empty archives, archives overlapping the
    header or reaching past the end of the file, a maxRetention no archive has.
    """
    if len(data) < METADATA_SIZE:
        raise CorruptWhisperFile(
            f"cannot read header: file holds {len(data)} bytes, metadata needs {METADATA_SIZE}",
            path,
        )
    aggregation_type, max_retention, xff, count = METADATA.unpack_from(data)
    if aggregation_type not in AGGREGATION_TYPE_TO_METHOD:
        raise CorruptWhisperFile(
            f"cannot read header aggregationType={aggregation_type}: not one of 1..8", path
        )
    if not 0 <= xff <= 1:
        raise CorruptWhisperFile(
            f"cannot read header xFilesFactor={xff}: not between 0 and 1", path
        )
    if count == 0:
        raise CorruptWhisperFile("cannot read header archiveCount=0: a file needs an archive", path)
    header_size = METADATA_SIZE + ARCHIVE_INFO_SIZE * count
    if len(data) < header_size:
        raise CorruptWhisperFile(
            f"cannot read header archiveCount={count}: the archive table needs "
            f"{header_size} bytes, the file holds {len(data)}",
            path,
        )
    archives = []
    for index in range(count):
        offset, step, points = ARCHIVE_INFO.unpack_from(data, METADATA_SIZE + index * ARCHIVE_INFO_SIZE)
        archive = ArchiveInfo(offset, step, points)
        if step == 0 or points == 0:
            raise CorruptWhisperFile(
                f"cannot read archive{index} secondsPerPoint={step} points={points}: must be positive",
                path,
            )
        if offset < header_size or archive.end > file_size:
            raise CorruptWhisperFile(
                f"cannot read archive{index} offset={offset}: its {archive.size} bytes do not lie "
                f"between the header end ({header_size}) and the file end ({file_size})",
                path,
            )
        archives.append(archive)
    longest = max(archive.retention for archive in archives)
    if max_retention != longest:
        raise CorruptWhisperFile(
            f"cannot read header maxRetention={max_retention}: the archives keep {longest}s", path
        )
    return Header(aggregation_type, max_retention, xff, tuple(archives))


def aggregation_type_for(method: str) -> int:
    """The type number stored in the file for an aggregation method name."""
    try:
        return AGGREGATION_METHOD_TO_TYPE[method]
    except (KeyError, TypeError):
        raise InvalidAggregationMethod(
            f"cannot use aggregationMethod={method!r}: not one of "
            f"{', '.join(AGGREGATION_METHOD_TO_TYPE)}"
        ) from None


def checked_x_files_factor(value: object) -> float:
    """`value` as a float in [0, 1], or InvalidXFilesFactor saying why not."""
    try:
        xff = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidXFilesFactor(f"cannot use xFilesFactor={value!r}: not a number") from None
    if not 0 <= xff <= 1:  # also refuses NaN, which whisper would write and then not read back
        raise InvalidXFilesFactor(f"cannot use xFilesFactor={value!r}: not between 0 and 1")
    return xff


def pack_metadata(aggregation_type: int, max_retention: int, xff: float, archive_count: int) -> bytes:
    return METADATA.pack(aggregation_type, max_retention, xff, archive_count)


def build_header(archives: Sequence[tuple[int, int]], xff: float, aggregation_type: int) -> Header:
    """The header a new file with these (already validated, sorted) archives gets."""
    offset = METADATA_SIZE + ARCHIVE_INFO_SIZE * len(archives)
    infos = []
    for step, points in archives:
        infos.append(ArchiveInfo(offset, step, points))
        offset += points * POINT_SIZE
    max_retention = max(info.retention for info in infos)
    stored_xff = struct.unpack(FLOAT_FORMAT, struct.pack(FLOAT_FORMAT, xff))[0]
    return Header(aggregation_type, max_retention, stored_xff, tuple(infos))


def pack_header(header: Header) -> bytes:
    """Header bytes. The float32 xFilesFactor survives the round trip through a double."""
    parts = [
        pack_metadata(
            header.aggregation_type, header.max_retention, header.x_files_factor, len(header.archives)
        )
    ]
    parts.extend(
        ARCHIVE_INFO.pack(a.offset, a.seconds_per_point, a.points) for a in header.archives
    )
    return b"".join(parts)


def normalize_archive_list(archive_list: Iterable[Sequence[int]]) -> tuple[tuple[int, int], ...]:
    """Check an archive list against Whisper's rules and return it sorted by precision.

    A list argument is sorted in place, as whisper.validateArchiveList does (whisper.create
    relies on that side effect); other iterables are copied.
    """
    if isinstance(archive_list, list):
        archive_list.sort(key=operator.itemgetter(0))
        archives = archive_list
    else:
        archives = sorted(archive_list, key=operator.itemgetter(0))
    if not archives:
        raise InvalidConfiguration("cannot create archives=[]: at least one archive is needed")
    result = tuple(_checked_archive(index, archive) for index, archive in enumerate(archives))
    for index, ((step, points), (next_step, next_points)) in enumerate(zip(result, result[1:], strict=False)):
        pair = f"archive{index}={(step, points)}, archive{index + 1}={(next_step, next_points)}"
        if step == next_step:
            raise InvalidConfiguration(f"cannot create {pair}: two archives share one precision")
        if next_step % step:
            raise InvalidConfiguration(
                f"cannot create {pair}: {step}s does not evenly divide the lower precision {next_step}s"
            )
        if not next_step * next_points > step * points:
            raise InvalidConfiguration(
                f"cannot create {pair}: the lower precision archive must cover a longer time "
                f"({next_step * next_points}s is not more than {step * points}s)"
            )
        if points < next_step // step:
            raise InvalidConfiguration(
                f"cannot create {pair}: archive{index + 1} consolidates {next_step // step} of "
                f"archive{index}'s points but archive{index} has only {points}"
            )
    if METADATA_SIZE + sum(ARCHIVE_INFO_SIZE + p * POINT_SIZE for _, p in result) >= UINT32_LIMIT:
        raise InvalidConfiguration(f"cannot create archives={list(result)}: file would exceed 4 GiB")
    return result


def _checked_archive(index: int, archive: Sequence[int]) -> tuple[int, int]:
    try:
        step, points = (operator.index(part) for part in archive)
    except (TypeError, ValueError):
        raise InvalidConfiguration(
            f"cannot create archive{index}={archive!r}: expected (secondsPerPoint, points) integers"
        ) from None
    if not (0 < step < UINT32_LIMIT and 0 < points < UINT32_LIMIT and step * points < UINT32_LIMIT):
        raise InvalidConfiguration(
            f"cannot create archive{index}={(step, points)}: secondsPerPoint, points and their "
            "product must be positive 32-bit numbers"
        )
    return step, points


def get_unit_string(unit: str) -> str:
    """The full unit name that `unit` abbreviates ('m' -> 'minutes'), as whisper resolves it."""
    for name in UNIT_MULTIPLIERS:
        if name.startswith(unit):
            return name
    raise ValueError(f"cannot parse unit={unit!r}: not a prefix of {', '.join(UNIT_MULTIPLIERS)}")


def parse_retention_def(definition: str) -> tuple[int, int]:
    """'60s:1d' -> (60, 1440): precision in seconds and number of points.

    Bare numbers are seconds (precision) and a point count; units are any prefix of
    seconds/minutes/hours/days/weeks/years, as in whisper.parseRetentionDef.
    """
    try:
        precision_text, points_text = definition.strip().split(":", 1)
    except ValueError:
        raise ValueError(
            f"cannot parse retention={definition!r}: expected <precision>:<points>"
        ) from None
    precision = _seconds(precision_text, definition, "precision")
    if points_text.isdigit():
        return precision, int(points_text)
    if precision == 0:
        raise ValueError(f"cannot parse retention={definition!r}: precision must be positive")
    return precision, _seconds(points_text, definition, "retention") // precision


def _seconds(text: str, definition: str, what: str) -> int:
    if text.isdigit():
        return int(text)
    match = _NUMBER_WITH_UNIT.match(text)
    if not match:
        raise ValueError(f"cannot parse retention={definition!r}: invalid {what} {text!r}")
    return int(match.group(1)) * UNIT_MULTIPLIERS[get_unit_string(match.group(2))]


def aggregate(method: str, known_values: Sequence, neighbor_values: Sequence | None = None):
    """whisper.aggregate: combine the known higher-precision values of one lower interval.

    `neighbor_values` (None for missing) is only used by avg_zero, which counts missing
    points as zero. Uses Python's own sum/max/min so the results match whisper bit for bit.
    """
    if method == "average":
        return float(sum(known_values)) / float(len(known_values))
    if method == "sum":
        return float(sum(known_values))
    if method == "last":
        return known_values[-1]
    if method == "max":
        return max(known_values)
    if method == "min":
        return min(known_values)
    if method == "avg_zero":
        if not neighbor_values:
            raise InvalidAggregationMethod("cannot aggregate avg_zero: no neighborValues given")
        zeroed = [value or 0 for value in neighbor_values]
        return float(sum(zeroed)) / float(len(zeroed))
    if method == "absmax":
        return max(known_values, key=abs)
    if method == "absmin":
        return min(known_values, key=abs)
    raise InvalidAggregationMethod(f"cannot aggregate with aggregationMethod={method!r}: unknown method")

