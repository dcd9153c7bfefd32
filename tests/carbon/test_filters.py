"""Whitelist / blacklist files: carbon's regex rules and reload on change."""
import logging
import os

from carbon.filters import MetricFilter, RegexList, Verdict


def write(path, text, mtime):
    path.write_text(text)
    os.utime(path, (mtime, mtime))


def test_missing_file_means_no_patterns(tmp_path):
    regexes = RegexList(tmp_path / "nope.conf")
    assert not regexes
    assert not regexes.search("anything")


def test_patterns_are_searched_comments_and_blanks_skipped(tmp_path):
    path = tmp_path / "blacklist.conf"
    write(path, "# the example blacklist\n\\.\\.\n^\\.\n\n\\.$\n  \n", 1000)
    regexes = RegexList(path)
    assert len(regexes.patterns) == 3
    assert regexes.search("a..b")
    assert regexes.search(".a.b")
    assert regexes.search("a.b.")
    assert not regexes.search("a.b.c")


def test_bad_pattern_is_logged_and_skipped(tmp_path, caplog):
    path = tmp_path / "whitelist.conf"
    write(path, "good\n(unclosed\n", 1000)
    with caplog.at_level(logging.ERROR, logger="carbon.filters"):
        regexes = RegexList(path)
    assert [p.pattern for p in regexes.patterns] == ["good"]
    assert "whitelist.conf:2" in caplog.text


def test_reload_only_when_the_file_changes(tmp_path):
    path = tmp_path / "blacklist.conf"
    write(path, "^secret\\.\n", 1000)
    regexes = RegexList(path)
    generation = regexes.generation
    assert regexes.reload_if_changed() is False
    write(path, "^private\\.\n", 2000)
    assert regexes.reload_if_changed() is True
    assert regexes.generation == generation + 1
    assert regexes.search("private.x") and not regexes.search("secret.x")
    path.unlink()
    assert regexes.reload_if_changed() is True
    assert not regexes


def test_filter_blacklist_wins_then_whitelist_must_match(tmp_path):
    write(tmp_path / "whitelist.conf", "^servers\\.\n", 1000)
    write(tmp_path / "blacklist.conf", "\\.secret$\n", 1000)
    metric_filter = MetricFilter.from_files(tmp_path / "whitelist.conf", tmp_path / "blacklist.conf")
    assert metric_filter.verdict("servers.a.cpu") is None
    assert metric_filter.verdict("servers.a.secret") is Verdict.BLACKLISTED
    assert metric_filter.verdict("apps.a.cpu") is Verdict.NOT_WHITELISTED
    assert Verdict.BLACKLISTED.value == "blacklistMatches"
    assert Verdict.NOT_WHITELISTED.value == "whitelistRejects"


def test_empty_whitelist_lets_everything_through(tmp_path):
    write(tmp_path / "whitelist.conf", "# nothing yet\n", 1000)
    metric_filter = MetricFilter.from_files(tmp_path / "whitelist.conf", tmp_path / "none.conf")
    assert metric_filter.verdict("anything.at.all") is None


def test_filter_generation_changes_on_reload(tmp_path):
    write(tmp_path / "blacklist.conf", "a\n", 1000)
    metric_filter = MetricFilter.from_files(tmp_path / "whitelist.conf", tmp_path / "blacklist.conf")
    before = metric_filter.generation
    write(tmp_path / "blacklist.conf", "b\n", 2000)
    assert metric_filter.reload_if_changed()
    assert metric_filter.generation != before
