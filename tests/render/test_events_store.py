"""render.events.store: graphite-web's Event table semantics, durability and concurrency."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from render.events.store import DATABASE_NAME, Event, EventStore, iso_utc
from render.events.tags import index_tags, returned_tags


@pytest.fixture
def store(tmp_path):
    s = EventStore.in_data_dir(tmp_path)
    yield s
    s.close()


def whats(events: list[Event]) -> list[str]:
    return [e.what for e in events]


# --- tags --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stored", "indexed", "returned"),
    [
        ("deploy x", ["deploy", "x"], ["deploy", "x"]),
        ("myapp,production,4f2a9c1,deploy", ["4f2a9c1", "deploy", "myapp", "production"],
         ["myapp,production,4f2a9c1,deploy"]),
        ("myapp, start, h", ["h", "myapp", "start"], ["myapp,", "start,", "h"]),
        ("a,b c d", ["a", "b c d"], ["a,b", "c", "d"]),
        ('"quoted tag" other', ["other", "quoted tag"], ['"quoted', 'tag"', "other"]),
        ('"a,b" c', ["a,b", "c"], ['"a,b"', "c"]),
        ('x "open, quote', ["open", "quote", "x"], ["x", '"open,', "quote"]),
        ("", [], []),
        ("  b  b a ", ["a", "b"], ["b", "b", "a"]),
    ],
)
def test_tags_are_indexed_like_django_tagging_and_returned_split_on_whitespace(stored, indexed, returned):
    assert index_tags(stored) == indexed
    assert returned_tags(stored) == returned


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning", "ignore::DeprecationWarning")
@settings(max_examples=300, deadline=None)
@given(st.text(alphabet='ab ,"\t', max_size=14))
def test_index_tags_matches_django_tagging(graphite_web, text):
    import graphite.events.models  # noqa: F401  (patches django.utils.six for django-tagging)
    from tagging.utils import parse_tag_input

    assert index_tags(text) == parse_tag_input(text)


# --- the event table ------------------------------------------------------------------


def test_add_returns_the_stored_event_and_get_reads_it_back(store):
    event = store.add("deploy", "prod web", when=1700000000.25, data="v1.2")
    assert event == Event(id=1, when=1700000000.25, what="deploy", data="v1.2", tags="prod web")
    assert store.get(1) == event
    assert store.get(2) is None
    assert event.as_dict() == {"when": 1700000000, "what": "deploy", "data": "v1.2",
                               "tags": ["prod", "web"], "id": 1}
    assert list(event.as_dict()) == ["when", "what", "data", "tags", "id"]
    assert event.as_detail() == {"id": 1, "when": "2023-11-14T22:13:20.250Z", "what": "deploy",
                                 "data": "v1.2", "tags": ["prod", "web"]}


def test_when_defaults_to_now(store, monkeypatch):
    monkeypatch.setattr("render.events.store.time.time", lambda: 1234.5)
    assert store.add("x").when == 1234.5


def test_iso_utc_is_djangos_shape():
    assert iso_utc(100) == "1970-01-01T00:01:40Z"
    assert iso_utc(0.5) == "1970-01-01T00:00:00.500Z"
    assert iso_utc(1467844481.123456) == "2016-07-06T22:34:41.123Z"


def test_epoch_truncates_like_graphite(store):
    assert store.add("a", when=500.7).as_dict()["when"] == 500
    assert store.add("b", when=-0.5).as_dict()["when"] == -1


def test_ids_are_never_reused_after_delete(store):
    store.add("a")
    second = store.add("b")
    assert store.delete(second.id) is True
    assert store.delete(second.id) is False
    assert store.add("c").id == 3
    assert store.count() == 2


def test_delete_removes_the_tag_index_too(store):
    event = store.add("a", "deploy")
    store.delete(event.id)
    assert store.find(tags=["deploy"]) == []
    rows = sqlite3.connect(store.path).execute("SELECT COUNT(*) FROM event_tags").fetchone()[0]
    assert rows == 0


def test_window_is_inclusive_and_ordered_by_when_then_id(store):
    store.add("late", when=300)
    store.add("early", when=100)
    store.add("edge", when=200)
    store.add("edge2", when=200)
    store.add("fraction", when=200.5)
    assert whats(store.find(100, 200)) == ["early", "edge", "edge2"]
    assert whats(store.find(200.5, None)) == ["fraction", "late"]
    assert whats(store.find()) == ["early", "edge", "edge2", "fraction", "late"]


@pytest.fixture
def tagged(store):
    store.add("a", "deploy x", when=100)
    store.add("b", "myapp,production,4f2a9c1,deploy", when=200)
    store.add("c", "myapp, start, h", when=300)
    store.add("d", "a,b c d", when=400)
    store.add("o", "x", when=1)
    return store


@pytest.mark.parametrize(
    ("tags", "operation", "expected"),
    [  # every row checked against graphite-web 1.1.10 (see test_events_api.py for the live diff)
        (["deploy"], None, ["a", "b"]),
        (["deploy"], "intersection", ["a"]),
        (["production"], None, ["b"]),
        (["production"], "intersection", []),
        (["start"], "union", ["c"]),
        (["start,"], None, []),
        (["a"], None, ["d"]),
        (["c", "d"], None, []),
        (["deploy", "bogus"], None, ["a", "b"]),
        (["deploy", "bogus"], "intersection", []),
        (["bogus"], "union", []),
        ([""], None, []),
        (["x", "deploy"], None, ["a"]),
        (["x", "deploy"], "union", ["o", "a", "b"]),
        (["x", "deploy"], "intersection", ["a"]),
        (["deploy", "", "x"], None, ["a"]),
        (["deploy", "", "x"], "intersection", []),
        (["deploy", "deploy"], None, ["a", "b"]),
        (["deploy", "deploy"], "intersection", []),
        ([], None, []),
        (None, None, ["o", "a", "b", "c", "d"]),
    ],
)
def test_tag_search_has_graphites_semantics(tagged, tags, operation, expected):
    assert whats(tagged.find(0, 1000, tags, operation)) == expected


def test_tags_are_case_sensitive(store):
    store.add("a", "Deploy")
    assert store.find(tags=["deploy"]) == []
    assert whats(store.find(tags=["Deploy"])) == ["a"]


def test_database_is_wal_with_full_sync_and_a_busy_timeout(store):
    connection = store._connection()
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert connection.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert connection.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000
    assert store.path.name == DATABASE_NAME


def test_reopening_keeps_events_and_refuses_a_newer_schema(tmp_path):
    EventStore.in_data_dir(tmp_path).add("kept", "t")
    again = EventStore.in_data_dir(tmp_path)
    assert whats(again.find(tags=["t"])) == ["kept"]
    sqlite3.connect(again.path).execute("PRAGMA user_version = 99")
    with pytest.raises(RuntimeError, match="cannot open events database=.*newer"):
        EventStore.in_data_dir(tmp_path)


def test_each_thread_uses_its_own_connection(store):
    seen = []

    def post(n: int) -> None:
        seen.append(id(store._connection()))
        for i in range(20):
            store.add(f"t{n}-{i}", "threads")
        store.close()

    threads = [threading.Thread(target=post, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == 4
    assert store.count() == 80


# --- several processes ---------------------------------------------------------------


def _post_many(path: str, worker: int, count: int, inherited: EventStore) -> None:
    # half the workers reuse the store object inherited through fork: it must reconnect
    store = inherited if worker % 2 else EventStore(path)
    for i in range(count):
        store.add(f"w{worker}-{i}", f"concurrent w{worker}", when=1000 + i)


def test_concurrent_posts_from_several_processes_all_land(store):
    context = multiprocessing.get_context("fork")
    store.count()  # the parent holds an open connection while it forks
    workers = [
        context.Process(target=_post_many, args=(str(store.path), w, 40, store)) for w in range(6)
    ]
    for p in workers:
        p.start()
    for p in workers:
        p.join(60)
    assert [p.exitcode for p in workers] == [0] * 6
    assert store.count() == 240
    assert {e.what for e in store.find(tags=["concurrent"])} == {
        f"w{w}-{i}" for w in range(6) for i in range(40)
    }
    assert len(store.find(tags=["concurrent", "w3"])) == 40


def _post_then_wait(path: str, acknowledged) -> None:
    event = EventStore(path).add("survives", "kill9", when=42)
    acknowledged.send(event.id)
    signal.pause()


def test_an_acknowledged_event_survives_sigkill(tmp_path):
    context = multiprocessing.get_context("fork")
    path = tmp_path / DATABASE_NAME
    parent_end, child_end = context.Pipe()
    child = context.Process(target=_post_then_wait, args=(str(path), child_end))
    child.start()
    try:
        assert parent_end.poll(30)
        event_id = parent_end.recv()
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.join(10)
    assert child.exitcode == -signal.SIGKILL
    assert EventStore(path).get(event_id) == Event(event_id, 42.0, "survives", "", "kill9")
