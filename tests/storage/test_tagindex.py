"""storage.tagindex: graphite-web 1.1.10's LocalDatabaseTagDB semantics, processes, the disk."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from render.tagquery import TagQueryError
from storage.paths import metric_path
from storage.tagindex import AUTOCOMPLETE_LIMIT, DATABASE_NAME, TagIndex

# --- graphite-web's LocalDatabaseTagDB as the oracle -----------------------------------


@pytest.fixture(scope="session")
def graphite_tagdb(tmp_path_factory):
    """graphite-web's default TagDB on its (migrated) sqlite database, Django set up once."""
    webapp = str(importlib.metadata.distribution("graphite-web").locate_file("opt/graphite/webapp"))
    if webapp not in sys.path:
        sys.path.insert(0, webapp)
    from django.conf import settings as django_settings

    if not django_settings.configured:
        storage = tmp_path_factory.mktemp("graphite-storage")
        (storage / "log" / "webapp").mkdir(parents=True)
        os.environ.setdefault("GRAPHITE_STORAGE_DIR", str(storage))
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "graphite.settings")
        import django

        with contextlib.redirect_stdout(None), contextlib.redirect_stderr(None):
            django.setup()
    from django.core.management import call_command
    from graphite.tags.localdatabase import LocalDatabaseTagDB

    call_command("migrate", run_syncdb=True, verbosity=0, interactive=False)
    return LocalDatabaseTagDB(django_settings)


def reset_graphite() -> None:
    """Empty graphite's tag tables and restart their ids."""
    from django.db import connection

    with connection.cursor() as cursor:
        for table in ("tags_seriestag", "tags_series", "tags_tag", "tags_tagvalue"):
            cursor.execute(f"DELETE FROM {table}")
        cursor.execute("DELETE FROM sqlite_sequence WHERE name LIKE 'tags_%'")


@contextlib.contextmanager
def fresh(graphite_tagdb, tmp_path_factory):
    """graphite's tables emptied, inside a transaction rolled back afterwards (no fsync per
    statement), and a new TagIndex on a RAM-backed folder when there is one."""
    from django.db import transaction

    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    folder = tempfile.mkdtemp(prefix="carbyne-tags-", dir=base)
    index = TagIndex.in_data_dir(folder)
    try:
        with transaction.atomic():
            reset_graphite()
            yield index
            transaction.set_rollback(True)
    finally:
        index.close()
        shutil.rmtree(folder)


def outcome(call, *args):
    """``("ok", result)`` or ``("error", None)``: graphite raises ValueError, re.error or Exception."""
    try:
        return ("ok", call(*args))
    except Exception:  # noqa: BLE001 - any refusal counts; messages differ on purpose
        return ("error", None)


@pytest.fixture
def index(tmp_path):
    i = TagIndex.in_data_dir(tmp_path)
    yield i
    i.close()


# --- generated series sets and expressions -------------------------------------------

NAMES = ["cpu", "disk.used", "a.b", "~cpu", "m"]
TAGS = ["dc", "host", "env", "a.b", "a", "name", "x~"]
VALUES = ["1", "2", "web01", "web02", "a.b", "a", "x=y", "b!", "é"]
SPECS = ["", "1", "web01", "a", "web.*", "web0[2-9]", "^w", "^a|b", "x|1", ".*", "(", "[12]", "é", "a.b"]

tag_pairs = st.lists(st.tuples(st.sampled_from(TAGS), st.sampled_from(VALUES)), max_size=4)
series_paths = st.builds(
    lambda name, pairs: name + "".join(f";{t}={v}" for t, v in pairs), st.sampled_from(NAMES), tag_pairs
)
expressions = st.builds(
    lambda tag, op, spec: f"{tag}{op}{spec}",
    st.sampled_from([*TAGS, "zz"]),
    st.sampled_from(["=", "!=", "=~", "!=~"]),
    st.sampled_from(SPECS),
)
operations = st.lists(
    st.tuples(st.sampled_from(["tag", "del"]), st.lists(series_paths, min_size=1, max_size=4)),
    min_size=1,
    max_size=6,
)


