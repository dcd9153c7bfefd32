"""``carbyne whisper ...`` against whisper 1.1.10's own scripts: same stdout, same bytes.

Both sides run on identical copies of the same files with the clock frozen at
``NOW`` (the scripts through a tiny runner that replaces time.time), from
directories with identical relative paths so printed paths match too.
"""
import io
import os
import shutil
import subprocess
import sys
import time

import pytest
import whisper as reference_whisper

from carbon import cli
from storage import whisper as our_whisper
from storage.cli_progress import Progress, each_with_progress, whisper_files

NOW = 1_700_000_123
RUNNER = (
    "import runpy, sys, time; T = float(sys.argv[1]); time.time = lambda: T; "
    "sys.argv = sys.argv[2:]; runpy.run_path(sys.argv[0], run_name='__main__')"
)
SCRIPTS = {
    "create": "whisper-create.py", "info": "whisper-info.py", "fetch": "whisper-fetch.py",
    "dump": "whisper-dump.py", "diff": "whisper-diff.py", "resize": "whisper-resize.py",
    "set-aggregation": "whisper-set-aggregation-method.py", "merge": "whisper-merge.py",
    "fill": "whisper-fill.py",
}


def populate(path, archives=((60, 30), (300, 24), (3600, 10)), method="average", xff=0.5,
             seed=1, gaps=()):
    """A whisper file written by the reference module with a deterministic history."""
    reference_whisper.create(str(path), list(archives), xFilesFactor=xff, aggregationMethod=method)
    points = []
    for age in range(0, 3600 * 8, 60):
        if any(low <= age < high for low, high in gaps):
            continue
        value = ((age // 60 * 7 + seed * 13) % 23) - 5.25
        if age % 420 == 0:
            value = 0.0
        points.append((NOW - age, value))
    reference_whisper.update_many(str(path), points, now=NOW)


@pytest.fixture
def sides(tmp_path, monkeypatch):
    """Two directories, ``real`` and ``ours``; files made in ``real`` are mirrored to ``ours``."""
    real, ours = tmp_path / "real", tmp_path / "ours"
    real.mkdir()
    ours.mkdir()
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    monkeypatch.setattr(time, "time", lambda: float(NOW))
    monkeypatch.setattr(reference_whisper, "LOCK", False)
    monkeypatch.setattr(our_whisper, "LOCK", False)
    yield real, ours
    monkeypatch.undo()
    time.tzset()


def mirror(real, ours):
    shutil.rmtree(ours)
    shutil.copytree(real, ours, symlinks=True)


def run_real(real, tool, *args):
    script = shutil.which(SCRIPTS[tool])
    env = dict(os.environ, TZ="UTC")
    proc = subprocess.run([sys.executable, "-c", RUNNER, str(NOW), script, *args], cwd=real,
                          capture_output=True, text=True, env=env, timeout=60)
    return proc.returncode, proc.stdout


def run_ours(ours, capsys, tool, *args):
    capsys.readouterr()
    cwd = os.getcwd()
    os.chdir(ours)
    try:
        code = cli.main(["whisper", tool, *args])
    finally:
        os.chdir(cwd)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def tree_bytes(root):
    return {str(path.relative_to(root)): path.read_bytes()
            for path in sorted(root.rglob("*")) if path.is_file()}


def same(sides, capsys, tool, *args, expect_code=0):
    """Run both on mirrored files; compare exit code, stdout and every resulting file."""
    real, ours = sides
    mirror(real, ours)
    real_code, real_out = run_real(real, tool, *args)
    our_code, our_out, our_err = run_ours(ours, capsys, tool, *args)
    assert our_out == real_out
    assert (our_code != 0) == (real_code != 0) == (expect_code != 0), our_err
    assert tree_bytes(ours) == tree_bytes(real)
    return our_out, our_err


def test_whisper_is_a_carbyne_subcommand(capsys):
    assert cli.main(["whisper"]) == 2
    assert "resize" in capsys.readouterr().out


@pytest.mark.parametrize("args", [
    ["new.wsp", "60:5", "300:3", "--xFilesFactor=0.5", "--aggregationMethod=sum"],
    ["new.wsp", "10s:6h", "1min:7d", "1h:1y"],
    ["new.wsp", "60:1440", "--sparse", "--xFilesFactor", "0"],
    ["new.wsp", "60:1440", "--fallocate", "--aggregationMethod", "absmax"],
    ["--estimate", "10s:6h,1m:7d,10m:5y"],
    ["--estimate", "60:1440", "1h:30d"],
    ["m.wsp", "60:10", "--overwrite"],
])
def test_create(sides, capsys, args):
    populate(sides[0] / "m.wsp")
    out, _ = same(sides, capsys, "create", *args)
    assert out


@pytest.mark.parametrize("args", [
    ["m.wsp", "60:10"],  # exists already
    ["new.wsp", "60:10", "60:20"],  # duplicate precision
])
def test_create_errors(sides, capsys, args):
    populate(sides[0] / "m.wsp")
    _, err = same(sides, capsys, "create", *args, expect_code=1)
    assert err.startswith("[ERROR] ")


def test_create_with_unknown_method_leaves_no_file(sides, capsys):
    # whisper-create.py leaves an empty new.wsp behind here; ours leaves nothing
    real, ours = sides
    args = ["new.wsp", "60:10", "--aggregationMethod", "median"]
    assert run_real(real, "create", *args)[0] == 1
    code, out, err = run_ours(ours, capsys, "create", *args)
    assert (code, out) == (1, "")
    assert err.startswith("[ERROR] ") and "median" in err
    assert not (ours / "new.wsp").exists()


def test_create_refuses_bad_retention_cleanly(sides, capsys):
    code, _, err = run_ours(sides[1], capsys, "create", "x.wsp", "60:1q")
    assert code == 1 and "cannot parse retention='60:1q'" in err


@pytest.mark.parametrize("args", [[], ["--json"], ["maxRetention"], ["xFilesFactor"],
                                  ["archives"], ["fileSize"]])
def test_info(sides, capsys, args):
    populate(sides[0] / "m.wsp", xff=0.3, method="max")
    same(sides, capsys, "info", "m.wsp", *args)


def test_info_unknown_field(sides, capsys):
    populate(sides[0] / "m.wsp")
    out, _ = same(sides, capsys, "info", "m.wsp", "nope", expect_code=1)
    assert out.startswith('Unknown field "nope"')


@pytest.mark.parametrize("args", [
    [], ["--from", str(NOW - 1800)], ["--from", str(NOW - 20000), "--until", str(NOW - 3000)],
    ["--from", str(NOW - 600), "--json"], ["--json", "--from", str(NOW - 7200)],
    ["--drop", "nulls", "--from", str(NOW - 1800)], ["--drop", "zeroes", "--from", str(NOW - 1800)],
    ["--drop", "empty", "--from", str(NOW - 1800)],
    ["--pretty", "--from", str(NOW - 900)], ["--pretty", "-t", "%Y-%m-%d %H:%M", "--from", str(NOW - 900)],
])
def test_fetch(sides, capsys, args):
    populate(sides[0] / "m.wsp", gaps=[(600, 900)])
    out, _ = same(sides, capsys, "fetch", "m.wsp", *args)
    assert out


def test_fetch_out_of_range(sides, capsys):
    populate(sides[0] / "m.wsp")
    _, err = same(sides, capsys, "fetch", "m.wsp", "--from", str(NOW + 100), "--until",
                  str(NOW + 200), expect_code=1)
    assert err.strip() == "No data in selected timerange"


@pytest.mark.parametrize("args", [[], ["--raw"], ["-r"], ["--pretty"], ["--pretty", "-t", "%H:%M"]])
def test_dump(sides, capsys, args):
    populate(sides[0] / "m.wsp", xff=0.25, method="last", gaps=[(0, 300)])
    same(sides, capsys, "dump", "m.wsp", *args)


def test_dump_missing_file(sides, capsys):
    _, err = same(sides, capsys, "dump", "nope.wsp", expect_code=1)
    assert "does not exist" in err


@pytest.mark.parametrize("args", [
    [], ["--summary"], ["--columns"], ["--no-headers"], ["--columns", "--no-headers"],
    ["--summary", "--columns", "--no-headers"], ["--ignore-empty"], ["--json"],
    ["--json", "--summary"], ["--until", str(NOW - 3000)], ["--until", "0"],
])
def test_diff(sides, capsys, args):
    populate(sides[0] / "a.wsp", seed=1, gaps=[(0, 600)])
    populate(sides[0] / "b.wsp", seed=2, gaps=[(1200, 2400)])
    out, _ = same(sides, capsys, "diff", "a.wsp", "b.wsp", *args)
    assert out


def test_diff_unalike_files(sides, capsys):
    populate(sides[0] / "a.wsp")
    populate(sides[0] / "b.wsp", archives=((60, 10),))
    mirror(*sides)
    assert run_ours(sides[1], capsys, "diff", "a.wsp", "a.wsp")[0] == 0
    code, _, err = run_ours(sides[1], capsys, "diff", "a.wsp", "b.wsp")
    assert code == 1 and "unalike" in err


@pytest.mark.parametrize("args", [
    ["60:60", "300:30"],
    ["30:120", "600:100"],  # finer than the data: points land in a coarser slot layout
    ["60:10"],  # shorter: destructive
    ["1m:1d", "1h:1y", "--xFilesFactor", "0.1", "--aggregationMethod", "max"],
    ["60:60", "300:30", "--nobackup"],
    ["60:60", "300:30", "--newfile", "other.wsp"],
    ["60:60", "300:30", "--aggregate"],
    ["120:60", "600:50", "--aggregate", "--aggregationMethod", "sum", "--xFilesFactor", "0"],
    ["60:60", "--force"],
])
def test_resize(sides, capsys, args):
    populate(sides[0] / "m.wsp", gaps=[(1800, 2400)], xff=0.5, method="average")
    (sides[0] / "m.wsp.tmp").write_bytes(b"stale temp file")
    out, _ = same(sides, capsys, "resize", "m.wsp", *args)
    assert "Created:" in out


def test_resize_missing_file(sides, capsys):
    code, _, err = run_ours(sides[1], capsys, "resize", "nope.wsp", "60:10")
    assert code == 1 and "does not exist" in err


def test_resize_directory_resizes_every_file(sides, capsys):
    real, ours = sides
    for name in ("a/x.wsp", "a/y.wsp", "b/c/z.wsp"):
        (ours / name).parent.mkdir(parents=True, exist_ok=True)
        populate(ours / name)
    (ours / "a" / "notes.txt").write_text("not whisper")
    code, out, _ = run_ours(ours, capsys, "resize", ".", "60:20", "600:10", "--nobackup")
    assert code == 0
    assert out.count("Renaming new database to:") == 3
    for path in whisper_files(ours):
        info = reference_whisper.info(str(path))
        assert [(a["secondsPerPoint"], a["points"]) for a in info["archives"]] == [(60, 20), (600, 10)]
    assert sorted(p.name for p in ours.rglob("*")) == ["a", "b", "c", "notes.txt", "x.wsp", "y.wsp", "z.wsp"]


@pytest.mark.parametrize("args", [["max"], ["sum", "0.2"], ["avg_zero", "1"]])
def test_set_aggregation(sides, capsys, args):
    populate(sides[0] / "m.wsp")
    out, _ = same(sides, capsys, "set-aggregation", "m.wsp", *args)
    assert out.startswith("Updated aggregation method: m.wsp (average -> ")


@pytest.mark.parametrize("args", [["median"], ["sum", "1.5"], ["sum", "half"]])
def test_set_aggregation_errors(sides, capsys, args):
    populate(sides[0] / "m.wsp")
    _, err = same(sides, capsys, "set-aggregation", "m.wsp", *args, expect_code=1)
    assert err.startswith("[ERROR] ")


def test_set_aggregation_on_a_directory(sides, capsys):
    ours = sides[1]
    for name in ("a.wsp", "d/b.wsp"):
        (ours / name).parent.mkdir(parents=True, exist_ok=True)
        populate(ours / name)
    code, out, _ = run_ours(ours, capsys, "set-aggregation", ".", "sum", "0")
    assert code == 0
    assert out.splitlines() == ["Updated aggregation method: a.wsp (average -> sum)",
                                "Updated aggregation method: d/b.wsp (average -> sum)"]
    assert reference_whisper.info(str(ours / "d" / "b.wsp"))["aggregationMethod"] == "sum"


@pytest.mark.parametrize("args", [[], ["--from", str(NOW - 5000)],
                                  ["--from", str(NOW - 20000), "--until", str(NOW - 1000)]])
def test_merge(sides, capsys, args):
    populate(sides[0] / "a.wsp", seed=1, gaps=[(0, 600)])
    populate(sides[0] / "b.wsp", seed=2, gaps=[(1200, 2400), (7200, 9000)])
    same(sides, capsys, "merge", "a.wsp", "b.wsp", *args)


def test_merge_missing_file(sides, capsys):
    populate(sides[0] / "a.wsp")
    _, err = same(sides, capsys, "merge", "a.wsp", "b.wsp", expect_code=1)
    assert 'File "b.wsp" does not exist!' in err


@pytest.mark.parametrize("gaps", [
    [(1200, 2400)], [(0, 600), (3000, 3300)], [(1200, 20000)], [(60, 120)], [],
])
def test_fill(sides, capsys, gaps):
    populate(sides[0] / "src.wsp", seed=3)
    populate(sides[0] / "dst.wsp", seed=4, gaps=gaps)
    before = (sides[0] / "dst.wsp").read_bytes()
    same(sides, capsys, "fill", "src.wsp", "dst.wsp")
    if gaps and gaps != [(60, 120)]:
        assert (sides[1] / "dst.wsp").read_bytes() != before


def test_fill_with_lock(sides, capsys):
    populate(sides[0] / "src.wsp", seed=3)
    populate(sides[0] / "dst.wsp", seed=4, gaps=[(600, 1800)])
    same(sides, capsys, "fill", "--lock", "src.wsp", "dst.wsp")


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_only_on_a_terminal(tmp_path):
    terminal, pipe = FakeTerminal(), io.StringIO()
    items = [tmp_path / f"{index}.wsp" for index in range(4)]
    assert list(each_with_progress(items, terminal)) == items
    assert list(each_with_progress(items, pipe)) == items
    assert pipe.getvalue() == ""
    drawn = terminal.getvalue()
    assert drawn.count("\r") == 4 and drawn.endswith("\n")
    assert "4/4" in drawn and "#" * 30 in drawn
    silent = Progress(0, FakeTerminal())
    silent.close()
    assert silent.stream.getvalue() == ""
