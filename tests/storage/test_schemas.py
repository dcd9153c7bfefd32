"""storage-schemas.conf / storage-aggregation.conf as carbon 1.1.10 reads them."""
from pathlib import Path

import pytest
import whisper as reference_whisper
from hypothesis import given, settings
from hypothesis import strategies as st

from storage.schemas import (
    DEFAULT_ARCHIVES,
    ConfigError,
    StoragePolicy,
    StorageRules,
    parse_retention_def,
    parse_retentions,
    validate_archives,
)

CONF = Path(__file__).resolve().parents[2] / "conf"


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("60:1440", (60, 1440)),
        ("10s:6h", (10, 2160)),
        ("1m:7d", (60, 10080)),
        ("10m:5y", (600, 262800)),
        ("1h:3y", (3600, 26280)),
        ("1w:1y", (604800, 52)),  # 365 days // 7 days, truncated like carbon
        ("7s:1m", (7, 8)),  # 60 / 7 truncated
        (" 15m:8 ", (900, 8)),  # bare duration = number of points
        ("60s:1440", (60, 1440)),
    ],
)
def test_retention_definitions(text, expected):
    assert parse_retention_def(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("5min:1d", "invalid unit 'min'"),  # whisper-create accepts it, carbon does not
        ("1M:1d", "invalid precision specification '1M'"),
        ("60:10x", "invalid unit 'x'"),
        ("60", "invalid retention definition"),
        ("60:1:2", "invalid retention definition"),
        ("", "invalid retention definition"),
        ("60:", "invalid retention specification ''"),
        ("s:1d", "invalid precision specification 's'"),
        ("0:10", "at least one second"),
        ("1h:30m", "keeps no point"),
        ("60:0", "keeps no point"),
        ("1:5000000000", "32-bit"),
    ],
)
def test_bad_retention_definitions(text, reason):
    with pytest.raises(ValueError, match=reason):
        parse_retention_def(text)


def test_parse_retentions_sorts_and_validates():
    assert parse_retentions("1h:3y,10s:6h,1m:7d") == ((10, 2160), (60, 10080), (3600, 26280))
    for bad, reason in [
        ("60:10,60:20", "same precision"),
        ("60:100,90:100", "not a multiple"),
        ("60:100,120:50", "no longer"),
        ("60:3,300:100", "fewer than the 5"),
    ]:
        with pytest.raises(ValueError, match=reason):
            parse_retentions(bad)


archives_lists = st.lists(
    st.tuples(st.sampled_from([1, 2, 5, 10, 30, 60, 120, 300, 600, 3600]), st.integers(1, 400)),
    min_size=1, max_size=4,
)


@settings(max_examples=300, deadline=None)
@given(archives_lists)
def test_validation_agrees_with_whisper(archives):
    try:
        reference_whisper.validateArchiveList(list(archives))
        expected_ok = True
    except reference_whisper.InvalidConfiguration:
        expected_ok = False
    try:
        result = validate_archives(tuple(archives))
    except ValueError:
        assert not expected_ok
    else:
        assert expected_ok
        assert result == tuple(sorted(archives))


def test_missing_files_give_carbons_defaults(tmp_path):
    rules = StorageRules.load(tmp_path / "nope.conf", None)
    assert rules.policy_for("any.metric") == StoragePolicy(((60, 10080),), 0.5, "average")
    assert DEFAULT_ARCHIVES == ((60, 7 * 24 * 60),)
    assert rules.warnings == ()


def test_example_files_load_cleanly():
    rules = StorageRules.load(CONF / "storage-schemas.conf.example",
                              CONF / "storage-aggregation.conf.example")
    assert rules.warnings == ()
    assert rules.policy_for("carbon.agents.x.cpuUsage").archives == ((60, 129600),)
    assert rules.policy_for("stats.timers.api.upper_90") == StoragePolicy(
        ((10, 2160), (60, 10080), (600, 262800)), 0.1, "max")
    assert rules.policy_for("stats_counts.hits") == StoragePolicy(
        ((10, 2160), (60, 10080), (600, 262800)), 0.0, "sum")
    assert rules.policy_for("web01.load") == StoragePolicy(
        ((60, 1440), (300, 8640), (3600, 26280)), 0.5, "average")