def apply(index: TagIndex, graphite, ops) -> None:
    for kind, paths in ops:
        if kind == "tag":
            assert index.tag_multi_series(paths) == graphite.tag_multi_series(paths)
        else:
            index.del_series(paths)
            graphite.del_multi_series(paths)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@settings(max_examples=60, deadline=None)
@given(ops=operations, queries=st.lists(st.lists(expressions, min_size=1, max_size=3), max_size=6))
def test_generated_sets_match_graphite(graphite_tagdb, tmp_path_factory, ops, queries):
    with fresh(graphite_tagdb, tmp_path_factory) as index:
        check_generated(index, graphite_tagdb, ops, queries)


def check_generated(index, graphite_tagdb, ops, queries):
    apply(index, graphite_tagdb, ops)
    assert index.list_tags() == graphite_tagdb.list_tags()
    for tag in [*TAGS, "zz"]:
        assert index.get_tag(tag) == graphite_tagdb.get_tag(tag)
    for exprs in queries:
        assert outcome(index.find_series, exprs) == outcome(graphite_tagdb.find_series, exprs), exprs
        ours = outcome(index.auto_complete_tags, exprs, None, 3)
        assert ours == outcome(graphite_tagdb.auto_complete_tags, exprs, None, 3), exprs
        for tag in ("host", "dc", "name"):
            ours = outcome(index.auto_complete_values, exprs, tag, "w", 100)
            assert ours == outcome(graphite_tagdb.auto_complete_values, exprs, tag, "w", 100), exprs


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@settings(max_examples=25, deadline=None)
@given(
    paths=st.lists(series_paths, min_size=1, max_size=8),
    prefix=st.sampled_from([None, "", "a", "d", "web", "é", "x"]),
    limit=st.sampled_from([None, 0, 1, 2, 100]),
    tag_filter=st.sampled_from([None, "", "a", "^d|h", "x~", "n.m", "a\\.b"]),
)
def test_listing_and_autocomplete_without_expressions_match_graphite(
    graphite_tagdb, tmp_path_factory, paths, prefix, limit, tag_filter
):
    # graphite's TagDB reads limit 0 as "no limit" (its HTTP layer then cuts to 0: see the API tests)
    limit = limit or None
    with fresh(graphite_tagdb, tmp_path_factory) as index:
        index.tag_multi_series(paths)
        graphite_tagdb.tag_multi_series(paths)
        expected = graphite_tagdb.auto_complete_tags([], prefix, limit)
        assert index.auto_complete_tags([], prefix, limit) == expected
        for tag in TAGS:
            assert index.auto_complete_values([], tag, prefix, limit) == graphite_tagdb.auto_complete_values(
                [], tag, prefix, limit
            )
            ours = index.list_values(tag, tag_filter, limit)
            assert ours == graphite_tagdb.list_values(tag, tag_filter, limit)
        assert index.list_tags(tag_filter, limit) == graphite_tagdb.list_tags(tag_filter, limit)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_autocomplete_limit_keeps_the_smallest_like_graphite(graphite_tagdb, tmp_path_factory):
    paths = [f"m;t{n:03d}=v{n % 7}" for n in range(150, 0, -1)]
    with fresh(graphite_tagdb, tmp_path_factory) as index:
        index.tag_multi_series(paths)
        graphite_tagdb.tag_multi_series(paths)
        ours = index.auto_complete_tags(["name=m"])
        assert len(ours) == AUTOCOMPLETE_LIMIT
        assert ours == graphite_tagdb.auto_complete_tags(["name=m"])
        expected = graphite_tagdb.auto_complete_tags(["name=m"], "t1", 5)
        assert index.auto_complete_tags(["name=m"], "t1", 5) == expected


# --- hand-written semantics -------------------------------------------------------------

