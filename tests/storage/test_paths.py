"""metric_path: the only door from a metric name to the file system."""
import hashlib
import os
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage.paths import MAX_NAME_BYTES, InvalidMetricName, locate_metric, metric_file, metric_path


def test_plain_name_maps_to_nested_wsp(tmp_path):
    assert metric_path(tmp_path, "a.b.c") == tmp_path / "a" / "b" / "c.wsp"
    assert metric_path(str(tmp_path), "servers.web-01.cpu_user") == (
        tmp_path / "servers" / "web-01" / "cpu_user.wsp"
    )


def test_unicode_and_punctuation_are_allowed(tmp_path):
    assert metric_path(tmp_path, "héllo.wörld:1.a b") == tmp_path / "héllo" / "wörld:1" / "a b.wsp"


def test_tagged_name_goes_to_hashed_tagged_tree(tmp_path):
    name = "some.metric;tag1=value2;tag2=value.2"
    digest = hashlib.sha256(name.encode()).hexdigest()
    assert metric_path(tmp_path, name) == (
        tmp_path / "_tagged" / digest[:3] / digest[3:6] / f"{digest}.wsp"
    )
    assert digest.startswith("effaae")  # the example in graphite's TaggedSeries.encode


def test_tagged_names_with_slashes_stay_inside(tmp_path):
    path = metric_path(tmp_path, "http;path=/../../etc/passwd")
    assert path.parent.parent.parent == tmp_path / "_tagged"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "empty"),
        ("..", "node 0 is empty"),
        ("a..b", "node 1 is empty"),
        (".a", "node 0 is empty"),
        ("a.", "node 1 is empty"),
        ("a.b.", "node 2 is empty"),
        ("../../etc/passwd", "'/'"),
        ("/etc/passwd", "'/'"),
        ("a/b", "'/'"),
        ("a\\b", "'\\\\'"),
        ("..\\..\\x", "'\\\\'"),
        ("a\x00b", "control character '\\x00'"),
        ("a\nb", "control character '\\n'"),
        ("a\x7fb", "control character '\\x7f'"),
        ("a\x85b", "control character"),
        ("tagged;k=\x00", "control character"),
        ("a.\udcff", "not valid UTF-8"),
        ("x" * 252, "256-byte file name"),
        ("é" * 128 + ".a", "256-byte file name"),
        ("_tagged.abc.def.x", "reserved"),
    ],
)
def test_hostile_names_are_refused(tmp_path, name, reason):
    with pytest.raises(InvalidMetricName) as caught:
        metric_path(tmp_path, name)
    message = str(caught.value)
    assert message.startswith("cannot map metric=")
    assert reason in message


def test_component_limit_counts_the_wsp_suffix(tmp_path):
    fits = "x" * (MAX_NAME_BYTES - 4)
    assert metric_path(tmp_path, fits).name == fits + ".wsp"
    assert metric_path(tmp_path, "y" * MAX_NAME_BYTES + ".z").parent.name == "y" * MAX_NAME_BYTES
    with pytest.raises(InvalidMetricName):
        metric_path(tmp_path, fits + "x")


def test_whole_path_limit(tmp_path):
    name = ".".join(["n" * 200] * 30)  # every node fits, the path does not
    with pytest.raises(InvalidMetricName, match="over the 4095-byte limit"):
        metric_path(tmp_path, name)


def test_long_names_are_cut_short_in_the_message(tmp_path):
    with pytest.raises(InvalidMetricName) as caught:
        metric_path(tmp_path, "a" * 10_000 + "..b")
    assert len(str(caught.value)) < 300
    assert "(10003 chars)" in str(caught.value)


def test_non_string_is_refused(tmp_path):
    with pytest.raises(InvalidMetricName):
        metric_path(tmp_path, b"a.b")


def test_symlink_leading_outside_is_refused(tmp_path):
    data, outside = tmp_path / "data", tmp_path / "outside"
    data.mkdir()
    outside.mkdir()
    (data / "evil").symlink_to(outside)
    with pytest.raises(InvalidMetricName, match="outside the data directory"):
        metric_path(data, "evil.x")
    (data / "leaf.wsp").symlink_to(outside / "leaf.wsp")
    with pytest.raises(InvalidMetricName, match="outside the data directory"):
        metric_path(data, "leaf")


def test_symlink_inside_data_dir_and_symlinked_data_dir_are_fine(tmp_path):
    real = tmp_path / "real"
    (real / "a").mkdir(parents=True)
    (real / "alias").symlink_to(real / "a")
    link = tmp_path / "link"
    link.symlink_to(real)
    assert metric_path(link, "alias.x") == link / "alias" / "x.wsp"


def test_relative_data_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert metric_path("data", "a.b") == Path("data/a/b.wsp")


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab.\\/\x00\n;=é ~*-_") | st.characters(), max_size=40))
def test_any_name_maps_inside_or_is_refused(tmp_path_factory, name):
    root = tmp_path_factory.getbasetemp() / "hyp"
    try:
        path = metric_path(root, name)
    except InvalidMetricName as error:
        assert str(error).startswith("cannot map metric=")
        return
    relative = path.relative_to(root)
    assert ".." not in relative.parts and "" not in relative.parts
    assert os.path.commonpath([os.path.abspath(path), os.path.abspath(root)]) == os.path.abspath(root)
    assert path.suffix == ".wsp"
    if ";" not in name:
        assert ".".join(relative.with_suffix("").parts) == name


