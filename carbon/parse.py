"""Bytes off the wire to points and rejects: carbon's plaintext and pickle formats.

Pure functions, no Twisted. Semantics follow carbon 1.1.10's receivers:

* plaintext: lines end in ``\\n`` (a trailing ``\\r`` is whitespace); a line is
  exactly three whitespace-separated fields ``name value timestamp``; both
  numbers are read as Python's ``float()`` reads them (``1e3``, ``1_000``,
  ``-1.5``, ``nan``; no hex). As in carbon, a line is read as UTF-8 text, so
  Unicode spaces and 0x1c-0x1f separate fields and non-ASCII digits count
  (``parse_line``; the native scan hands such lines to it). Blank lines are skipped.
* pickle: a list of ``(name, (timestamp, value))`` with numbers as int, float,
  str or bytes, names as str or bytes; a bad entry is rejected, the rest kept.
* both: a timestamp of -1 (carbon: ``int(ts) == -1``) means ``now``; NaN and
  infinite values are dropped as rejects where carbon silently drops NaN;
  timestamps outside whisper's uint32 range are rejected; names are
  canonicalised by :class:`carbon.names.MetricIndex` (bad ones rejected).

The order checks run in decides a line's reason: line length, field count,
value syntax, timestamp syntax and range, NaN/inf value, then the name.

``parse_lines`` uses the compiled ``native.carbon_parse`` kernel when it is
built and the index holds its spelling table; ``parse_lines_py`` is its twin.
"""
from __future__ import annotations

import math
import re
import reprlib
from dataclasses import dataclass

import numpy as np

from carbon import unpickle
from carbon.names import BadMetricName, MetricIndex

try:
    from native import carbon_parse as native_parse
except ImportError:  # the pure twin serves when the extension is not built
    native_parse = None

DEFAULT_MAX_LINE_LENGTH = 16384  # Twisted LineOnlyReceiver.MAX_LENGTH, as carbon uses
DEFAULT_MAX_POINTS_PER_MESSAGE = 100_000
REJECT_SAMPLE_BYTES = 200
# Whisper stores timestamps as uint32.
_TIMESTAMP_LIMIT = 2.0**32


@dataclass(frozen=True, slots=True)
class Reject:
    """Something refused: a short snake_case ``reason`` and a truncated ``sample`` of the input."""

    reason: str
    sample: bytes


@dataclass(frozen=True, slots=True, eq=False)
class Points:
    """Parsed points in arrival order (``ids`` index a MetricIndex) plus what was refused."""

    ids: np.ndarray
    timestamps: np.ndarray
    values: np.ndarray
    rejects: list[Reject]

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def from_lists(
        cls, ids: list[int], timestamps: list[float], values: list[float], rejects: list[Reject]
    ) -> Points:
        return cls(
            np.array(ids, dtype=np.int64),
            np.array(timestamps, dtype=np.float64),
            np.array(values, dtype=np.float64),
            rejects,
        )


def too_long_sample_bytes(max_line_length: int) -> int:
    """How much of an over-long line a reject keeps: no more than a receiver
    must buffer to see the line is too long, so the sample never depends on how
    the line was split into reads."""
    return min(REJECT_SAMPLE_BYTES, max_line_length + 1)


def _timestamp_problem(timestamp: float, now: float) -> tuple[float, bool]:
    """(timestamp with -1 replaced by ``now``, whether it is out of range)."""
    if -2.0 < timestamp <= -1.0:
        timestamp = now
    return timestamp, not 0.0 <= timestamp < _TIMESTAMP_LIMIT


def _value_problem(value: float) -> str | None:
    if math.isnan(value):
        return "nan_value"
    if math.isinf(value):
        return "inf_value"
    return None


# Bytes that make a line read differently as text: str.split() (carbon decodes each line
# as UTF-8 first) also separates fields at 0x1c-0x1f and at Unicode spaces (U+00A0, U+2003,
# ...), and float() of a str takes non-ASCII digits. Lines without them parse the same
# either way, as bytes, which is all the native scan does.
_TEXT_ONLY = re.compile(rb"[\x1c-\x1f\x80-\xff]")


def parse_line(line: bytes, now: float) -> tuple[str | None, bytes, float, float]:
    """One line (no newline, not over-long) as carbon reads it: ``(reason, name, value,
    timestamp)``, reason None for a point, "" for a blank line, else the reject reason.

    A line that is valid UTF-8 is split and its numbers read as str, as carbon does; one
    that is not (carbon drops the connection) is read as bytes.
    """
    fields: list | None = None
    if _TEXT_ONLY.search(line) is not None:
        try:
            fields = [field.encode("utf-8") if k == 0 else field
                      for k, field in enumerate(line.decode("utf-8").split())]
        except UnicodeDecodeError:
            pass
    if fields is None:
        fields = line.split()
    if not fields:
        return "", b"", 0.0, 0.0
    if len(fields) != 3:
        return "malformed_line", b"", 0.0, 0.0
    name, value_field, timestamp_field = fields
    try:
        value = float(value_field)
    except ValueError:
        return "bad_value", b"", 0.0, 0.0
    try:
        timestamp = float(timestamp_field)
    except ValueError:
        return "bad_timestamp", b"", 0.0, 0.0
    timestamp, out_of_range = _timestamp_problem(timestamp, now)
    if out_of_range:
        return "bad_timestamp", b"", 0.0, 0.0
    return _value_problem(value), name, value, timestamp


