"""The finder against graphite-web 1.1.10's StandardFinder on the same trees."""
import json
import os
import random
import subprocess
import sys
import textwrap

import pytest

from storage.finder import FindLimitExceeded, Node, expand_braces, expand_leaves, find
from storage.paths import metric_path

METRICS = [
    "servers.web1.cpu-user", "servers.web1.cpu-sys", "servers.web1.cpu-idle",
    "servers.web2.cpu-user", "servers.web2.cpu-sys", "servers.web2.load",
    "servers.db1.disk.sda.reads", "servers.db1.disk.sdb.writes", "servers.db1.load",
    "servers.db1",  # a leaf and a branch with one name
    "stats.counts.hits", "stats.timers.api.upper_90", "stats.timers.api.mean",
    "stats_counts.hits", "top", "a.b.c.d.e.f", "x1.y2.z3", "x1.y22", "café.crème",
    "brace{d}.x", "q.a-b_c",
]
ORACLE = textwrap.dedent("""
    import contextlib, io, json, os, sys, sysconfig, tempfile
    sys.path.insert(0, os.path.join(sysconfig.get_paths()["purelib"], "opt", "graphite", "webapp"))
    scratch = tempfile.mkdtemp()
    os.makedirs(os.path.join(scratch, "log", "webapp"))
    os.environ["GRAPHITE_STORAGE_DIR"] = scratch
    os.environ["DJANGO_SETTINGS_MODULE"] = "graphite.settings"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        import django
        django.setup()
    from graphite.finders.standard import StandardFinder
    from graphite.finders.utils import FindQuery
    finder = StandardFinder([sys.argv[1]])
    patterns = json.load(sys.stdin)
    print(json.dumps({p: sorted({(n.path, n.is_leaf) for n in finder.find_nodes(FindQuery(p, None, None))})
                      for p in patterns}))
""")


def make_tree(root, metrics=METRICS):
    for metric in metrics:
        path = metric_path(root, metric)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


def make_full_tree(root):
    make_tree(root)
    (root / "servers" / "web1" / "cpu-user.wsp.bak").write_bytes(b"")
    (root / "servers" / "web1" / "notes.txt").write_bytes(b"")
    (root / "emptydir").mkdir()


def graphite_find(root, patterns):
    proc = subprocess.run(
        [sys.executable, "-c", ORACLE, str(root)], input=json.dumps(patterns),
        capture_output=True, text=True, timeout=60, check=True,
    )
    return {p: [tuple(item) for item in found] for p, found in json.loads(proc.stdout).items()}


def random_patterns(seed, count):
    """Patterns derived from real metrics (so they match) with random glob pieces mixed in."""
    rng = random.Random(seed)
    pieces = ["*", "?", "[a-z]", "[!w]*", "[0-9]", "w*", "*1", "{web1,db1}", "{cpu,load}*",
              "cpu-{user,sys}*", "{a,b,*}", "s*s", "[sx]*", "**", "*-*", "{x,y}{1,2}", "??"]

    def mutate(node):
        choice = rng.randrange(9)
        if choice == 0:
            return "*"
        if choice == 1:
            return node[0] + "*"
        if choice == 2:
            return "?" * len(node)
        if choice == 3:
            return "[" + node[0] + "-z]" + node[1:]
        if choice == 4:
            return "{" + node + ",nope," + rng.choice(pieces) + "}"
        if choice == 5:
            return "[!" + node[0] + "]*"
        if choice == 6:
            return rng.choice(pieces)
        return node

    patterns = []
    for _ in range(count):
        nodes = rng.choice(METRICS).split(".")
        patterns.append(".".join(mutate(node) for node in nodes))
    return patterns


HAND_PATTERNS = [
    "*", "servers.*", "servers.*.*", "servers.web1.cpu-{user,sys}", "servers.web1.cpu-{user,sys}*",
    "servers.{web,db}*.load", "servers.web[12].*", "servers.web[!1].*", "servers.db1",
    "servers.db1.*", "servers.*.disk.*.*", "**", "servers.**", "**.load", "servers.**.reads",
    "a.**.f", "stats*.*", "stats.{counts,timers}.*", "x1.y?", "x1.y??", "café.*", "q.a-b_c",
    "brace{d}.*", "nope.*", "servers.web1.notes", "servers.web1.cpu-user.wsp", "top", "top.*",
    "emptydir", "*.*.*.*.*.*", "servers.web1.cpu-{user,{sys,idle}}", "{servers,stats}.*",
    "servers.[w", "servers.web1.cpu-[a-t]*", "servers.*.{load,cpu-sys}",
]


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("whisper")
    make_full_tree(root)
    return root


def test_same_results_as_graphite_web(tree):
    patterns = HAND_PATTERNS + random_patterns(1, 250)
    expected = graphite_find(tree, patterns)
    mismatches = {}
    for pattern in patterns:
        ours = [(node.path, node.is_leaf) for node in find(tree, pattern)]
        if ours != expected[pattern]:
            mismatches[pattern] = (ours, expected[pattern])
    assert not mismatches
    assert sum(bool(found) for found in expected.values()) > 150  # the patterns do match things


def test_nodes_carry_their_files(tree):
    nodes = find(tree, "servers.db1")
    assert nodes == [
        Node("servers.db1", False, tree / "servers" / "db1"),
        Node("servers.db1", True, tree / "servers" / "db1.wsp"),
    ]
    for node in find(tree, "**"):
        assert node.fs_path.is_file() if node.is_leaf else node.fs_path.is_dir()
        if node.is_leaf:
            assert node.fs_path == metric_path(tree, node.path)


