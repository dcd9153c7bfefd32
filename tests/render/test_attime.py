"""render.attime: graphite's from/until/now grammar, hand-checked values and
a differential test against graphite-web 1.1.10's attime (pytz) over many
specs, `now`s and time zones."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from render.attime import TimeSpecError, parse_offset, parse_time

NOW = datetime(2024, 3, 15, 14, 37, 21, tzinfo=UTC)  # a Friday


def utc(*fields):
    return datetime(*fields, tzinfo=UTC)


# Verified against graphite-web (reference §1.5).
TABLE = {
    "now": NOW,
    "": NOW,
    "-1h": utc(2024, 3, 15, 13, 37, 21),
    "-2days": utc(2024, 3, 13, 14, 37, 21),
    "-30s": utc(2024, 3, 15, 14, 36, 51),
    "-5min": utc(2024, 3, 15, 14, 32, 21),
    "-5minutes": utc(2024, 3, 15, 14, 32, 21),
    "-1mon": utc(2024, 2, 14, 14, 37, 21),
    "-1y": utc(2023, 3, 16, 14, 37, 21),
    "-1w": utc(2024, 3, 8, 14, 37, 21),
    "-1h30min": utc(2024, 3, 15, 13, 7, 21),
    "+1h": utc(2024, 3, 15, 15, 37, 21),
    "today": utc(2024, 3, 15),
    "midnight": utc(2024, 3, 15),
    "yesterday": utc(2024, 3, 14),
    "tomorrow": utc(2024, 3, 16),
    "noon": utc(2024, 3, 15, 12),
    "teatime": utc(2024, 3, 15, 16),
    "noon yesterday": utc(2024, 3, 14, 12),
    "6pm today": utc(2024, 3, 15, 18),
    "6pm+1d": utc(2024, 3, 16, 18),
    "midnight-1d": utc(2024, 3, 14),
    "04:00_20110501": utc(2011, 5, 1, 4),
    "16:00 20110501": utc(2011, 5, 1, 16),
    "20110501": utc(2011, 5, 1),
    "1700000000": datetime.fromtimestamp(1700000000, UTC),
    "17000000": datetime.fromtimestamp(17000000, UTC),
    "03/15/24": utc(2024, 3, 15),
    "03/15/2024": utc(2024, 3, 15),
    "1/1/69": utc(2069, 1, 1),
    "january 1": utc(2024, 1, 1),
    "jan1": utc(2024, 1, 1),
    "january10": utc(2024, 1, 10),
    "monday": utc(2024, 3, 11),
    "friday": utc(2024, 3, 15),
    "sat": utc(2024, 3, 9),
    "9am yesterday": utc(2024, 3, 14, 9),
    "12:30pm": utc(2024, 3, 15, 0, 30),
    "12am": utc(2024, 3, 15, 12),
    "8:05am tomorrow": utc(2024, 3, 16, 8, 5),
    "8:50pm": utc(2024, 3, 15, 20, 50),
    "now-1h": utc(2024, 3, 15, 13, 37, 21),
    "-1hour_": utc(2024, 3, 15, 13, 37, 21),
    "  NOON+2H ": utc(2024, 3, 15, 14),
}


@pytest.mark.parametrize("spec", sorted(TABLE))
def test_table(spec):
    result = parse_time(spec, UTC, NOW)
    assert result == TABLE[spec]
    assert result.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("-1m", "Invalid offset unit 'm'"),
        ("1h", "Unknown day reference: 1h"),
        ("garbage", "Unknown day reference: garbage"),
        ("20240230", "day is out of range for month"),
        ("march", "Day of month required after month name"),
        ("january800", "day is out of range for month"),
        ("25:00", "hour must be in 0..23"),
        (":", "Unknown day reference: :"),
        ("ab:cd", "invalid literal for int()"),
        ("-1x", "Invalid offset unit 'x'"),
        ("now-1h+2h", "Unknown day reference: now-1h"),
        ("-99999999999d", "too large"),
        ("99999999999999", "year"),
    ],
)
def test_errors(spec, reason):
    with pytest.raises(TimeSpecError) as caught:
        parse_time(spec, UTC, NOW)
    assert str(caught.value).startswith(f"cannot parse time={spec}: ")
    assert reason in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_wall_clock_now_is_used_by_default():
    before = datetime.now(UTC)
    result = parse_time("now", UTC)
    assert before <= result <= datetime.now(UTC)


def test_naive_now_is_a_wall_time_in_tz():
    kolkata = ZoneInfo("Asia/Kolkata")
    result = parse_time("-1h", kolkata, datetime(2024, 3, 15, 10, 0))
    assert result == datetime(2024, 3, 15, 9, 0, tzinfo=kolkata)
    assert result.utcoffset() == timedelta(hours=5, minutes=30)


def test_references_are_wall_clock_offsets_are_absolute():
    la = ZoneInfo("America/Los_Angeles")  # DST starts 2015-03-08 02:00
    now = datetime(2015, 3, 8, 12, 0, tzinfo=la)
    assert parse_time("midnight+3h", la, now) == datetime(2015, 3, 8, 4, 0, tzinfo=la)
    assert parse_time("midnight_tomorrow+3h", la, now) == datetime(2015, 3, 9, 3, 0, tzinfo=la)
    assert parse_time("yesterday", la, now) == datetime(2015, 3, 7, tzinfo=la)
    assert parse_time("now-1d", la, now) == datetime(2015, 3, 7, 11, 0, tzinfo=la)


def test_repeated_and_skipped_wall_times_resolve_like_pytz():
    ny = ZoneInfo("America/New_York")
    fall = datetime(2024, 11, 3, 12, 0, tzinfo=ny)
    repeated = parse_time("1:30", ny, fall)
    assert repeated.utcoffset() == timedelta(hours=-5)  # the standard-time 01:30
    spring = datetime(2024, 3, 10, 12, 0, tzinfo=ny)
    skipped = parse_time("2:30", ny, spring)
    assert skipped == datetime(2024, 3, 10, 7, 30, tzinfo=UTC)  # 02:30 EST == 03:30 EDT


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("10days", timedelta(days=10)),
        ("-10days", timedelta(days=-10)),
        ("0days", timedelta(0)),
        ("5seconds", timedelta(seconds=5)),
        ("5s", timedelta(seconds=5)),
        ("5minutes", timedelta(minutes=5)),
        ("5hours", timedelta(hours=5)),
        ("5weeks", timedelta(weeks=5)),
        ("1month", timedelta(days=30)),
        ("12months", timedelta(days=360)),
        ("2years", timedelta(days=730)),
        ("+1h30min", timedelta(hours=1, minutes=30)),
        ("-1d12h", -timedelta(days=1, hours=12)),
        ("-", timedelta(0)),
        ("+", timedelta(0)),
        ("", timedelta(0)),
    ],
)
def test_parse_offset(spec, expected):
    assert parse_offset(spec) == expected


@pytest.mark.parametrize("spec", ["Something", "1m", "10", "month", "5MIN", "-1h-1h", "1mo"])
def test_parse_offset_errors(spec):
    with pytest.raises(TimeSpecError, match=f"^cannot parse interval={spec}: "):
        parse_offset(spec)


# ---------------------------------------------------------------- differential vs graphite-web

ZONES = ["UTC", "America/New_York", "Asia/Kolkata", "Europe/Berlin", "Australia/Lord_Howe"]
NOWS = [
    NOW,
    datetime(2024, 11, 3, 5, 30, tzinfo=UTC),  # New York's repeated hour
    datetime(2024, 3, 10, 7, 30, tzinfo=UTC),  # New York's skipped hour
    datetime(2024, 3, 31, 0, 30, tzinfo=UTC),  # Berlin's spring change day
    datetime(2023, 12, 31, 23, 59, 59, tzinfo=UTC),
    datetime(2021, 2, 28, 12, tzinfo=UTC),
]

_clock = st.sampled_from(
    ["", "", "noon", "midnight", "teatime", "6pm", "9am", "12am", "12pm", "12:30pm", "8:05am",
     "16:00", "4:5", "1:30", "2:30", "25:00", "ab:cd", "13pm", "0am", ":"]
)
_day = st.sampled_from(
    ["", "", "today", "yesterday", "tomorrow", "20110501", "20240230", "03/15/24", "3/5/1999",
     "1/1/69", "2/29/23", "jan1", "february29", "march", "dec31", "monday", "sat", "sunblah",
     "now", "garbage", "19020101"]
)
_unit = st.sampled_from(
    ["s", "sec", "seconds", "min", "minutes", "h", "hours", "d", "days", "w", "weeks", "mon",
     "months", "y", "years", "m", "mo", "", "x"]
)
_offset = st.builds(
    lambda sign, terms: sign + "".join(f"{n}{u}" for n, u in terms) if sign or terms else "",
    st.sampled_from(["", "+", "-"]),
    st.lists(st.tuples(st.integers(0, 400), _unit), max_size=3),
)
_joiner = st.sampled_from(["", " ", "_", ","])
_composed = st.builds(
    lambda clock, day, offset, joiner, upper: (
        (clock + joiner + day + offset).upper() if upper else clock + joiner + day + offset
    ),
    _clock, _day, _offset, _joiner, st.booleans(),
)
_epochs = st.one_of(
    st.integers(0, 2_100_000_000).map(str),
    st.integers(19020101, 20361231).map(str),  # YYYYMMDD or epoch, by graphite's rule
    st.sampled_from(["19000101", "17000000", "20241301", "20240132", "020240101"]),
)
_specs = st.one_of(_composed, _composed, _epochs, st.text("0123456789-+:/amphdnow ", max_size=10))


def _outcome(result):
    return result.timestamp(), result.utcoffset(), result.replace(tzinfo=None)


def _same_as_graphite(spec, zone, now):
    """Compare, except where the two zone databases disagree rather than the
    code: before 1970 (pytz and the system tzdata carry different historical
    offsets, pytz falls back to local mean time before 1901-12-14) and after
    2037 (pytz stops applying DST)."""
    expected = _graphite(spec, zone, now)
    if expected != "error" and not 1970 <= expected[2].year <= 2037:
        return True
    return _carbyne(spec, zone, now) == expected


def _graphite(spec, zone, now):
    import pytz
    from graphite.render.attime import parseATTime

    try:
        return _outcome(parseATTime(spec, pytz.timezone(zone), now))
    except Exception:  # graphite raises ValueError, KeyError, OverflowError, bare Exception
        return "error"


def _carbyne(spec, zone, now):
    try:
        return _outcome(parse_time(spec, ZoneInfo(zone), now))
    except TimeSpecError:
        return "error"


@pytest.mark.parametrize("zone", ZONES)
def test_table_specs_match_graphite(graphite_web, zone):
    for spec in [*TABLE, "-1m", "1h", "garbage", "march", "25:00", "2:30", "1:30", "1:30+1h"]:
        for now in NOWS:
            assert _same_as_graphite(spec, zone, now), (spec, zone, now)


@settings(max_examples=700, deadline=None)
@given(spec=_specs, zone=st.sampled_from(ZONES), now=st.sampled_from(NOWS))
def test_generated_specs_match_graphite(graphite_web, spec, zone, now):
    assert _same_as_graphite(spec, zone, now)


@settings(max_examples=150, deadline=None)
@given(
    spec=_composed,
    zone=st.sampled_from(ZONES),
    now=st.datetimes(datetime(1990, 1, 1), datetime(2035, 1, 1)),
)
def test_naive_nows_match_graphite(graphite_web, spec, zone, now):
    assert _same_as_graphite(spec, zone, now)


@settings(max_examples=300, deadline=None)
@given(st.one_of(_offset, st.text("0123456789-+smhdwyonMH", max_size=8)))
def test_offsets_match_graphite(graphite_web, spec):
    from graphite.render.attime import parseTimeOffset

    try:
        expected = parseTimeOffset(spec)
    except Exception:
        expected = "error"
    try:
        ours = parse_offset(spec)
    except TimeSpecError:
        ours = "error"
    assert ours == expected