def parse_lines_py(
    chunk: bytes, index: MetricIndex, now: float, max_line_length: int = DEFAULT_MAX_LINE_LENGTH
) -> Points:
    """Pure-Python twin of the native line parser (see the module docstring)."""
    ids: list[int] = []
    timestamps: list[float] = []
    values: list[float] = []
    rejects: list[Reject] = []
    for line in bytes(chunk).split(b"\n"):
        if len(line) > max_line_length:
            rejects.append(Reject("line_too_long", line[:too_long_sample_bytes(max_line_length)]))
            continue
        reason, name, value, timestamp = parse_line(line, now)
        if reason is None:
            try:
                metric_id = index.id_for(name)
            except BadMetricName:
                reason = "bad_name"
        if reason == "":
            continue
        if reason is not None:
            rejects.append(Reject(reason, line.strip()[:REJECT_SAMPLE_BYTES]))
            continue
        ids.append(metric_id)
        timestamps.append(timestamp)
        values.append(value)
    return Points.from_lists(ids, timestamps, values, rejects)


def native_available(index: MetricIndex) -> bool:
    """Whether ``parse_lines`` will take the compiled path for ``index``."""
    return native_parse is not None and isinstance(index.spellings, native_parse.SpellingTable)


def parse_lines(
    chunk: bytes, index: MetricIndex, now: float, max_line_length: int = DEFAULT_MAX_LINE_LENGTH
) -> Points:
    """Parse a chunk of complete ``name value timestamp`` lines (the last may lack ``\\n``)."""
    if not native_available(index):
        return parse_lines_py(chunk, index, now, max_line_length)
    ids, timestamps, values, rejects = native_parse.parse_lines(
        chunk, index, now, max_line_length, Reject, BadMetricName, parse_line
    )
    return Points(ids, timestamps, values, rejects)


def _describe(entry: object) -> bytes:
    """A short, depth-bounded repr of a pickle entry for a reject sample."""
    short = reprlib.Repr()
    short.maxlevel = 3
    short.maxstring = 120
    short.maxother = 60
    text = short.repr(entry)
    return text.encode("utf-8", "backslashreplace")[:REJECT_SAMPLE_BYTES]


def _as_float(raw: object) -> float | None:
    """carbon's ``float(x)``, or None where it would fail."""
    try:
        return float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None


def parse_pickle(
    payload: bytes,
    index: MetricIndex,
    now: float,
    max_points: int = DEFAULT_MAX_POINTS_PER_MESSAGE,
    max_bytes: int = unpickle.DEFAULT_MAX_PICKLE_BYTES,
) -> Points:
    """Parse one pickle frame's payload: ``[(name, (timestamp, value)), ...]``.

    A plain, valid frame of binary opcodes (what carbon-relay and Python
    clients send) is decoded by the native kernel without building a Python
    object per entry; anything else takes :func:`parse_pickle_py`, the
    screened general path, which also names every reject.
    """
    if native_available(index) and len(payload) <= max_bytes:
        decoded = native_parse.parse_pickle_points(payload, index, now, max_points, BadMetricName)
        if decoded is not None:
            return Points(*decoded, [])
    return parse_pickle_py(payload, index, now, max_points, max_bytes)


def parse_pickle_py(
    payload: bytes,
    index: MetricIndex,
    now: float,
    max_points: int = DEFAULT_MAX_POINTS_PER_MESSAGE,
    max_bytes: int = unpickle.DEFAULT_MAX_PICKLE_BYTES,
) -> Points:
    """The general pickle path: screen, data-only unpickle, then check each entry."""
    ids: list[int] = []
    timestamps: list[float] = []
    values: list[float] = []
    rejects: list[Reject] = []
    try:
        entries = unpickle.loads(payload, max_bytes)
    except unpickle.RefusedPickle as exc:
        rejects.append(Reject("bad_pickle", str(exc).encode()[:REJECT_SAMPLE_BYTES]))
        return Points.from_lists(ids, timestamps, values, rejects)
    if not isinstance(entries, list | tuple):
        message = f"top level is {type(entries).__name__}, not a list of (name, (timestamp, value))"
        rejects.append(Reject("bad_pickle", message.encode()))
        return Points.from_lists(ids, timestamps, values, rejects)
    if len(entries) > max_points:
        message = f"{len(entries)} points in one message, over the limit of {max_points}"
        rejects.append(Reject("too_many_points", message.encode()))
        entries = entries[:max_points]
    for entry in entries:
        if not (
            isinstance(entry, tuple | list)
            and len(entry) == 2
            and isinstance(entry[1], tuple | list)
            and len(entry[1]) == 2
        ):
            rejects.append(Reject("bad_shape", _describe(entry)))
            continue
        name, (raw_timestamp, raw_value) = entry
        value = _as_float(raw_value)
        if value is None:
            rejects.append(Reject("bad_value", _describe(entry)))
            continue
        timestamp = _as_float(raw_timestamp)
        if timestamp is None:
            rejects.append(Reject("bad_timestamp", _describe(entry)))
            continue
        timestamp, out_of_range = _timestamp_problem(timestamp, now)
        if out_of_range:
            rejects.append(Reject("bad_timestamp", _describe(entry)))
            continue
        problem = _value_problem(value)
        if problem is not None:
            rejects.append(Reject(problem, _describe(entry)))
            continue
        if not isinstance(name, str | bytes):
            rejects.append(Reject("bad_name", _describe(entry)))
            continue
        try:
            metric_id = index.id_for(name)
        except BadMetricName:
            rejects.append(Reject("bad_name", _describe(entry)))
            continue
        ids.append(metric_id)
        timestamps.append(timestamp)
        values.append(value)
    return Points.from_lists(ids, timestamps, values, rejects)