def test_expand_leaves_is_the_union_of_leaves(tree):
    patterns = ["servers.web*.cpu-*", "servers.*.load", "servers.web1.cpu-user", "nothing.*"]
    leaves = expand_leaves(tree, patterns)
    expected = sorted({(n.path, str(n.fs_path)) for p in patterns for n in find(tree, p) if n.is_leaf})
    assert leaves == expected
    assert [metric for metric, _ in leaves][:2] == ["servers.db1.load", "servers.web1.cpu-idle"]


def test_brace_expansion_matches_graphite():
    assert sorted(expand_braces("cpu-{user,sys}*")) == ["cpu-sys*", "cpu-user*"]
    assert sorted(expand_braces("{a,{b,c}}x")) == ["ax", "bx", "cx"]
    assert sorted(expand_braces("{a,b}{1,2}")) == ["a1", "a2", "b1", "b2"]
    assert expand_braces("{a,a}") == ["a"]
    assert expand_braces("{unclosed") == ["{unclosed"]
    assert expand_braces("{}x") == ["x"]


def test_limit_guards_against_huge_matches(tree):
    assert len(find(tree, "servers.*.*", limit=100)) == 8
    with pytest.raises(FindLimitExceeded, match=r"cannot find pattern='\*\*': more than 5"):
        find(tree, "**", limit=5)
    with pytest.raises(FindLimitExceeded):
        expand_leaves(tree, ["servers.*.*", "stats.*.*"], limit=3)


def test_tagged_series_are_found_by_exact_name(tmp_path):
    name = "disk.used;datacenter=dc1;rack=a1"
    make_tree(tmp_path, [name, "plain"])
    assert find(tmp_path, name) == [Node(name, True, metric_path(tmp_path, name))]
    assert find(tmp_path, "disk.used;datacenter=dc2") == []
    assert find(tmp_path, "disk.*;x=\x00") == []
    assert expand_leaves(tmp_path, [name, "plain"]) == [
        (name, str(metric_path(tmp_path, name))), ("plain", str(tmp_path / "plain.wsp"))]
    # browsing the hashed tree works as in graphite-web, which lists _tagged too
    assert [n.path for n in find(tmp_path, "*")] == ["_tagged", "plain"]
    assert len(find(tmp_path, "_tagged.*.*.*")) == 1


def test_hidden_and_unnamable_entries_are_skipped(tmp_path):
    make_tree(tmp_path, ["a.b", "a.c"])
    (tmp_path / "a" / ".hidden").mkdir()
    (tmp_path / "a" / ".hidden" / "x.wsp").write_bytes(b"")
    (tmp_path / "a" / ".dot.wsp").write_bytes(b"")
    (tmp_path / "a" / "two.dots.wsp").write_bytes(b"")
    (tmp_path / "a" / "dir.with.dots").mkdir()
    os.mkdir(os.path.join(os.fsencode(tmp_path), b"a", b"bad\xffname"))
    assert [n.path for n in find(tmp_path, "a.*")] == ["a.b", "a.c"]
    assert [n.path for n in find(tmp_path, "a.*.*")] == []
    assert [n.path for n in find(tmp_path, "**")] == ["a", "a.b", "a.c"]


def test_backslash_makes_the_next_character_literal(tmp_path):
    make_tree(tmp_path, ["m.a*b", "m.axb", "m.{x}", "m.x"])
    assert [n.path for n in find(tmp_path, "m.a\\*b")] == ["m.a*b"]
    assert [n.path for n in find(tmp_path, "m.a*b")] == ["m.a*b", "m.axb"]
    assert [n.path for n in find(tmp_path, "m.\\{x\\}")] == ["m.{x}"]
    assert [n.path for n in find(tmp_path, "m.{x}")] == ["m.x"]
    assert [n.path for n in find(tmp_path, "m.\\{*")] == ["m.{x}"]


def test_symlink_loops_do_not_hang_globstar(tmp_path):
    make_tree(tmp_path, ["a.b.c"])
    (tmp_path / "a" / "b" / "loop").symlink_to(tmp_path / "a")
    paths = [n.path for n in find(tmp_path, "**")]
    assert "a.b.loop" in paths and "a.b.c" in paths
    assert not any(p.startswith("a.b.loop.") for p in paths)
    assert [n.path for n in find(tmp_path, "a.b.loop.b.c")] == ["a.b.loop.b.c"]


def test_missing_data_dir_and_empty_patterns(tmp_path):
    assert find(tmp_path / "missing", "*") == []
    make_tree(tmp_path, ["a.b"])
    # an empty node is the folder it is in, as in graphite-web (isdir(join(dir, "")))
    assert [(n.path, n.is_leaf) for n in find(tmp_path, "")] == [("", False)]
    assert [(n.path, n.is_leaf) for n in find(tmp_path, "a.")] == [("a.", False)]
    assert [(n.path, n.is_leaf) for n in find(tmp_path, "a..b")] == [("a.b", True)]
    assert [(n.path, n.is_leaf) for n in find(tmp_path, ".a.{,x}.b")] == [("a.b", True)]
    assert find(tmp_path, "a.b.") == []  # a leaf is no folder
    assert expand_leaves(tmp_path, ["a..b", "a.", "."]) == [("a.b", str(tmp_path / "a" / "b.wsp"))]
