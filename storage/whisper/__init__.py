"""Whisper files, byte for byte as whisper 1.1.10 writes them, behind whisper's own module API.

Code written against ``import whisper`` works against ``from storage import whisper``:
create, update, update_many, fetch, info, setAggregationMethod, setXFilesFactor,
validateArchiveList, parseRetentionDef, merge, diff, file_update, file_update_many,
file_fetch, file_merge, file_diff, aggregate, the exception classes, the aggregation tables
and the struct format constants keep their names, arguments, results and exceptions.

Compatibility flags kept (module attributes, read once at the start of each module-level
call and passed down explicitly; nothing below the API reads them):

- ``LOCK`` - take an exclusive flock while create/update/update_many/set* write.
- ``AUTOFLUSH`` - fsync after each write.
- ``CACHE_HEADERS`` - reuse parsed headers, keyed by the file's device and inode (whisper keys
  by name, so a resized file kept its stale header; here it does not).
- ``FADVISE_RANDOM`` - posix_fadvise(RANDOM) on files opened by create/update/update_many.

``BUFFERING`` and the capability flags ``CAN_LOCK``, ``CAN_FALLOCATE``, ``CAN_FADVISE`` exist
as read-only facts; I/O here never goes through Python's buffers, so BUFFERING has no effect.

Layout: format.py (structs, typed header), kernels.py (compiled kernels, pure twin in
kernels_py.py), file.py (operations on an open file), api.py (this API), batch.py
(WhisperStore, the daemon's writer). FORMAT.md describes the bytes.
"""
import os as _os

from .api import (
    aggregate,
    create,
    diff,
    fetch,
    file_diff,
    file_fetch,
    file_merge,
    file_update,
    file_update_many,
    getUnitString,
    info,
    merge,
    parseRetentionDef,
    setAggregationMethod,
    setXFilesFactor,
    update,
    update_many,
    validateArchiveList,
)
from .errors import (
    CorruptWhisperFile,
    InvalidAggregationMethod,
    InvalidConfiguration,
    InvalidTimeInterval,
    InvalidXFilesFactor,
    TimestampNotCovered,
    WhisperException,
)
from .format import AGGREGATION_METHOD_TO_TYPE as aggregationMethodToType
from .format import AGGREGATION_TYPE_TO_METHOD as aggregationTypeToMethod
from .format import ARCHIVE_INFO_FORMAT as archiveInfoFormat
from .format import ARCHIVE_INFO_SIZE as archiveInfoSize
from .format import FLOAT_FORMAT as floatFormat
from .format import FLOAT_SIZE as floatSize
from .format import LONG_FORMAT as longFormat
from .format import LONG_SIZE as longSize
from .format import METADATA_FORMAT as metadataFormat
from .format import METADATA_SIZE as metadataSize
from .format import POINT_FORMAT as pointFormat
from .format import POINT_SIZE as pointSize
from .format import UNIT_MULTIPLIERS as UnitMultipliers
from .format import VALUE_FORMAT as valueFormat
from .format import VALUE_SIZE as valueSize

LOCK = False
AUTOFLUSH = False
CACHE_HEADERS = False
FADVISE_RANDOM = False
BUFFERING = 0

CAN_LOCK = True
CAN_FALLOCATE = hasattr(_os, "posix_fallocate")
CAN_FADVISE = hasattr(_os, "posix_fadvise")

aggregationMethods = tuple(aggregationTypeToMethod.values())

__all__ = [
    "AUTOFLUSH", "BUFFERING", "CACHE_HEADERS", "CAN_FADVISE", "CAN_FALLOCATE", "CAN_LOCK",
    "CorruptWhisperFile", "FADVISE_RANDOM", "InvalidAggregationMethod", "InvalidConfiguration",
    "InvalidTimeInterval", "InvalidXFilesFactor", "LOCK", "TimestampNotCovered", "UnitMultipliers",
    "WhisperException", "aggregate", "aggregationMethodToType", "aggregationMethods",
    "aggregationTypeToMethod", "archiveInfoFormat", "archiveInfoSize", "create", "diff", "fetch",
    "file_diff", "file_fetch", "file_merge", "file_update", "file_update_many", "floatFormat",
    "floatSize", "getUnitString", "info", "longFormat", "longSize", "merge", "metadataFormat",
    "metadataSize", "parseRetentionDef", "pointFormat", "pointSize", "setAggregationMethod",
    "setXFilesFactor", "update", "update_many", "validateArchiveList", "valueFormat", "valueSize",
]
