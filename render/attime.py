"""Graphite's time grammar for `from`, `until` and `now` (graphite-web's attime).

Same quirks on purpose, since dashboards depend on them: `_`, `,` and
spaces are ignored and case does not matter; an all-digit spec is epoch
seconds unless it reads as a plausible YYYYMMDD; the spec splits at its
first `+` (else its first `-`) into a reference (`now`, `noon`, `6pm`,
`16:00_20110501`, `yesterday`, `jan1`, `monday`, `03/15/24`, ...) and an
offset (`-1h30min`, `+2d`; units match by prefix: s, min, h, d, w, mon =
30 days, y = 365 days; a bare `m` is an error); `12:30pm` is 00:30.

Time zones: references are wall-clock times in `tz` (ambiguous or missing
wall times resolve as pytz's `localize(is_dst=False)` does); offsets are
absolute durations. `tz` must be a PEP 495 tzinfo (zoneinfo, datetime.timezone).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_CLOCK_WORDS = (("noon", 12), ("midnight", 0), ("teatime", 16))
# Unit prefixes in the order graphite tests them, with their length in seconds.
_UNITS = (
    ("s", "seconds", 1),
    ("min", "minutes", 1),
    ("h", "hours", 1),
    ("d", "days", 1),
    ("w", "weeks", 1),
    ("mon", "days", 30),
    ("y", "days", 365),
)


class TimeSpecError(ValueError):
    """A `from`/`until`/`now` value or an interval that graphite would not parse."""

    def __init__(self, spec: str, reason: str, thing: str = "time") -> None:
        super().__init__(f"cannot parse {thing}={spec}: {reason}")
        self.spec = spec
        self.reason = reason


def parse_time(spec: str, tz: tzinfo, now: datetime | None = None) -> datetime:
    """An aware datetime in `tz` for a graphite time spec; `now` defaults to
    the wall clock (a naive `now` is a wall time in `tz`)."""
    try:
        return _parse_time(spec, tz, now)
    except (ValueError, OverflowError, OSError) as exc:
        if isinstance(exc, TimeSpecError):
            raise
        raise TimeSpecError(spec, str(exc)) from None


def parse_offset(spec: str) -> timedelta:
    """A signed interval such as `-1h30min`, `+2d` or `5min` (sign optional,
    case-sensitive, no spaces: graphite's parseTimeOffset, used for function
    arguments)."""
    try:
        return _offset(spec)
    except (ValueError, OverflowError) as exc:
        raise TimeSpecError(spec, str(exc), thing="interval") from None


def _parse_time(spec: str, tz: tzinfo, now: datetime | None) -> datetime:
    text = spec.strip().lower().replace("_", "").replace(",", "").replace(" ", "")
    if text.isdigit() and not _looks_like_yyyymmdd(text):
        return datetime.fromtimestamp(int(text), tz)
    for sign in "+-":
        if sign in text:
            reference, offset = text.split(sign, 1)
            offset = sign + offset
            break
    else:
        reference, offset = text, ""
    return _shift(_reference(reference, tz, _resolve_now(now, tz)), _offset(offset), tz)


def _looks_like_yyyymmdd(digits: str) -> bool:
    return (
        len(digits) == 8
        and int(digits[:4]) > 1900
        and int(digits[4:6]) < 13
        and int(digits[6:]) < 32
    )


def _resolve_now(now: datetime | None, tz: tzinfo) -> datetime:
    if now is None:
        return datetime.now(tz)
    if now.tzinfo is None:
        return _localize(now, tz)
    return now.astimezone(tz)


def _reference(ref: str, tz: tzinfo, now: datetime) -> datetime:
    """Time of day, then day, of a reference; both default to today 00:00."""
    if not ref or ref == "now":
        return now
    rest = ref
    hour = minute = 0
    colon = rest.find(":")
    if 0 < colon < 3:
        hour = int(rest[:colon])
        minute = int(rest[colon + 1 : colon + 3])
        rest = rest[colon + 3 :]
        if rest[:2] == "am":
            rest = rest[2:]
        elif rest[:2] == "pm":
            hour = (hour + 12) % 24
            rest = rest[2:]
    marker = rest.find("am")
    if 0 < marker < 3:
        hour = int(rest[:marker])
        rest = rest[marker + 2 :]
    marker = rest.find("pm")
    if 0 < marker < 3:
        hour = (int(rest[:marker]) + 12) % 24
        rest = rest[marker + 2 :]
    for word, word_hour in _CLOCK_WORDS:
        if rest.startswith(word):
            hour, minute = word_hour, 0
            rest = rest[len(word) :]
            break
    day = now.replace(hour=hour, minute=minute, second=0, microsecond=0, tzinfo=None)
    return _localize(_day(rest, ref, day, hour, minute), tz)


def _day(rest: str, ref: str, day: datetime, hour: int, minute: int) -> datetime:
    if rest in ("yesterday", "today", "tomorrow"):
        return day + timedelta(days={"yesterday": -1, "today": 0, "tomorrow": 1}[rest])
    if rest.count("/") == 2:
        month, dom, year = map(int, rest.split("/"))
        if year < 1900:
            year += 1900
        if year < 1970:
            year += 100
        return datetime(year, month, dom, hour, minute)
    if len(rest) == 8 and rest.isdigit():
        return datetime(int(rest[:4]), int(rest[4:6]), int(rest[6:8]), hour, minute)
    if rest[:3] in _MONTHS:
        if rest[-2:].isdigit():
            dom = int(rest[-2:])
        elif rest[-1:].isdigit():
            dom = int(rest[-1:])
        else:
            raise ValueError("Day of month required after month name")
        return datetime(day.year, _MONTHS.index(rest[:3]) + 1, dom, hour, minute)
    if rest[:3] in _WEEKDAYS:
        today = (day.weekday() + 1) % 7  # graphite's week starts on Sunday
        back = (today - _WEEKDAYS.index(rest[:3])) % 7
        return day - timedelta(days=back)
    if rest:
        raise ValueError(f"Unknown day reference: {ref}")
    return day


def _offset(offset: str) -> timedelta:
    """Sign, then one or more number+unit terms; the sign applies to all."""
    if not offset:
        return timedelta()
    sign = 1
    if not offset[0].isdigit():
        if offset[0] not in "+-":
            raise ValueError(f"Invalid offset: {offset}")
        sign = -1 if offset[0] == "-" else 1
        offset = offset[1:]
    total = timedelta()
    while offset:
        digits = _leading(offset, str.isdigit)
        number = int(offset[:digits])
        offset = offset[digits:]
        letters = _leading(offset, str.isalpha)
        unit = offset[:letters]
        offset = offset[letters:]
        name, scale = _unit(unit)
        total += timedelta(**{name: sign * number * scale})
    return total


def _leading(text: str, predicate: Callable[[str], bool]) -> int:
    count = 0
    while count < len(text) and predicate(text[count]):
        count += 1
    return count


def _unit(unit: str) -> tuple[str, int]:
    for prefix, name, scale in _UNITS:
        if unit.startswith(prefix):
            return name, scale
    raise ValueError(f"Invalid offset unit '{unit}'")


def _localize(wall: datetime, tz: tzinfo) -> datetime:
    """A naive wall time in `tz`, resolved as pytz's localize(is_dst=False):
    in a repeated hour the standard-time reading, in a skipped hour the
    offset in force before the jump."""
    early = wall.replace(tzinfo=tz, fold=0)
    late = wall.replace(tzinfo=tz, fold=1)
    if early.utcoffset() == late.utcoffset():
        return early
    real = [c for c in (early, late) if c.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == wall]
    if not real:
        return early
    standard = [c for c in real if not c.dst()]
    return max(standard or real, key=lambda c: c.astimezone(UTC))


def _shift(reference: datetime, offset: timedelta, tz: tzinfo) -> datetime:
    """reference + offset as an absolute duration, expressed in `tz`."""
    wall = reference.replace(tzinfo=None) + offset
    utc = wall - reference.utcoffset()
    return utc.replace(tzinfo=UTC).astimezone(tz)