SERIES = [
    "disk.used;datacenter=dc1;rack=a1;server=web01",
    "disk.used;datacenter=dc1;rack=a2;server=web02",
    "disk.used;datacenter=dc2;server=web03",
    "cpu.load;datacenter=dc1;server=web01",
]


@pytest.mark.parametrize(
    ("exprs", "expected"),
    [
        (["name=disk.used"], [0, 1, 2]),
        (["name=disk.used", "rack="], [2]),  # empty value: series without the tag
        (["name=disk.used", "rack!="], [0, 1]),  # "!=" empty: series with the tag
        (["server=~web0[12]"], [3, 0, 1]),
        (["server=~eb"], []),  # anchored at the start
        (["name=disk.used", "server!=~web0[12]"], [2]),
        (["datacenter=dc1", "server!=web01"], [1]),
        (["datacenter=dc1", "rack!=a1"], [1, 3]),  # "!=" keeps series without the tag
        (["datacenter=dc1", "rack=~a"], [0, 1]),
        (["datacenter=dc1", "rack!=~a1"], [1, 3]),
        (["name=~disk|cpu", "server=web01"], [3, 0]),
        (["name=nothing"], []),
        (["nosuchtag!="], []),
    ],
)
def test_expression_semantics(index, exprs, expected):
    index.tag_multi_series(SERIES)
    assert index.find_series(exprs) == sorted(SERIES[i] for i in expected)


@pytest.mark.parametrize(
    ("exprs", "message"),
    [
        (["rack="], "at least one expression must not match the empty value"),
        (["a!=b", "c=~.*"], "at least one expression must not match the empty value"),
        (["server=~web("], "bad regular expression"),
        (["server"], "not tag=value"),
        (["a;b=c"], "not tag=value"),
        ([], "at least one expression"),
    ],
)
def test_bad_expressions_are_refused(index, exprs, message):
    with pytest.raises(TagQueryError, match=message):
        index.find_series(exprs)


def test_a_regex_starting_with_caret_is_searched_as_graphite_does(index):
    index.tag_multi_series(["m;k=xb", "m;k=ab", "m;k=c"])
    # required expression: SQL REGEXP = re.search, so "^a|b" also finds "xb"
    assert index.find_series(["k=~^a|b"]) == ["m;k=ab", "m;k=xb"]
    # empty-matching expression: re.match, so "^a|b" does not match "xb"
    assert index.find_series(["name=m", "k!=~^a|b"]) == ["m;k=c", "m;k=xb"]


def test_tagging_canonicalises_and_is_idempotent(index):
    assert index.tag_series("a.b;z=1;y=2") == "a.b;y=2;z=1"
    assert index.tag_series("a.b;y=2;z=1") == "a.b;y=2;z=1"
    assert index.tag_series('~~a.b{z="1",y="2"}') == "a.b;y=2;z=1"
    assert index.tag_series("plain.name") == "plain.name"
    assert index.series_count() == 2
    assert index.find_series(["name=plain.name"]) == ["plain.name"]


def test_a_bad_path_in_a_batch_indexes_nothing(index):
    with pytest.raises(TagQueryError, match="invalid segment"):
        index.tag_multi_series(["ok;a=1", "bad;a"])
    assert index.series_count() == 0


def test_deleting_keeps_tags_listed_but_drops_counts(index):
    index.tag_multi_series(SERIES)
    assert index.del_series(["disk.used;server=web03;datacenter=dc2", "never;x=1"]) == 1
    assert [t["tag"] for t in index.list_tags()] == ["datacenter", "name", "rack", "server"]
    assert [(v["value"], v["count"]) for v in index.list_values("datacenter")] == [("dc1", 3)]
    assert index.find_series(["datacenter=dc2"]) == []


def test_negative_limits_are_refused(index):
    with pytest.raises(ValueError, match="limit"):
        index.list_tags(limit=-1)
    with pytest.raises(ValueError, match="limit"):
        index.auto_complete_values([], "a", limit=-5)