def test_first_matching_section_wins_in_file_order(tmp_path):
    schemas = write(tmp_path, "s.conf", """
[zzz_first]
pattern = ^a\\.
retentions = 10:100
[aaa_second]
pattern = .*
retentions = 60:100
""")
    aggregation = write(tmp_path, "a.conf", """
[only_xff]
pattern = count
xFilesFactor = 0
[sum]
pattern = count
aggregationMethod = sum
""")
    rules = StorageRules.load(schemas, aggregation)
    assert rules.policy_for("a.b").archives == ((10, 100),)
    assert rules.policy_for("b.a.").archives == ((60, 100),)
    # re.search, not re.match
    assert rules.policy_for("x.a.y").archives == ((60, 100),)
    # no fall-through: the first section decides both keys, missing ones are defaults
    assert rules.policy_for("hits.count") == StoragePolicy(((60, 100),), 0.0, "average")


def test_ini_details_follow_configparser(tmp_path):
    schemas = write(tmp_path, "s.conf", """
# comment
; other comment
[DEFAULT]
retentions = 1m:1d

[inherit]
Pattern: ^inherit
[multi]
pattern = ^multi
retentions = 10s:1h,
    1m:1d
""")
    rules = StorageRules.load(schemas, None)
    assert rules.policy_for("inherit.x").archives == ((60, 1440),)
    assert rules.policy_for("multi.x").archives == ((10, 360), (60, 1440))
    # [DEFAULT] has retentions but no pattern: carbon skips it
    assert any("[DEFAULT]: no 'pattern'" in warning for warning in rules.warnings)


def test_skipped_sections_are_reported_not_fatal(tmp_path):
    schemas = write(tmp_path, "s.conf", """
[no_retentions]
pattern = x
[no_pattern]
retentions = 60:10
[invalid_archives]
pattern = y
retentions = 60:10,90:100
[good]
pattern = .
retentions = 1:5
""")
    aggregation = write(tmp_path, "a.conf", """
[bad_xff]
pattern = .
xFilesFactor = half
[good]
pattern = .
aggregationMethod = max
""")
    rules = StorageRules.load(schemas, aggregation)
    assert [rule.name for rule in rules.schemas] == ["good"]
    assert [rule.name for rule in rules.aggregations] == ["good"]
    assert len(rules.warnings) == 4
    assert rules.warnings[0].startswith(f"{schemas}:2: [no_retentions]")
    assert "not a multiple" in rules.warnings[2]
    assert rules.policy_for("y").archives == ((1, 5),)


@pytest.mark.parametrize(
    ("which", "text", "line", "needle"),
    [
        ("schemas", "[a]\npattern = x\n\nretentions = 10s:1d,5min:1y\n", 4, "retentions='10s:1d,5min:1y'"),
        ("schemas", "[a]\npattern = (unclosed\nretentions = 60:10\n", 2, "pattern='(unclosed'"),
        ("schemas", "[a]\npattern = x\nretentions = 60:10,\n", 3, "retentions='60:10,'"),
        ("schemas", "[a]\npattern = x\n[a]\nretentions = 60:10\n", 3, "[a]"),
        ("schemas", "pattern = x\n", 1, "pattern = x"),
        ("schemas", "[a]\npattern = 100%\nretentions = 60:10\n", 2, "pattern: '%' must be"),
        ("aggregation", "[a]\npattern = x\nxFilesFactor = 1.5\n", 3, "xFilesFactor='1.5'"),
        ("aggregation", "[a]\npattern = x\nxFilesFactor = nan\n", 3, "xFilesFactor='nan'"),
        ("aggregation", "[a]\npattern = x\n\naggregationMethod = median\n", 4, "aggregationMethod='median'"),
    ],
)
def test_fatal_mistakes_name_file_line_and_value(tmp_path, which, text, line, needle):
    path = write(tmp_path, f"{which}.conf", text)
    with pytest.raises(ConfigError) as caught:
        if which == "schemas":
            StorageRules.load(path, None)
        else:
            StorageRules.load(None, path)
    error = caught.value
    assert (error.path, error.line) == (str(path), line)
    assert str(error).startswith(f"cannot load {path}:{line}: ")
    assert needle in str(error)


def test_rules_are_frozen(tmp_path):
    rules = StorageRules.load(None, None)
    with pytest.raises(AttributeError):
        rules.schemas = ()  # type: ignore[misc]