def test_metric_file_is_the_same_path_as_a_str(tmp_path):
    for name in ("a.b.c", "x;t=1", "héllo.wörld"):
        found = metric_file(tmp_path, name)
        assert isinstance(found, str)
        assert found == str(metric_path(tmp_path, name))


def test_every_control_character_is_refused_and_nothing_else(tmp_path):
    controls = [c for c in range(0x110000) if unicodedata.category(chr(c)) == "Cc"]
    for code in controls:
        with pytest.raises(InvalidMetricName, match="position 1"):
            metric_file(tmp_path, f"a{chr(code)}b")
    for code in (0x20, 0x7E, 0xA0, 0xAD, 0x2028, 0xFEFF, 0x10FFFF):
        assert metric_file(tmp_path, f"a{chr(code)}b").endswith(f"a{chr(code)}b.wsp")


def test_link_deeper_down_leading_outside_is_refused(tmp_path):
    data, outside = tmp_path / "data", tmp_path / "outside"
    (data / "a" / "b").mkdir(parents=True)
    outside.mkdir()
    (data / "a" / "b" / "c").symlink_to(outside)
    with pytest.raises(InvalidMetricName, match="outside the data directory"):
        metric_path(data, "a.b.c.d.e")
    (data / "a" / "b" / "in").symlink_to(data / "a")
    assert metric_path(data, "a.b.in.b.x") == data / "a" / "b" / "in" / "b" / "x.wsp"


def test_links_outside_are_refused_whatever_the_data_dir_holds(tmp_path):
    data, outside = tmp_path / "data", tmp_path / "outside"
    (data / "file").mkdir(parents=True)
    (data / "plain").write_bytes(b"")  # a file where a directory would be: cannot resolve further
    assert metric_path(data, "plain.x") == data / "plain" / "x.wsp"
    outside.mkdir()
    (data / "file" / "loop").symlink_to(data / "file" / "loop")
    (data / "file" / "away").symlink_to(outside / "missing")  # dangling, pointing outside
    with pytest.raises(InvalidMetricName, match="outside the data directory"):
        metric_path(data, "file.away.x")
    metric_path(data, "file.loop.x")  # a loop resolves nowhere outside: allowed, as before


def test_locate_metric_says_whether_the_file_is_missing(tmp_path):
    path, missing = locate_metric(tmp_path, "a.b.c")
    assert missing and path == metric_file(tmp_path, "a.b.c")
    os.makedirs(os.path.dirname(path))
    assert locate_metric(tmp_path, "a.b.c")[1]  # its folder is there, the file is not
    Path(path).write_bytes(b"")
    assert locate_metric(tmp_path, "a.b.c") == (path, False)
    inside = tmp_path / "elsewhere"
    inside.mkdir()
    (inside / "d.wsp").write_bytes(b"")
    (tmp_path / "link").symlink_to(inside)  # a link that stays inside is followed
    assert locate_metric(tmp_path, "link.d")[1] is False
    assert locate_metric(tmp_path, "link.e")[1] is True


def test_known_folders_are_not_looked_at_again_and_links_still_refused(tmp_path):
    known: set[str] = set()
    (tmp_path / "a" / "b").mkdir(parents=True)
    locate_metric(tmp_path, "a.b.c", known)
    assert known == {str(tmp_path / "a"), str(tmp_path / "a" / "b")}
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (tmp_path / "a" / "x").symlink_to(outside)
    with pytest.raises(InvalidMetricName, match="outside the data directory"):
        locate_metric(tmp_path, "a.x.c", known)
    assert str(tmp_path / "a" / "x") not in known
    # a known folder is trusted: its lstat is skipped
    (tmp_path / "a" / "b").rename(tmp_path / "a" / "moved")
    (tmp_path / "a" / "b").symlink_to(outside)
    assert locate_metric(tmp_path, "a.b.c", known)[0] == str(tmp_path / "a" / "b" / "c.wsp")
    with pytest.raises(InvalidMetricName):
        locate_metric(tmp_path, "a.b.c")  # without the set the link is seen


def test_a_file_in_a_known_folder_is_looked_at_alone(tmp_path):
    """With its folder known, only the file itself is checked: missing, present, or a link
    that is followed (inside) or refused (outside)."""
    known: set[str] = set()
    (tmp_path / "a" / "b").mkdir(parents=True)
    assert locate_metric(tmp_path, "a.b.new", known) == (str(tmp_path / "a" / "b" / "new.wsp"), True)
    assert str(tmp_path / "a" / "b") in known
    (tmp_path / "a" / "b" / "here.wsp").write_bytes(b"")
    assert locate_metric(tmp_path, "a.b.here", known)[1] is False
    (tmp_path / "a" / "b" / "alias.wsp").symlink_to(tmp_path / "a" / "b" / "here.wsp")
    assert locate_metric(tmp_path, "a.b.alias", known)[1] is False
    (tmp_path / "a" / "b" / "dangling.wsp").symlink_to(tmp_path / "a" / "b" / "gone.wsp")
    assert locate_metric(tmp_path, "a.b.dangling", known)[1] is True
    outside = tmp_path.parent / f"{tmp_path.name}-secret.wsp"
    outside.write_bytes(b"")
    (tmp_path / "a" / "b" / "escape.wsp").symlink_to(outside)
    with pytest.raises(InvalidMetricName, match="outside the data directory"):
        locate_metric(tmp_path, "a.b.escape", known)