def test_an_index_survives_reopening(tmp_path):
    first = TagIndex.in_data_dir(tmp_path)
    first.tag_series("a;b=c")
    first.close()
    again = TagIndex(tmp_path / DATABASE_NAME)
    assert again.find_series(["b=c"]) == ["a;b=c"]
    again.close()


def test_a_newer_schema_is_refused(tmp_path):
    connection = sqlite3.connect(tmp_path / DATABASE_NAME)
    connection.execute("PRAGMA user_version = 99")
    connection.close()
    with pytest.raises(RuntimeError, match="newer"):
        TagIndex.in_data_dir(tmp_path)


# --- the carbon writer's hook and the disk ------------------------------------------------


def test_writer_hook_indexes_tagged_names_once(index):
    assert index.index_tagged_metric("plain.metric") is False
    assert index.index_tagged_metric("cpu;host=h1;dc=east") is True
    assert index.index_tagged_metric("cpu;dc=east;host=h1") is False
    assert index.find_series(["dc=east"]) == ["cpu;dc=east;host=h1"]
    with pytest.raises(TagQueryError):
        index.index_tagged_metric("cpu;=x")


def test_rebuild_from_disk_prunes_adds_and_reports_orphans(tmp_path):
    index = TagIndex.in_data_dir(tmp_path)
    for name in ("cpu;host=h1", "cpu;host=h2", "plain.metric", "orphan;x=1"):
        path = metric_path(tmp_path, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    index.tag_multi_series(["cpu;host=h1", "gone;host=h9", "plain.metric"])
    scan = index.rebuild_from_disk(tmp_path, names=["cpu;host=h2", "never;written=1"])
    assert scan.kept == 2
    assert scan.dropped == ["gone;host=h9"]
    assert scan.added == ["cpu;host=h2"]
    assert scan.orphans == [metric_path(tmp_path, "orphan;x=1")]
    assert index.find_series(["name!="]) == ["cpu;host=h1", "cpu;host=h2", "plain.metric"]
    kept = index.rebuild_from_disk(tmp_path, prune=False)
    assert kept.dropped == [] and kept.kept == 3
    index.close()


# --- several threads and processes -----------------------------------------------------------

_WORKER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from storage.tagindex import TagIndex
    data_dir, worker, go = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    index = TagIndex.in_data_dir(data_dir)
    while not go.exists():
        time.sleep(0.005)
    for n in range(150):
        # half shared with the other worker, half its own; tags and values overlap
        host = n if n % 2 else f"{n}-{worker}"
        if n % 3:
            index.tag_series(f"cpu.load;host=h{host};dc=dc{n % 4}")
        else:
            index.index_tagged_metric(f"mem;dc=dc{n % 4};host=h{host}")
    print(index.series_count())
    """
)


def test_two_processes_tagging_at_once(tmp_path):
    TagIndex.in_data_dir(tmp_path).close()
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(tmp_path), str(w), str(go)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )
        for w in (1, 2)
    ]
    try:
        go.touch()
        results = [w.communicate(timeout=60) for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()
    assert [w.returncode for w in workers] == [0, 0], [err for _, err in results]
    index = TagIndex.in_data_dir(tmp_path)
    assert index.series_count() == 75 + 2 * 75
    assert len(index.find_series(["name=cpu.load"])) + len(index.find_series(["name=mem"])) == 225
    assert [t["tag"] for t in index.list_tags()] == ["dc", "host", "name"]
    assert sum(v["count"] for v in index.list_values("host")) == 225
    connection = sqlite3.connect(tmp_path / DATABASE_NAME)
    assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert connection.execute("SELECT COUNT(*) FROM tags").fetchone() == (3,)
    connection.close()
    index.close()


def test_threads_share_one_index(index):
    errors = []

    def work(worker: int) -> None:
        try:
            for n in range(40):
                index.tag_series(f"t;w={worker};n={n}")
                index.find_series([f"w={worker}"])
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            index.close()

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert index.series_count() == 160
