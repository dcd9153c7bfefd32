"""The events store: graphite-web's Event table in one SQLite file in the data folder.

Several processes (gunicorn workers, ``carbyne serve``'s render half, scripts)
may post at once, so the file runs in WAL mode with a busy timeout, every
thread and process opens its own connection, and writes take the write lock
up front (``BEGIN IMMEDIATE``) so two writers never deadlock upgrading a read
lock. ``synchronous=FULL`` makes each commit durable before :meth:`EventStore.add`
returns, so an event whose POST was acknowledged survives the process being
killed (and, WAL being fsynced on commit, a power cut).

Tags are kept twice, as graphite-web keeps them (see :mod:`render.events.tags`):
the stored string on the event row, and the names django-tagging would index
in ``event_tags``. Search semantics are graphite-web 1.1.10's ``find_events``:
the window is inclusive at both ends, and tags nobody carries are ignored.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import os
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from render.events.tags import index_tags, returned_tags
from storage.sqlite_db import SQLiteDatabase

DATABASE_NAME = "events.db"
SCHEMA_VERSION = 1

#: ``set=`` values of graphite's tag search; anything else means "all tags".
SET_OPERATIONS = ("union", "intersection")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id    INTEGER PRIMARY KEY AUTOINCREMENT,
    "when" REAL NOT NULL,
    what  TEXT NOT NULL,
    data  TEXT NOT NULL DEFAULT '',
    tags  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS events_by_when ON events ("when", id);
CREATE TABLE IF NOT EXISTS event_tags (
    tag      TEXT NOT NULL,
    event_id INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    PRIMARY KEY (tag, event_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS event_tags_by_event ON event_tags (event_id);
"""


@dataclasses.dataclass(frozen=True)
class Event:
    """One stored event. ``when`` is epoch seconds (fractions kept); ``tags`` the stored string."""

    id: int
    when: float
    what: str
    data: str
    tags: str

    @property
    def tag_list(self) -> list[str]:
        """The tags as graphite-web returns them (the stored string split on whitespace)."""
        return returned_tags(self.tags)

    @property
    def epoch(self) -> int:
        """Whole epoch seconds, as graphite's ``epoch()`` truncates a datetime."""
        return math.floor(self.when)

    def as_dict(self) -> dict[str, Any]:
        """graphite-web's ``get_data`` element: ``{when, what, data, tags, id}``, in that order."""
        return {
            "when": self.epoch,
            "what": self.what,
            "data": self.data,
            "tags": self.tag_list,
            "id": self.id,
        }

    def as_detail(self) -> dict[str, Any]:
        """graphite-web's ``/events/<id>/`` JSON: ``when`` as Django's ISO-8601 UTC string."""
        return {
            "id": self.id,
            "when": iso_utc(self.when),
            "what": self.what,
            "data": self.data,
            "tags": self.tag_list,
        }


def iso_utc(when: float) -> str:
    """``when`` the way Django's JSON encoder writes an aware UTC datetime (milliseconds, ``Z``)."""
    moment = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC) + datetime.timedelta(
        microseconds=round(when * 1_000_000)
    )
    text = moment.replace(tzinfo=None).isoformat()
    if moment.microsecond:
        text = text[:23]
    return text + "Z"


def _event(row: sqlite3.Row | tuple[Any, ...]) -> Event:
    return Event(id=row[0], when=row[1], what=row[2], data=row[3], tags=row[4])


class EventStore(SQLiteDatabase):
    """graphite's Event table in one SQLite file; safe to share between threads and forks.

    Each thread of each process gets its own connection on first use (a
    connection inherited through ``fork`` is never reused). :meth:`close`
    closes the calling thread's connection.
    """

    SCHEMA = _SCHEMA
    SCHEMA_VERSION = SCHEMA_VERSION
    LABEL = "events database"

    @classmethod
    def in_data_dir(cls, data_dir: str | os.PathLike[str]) -> EventStore:
        """The store every Carbyne process shares: ``<data_dir>/events.db``."""
        return cls(Path(data_dir) / DATABASE_NAME)

    # --- writes ----------------------------------------------------------------------

    def add(self, what: str, tags: str = "", when: float | None = None, data: str = "") -> Event:
        """Store one event (``when`` defaults to now) durably and return it with its id."""
        moment = time.time() if when is None else float(when)
        with self._write() as connection:
            cursor = connection.execute(
                'INSERT INTO events ("when", what, data, tags) VALUES (?, ?, ?, ?)',
                (moment, what, data, tags),
            )
            event_id = cursor.lastrowid
            connection.executemany(
                "INSERT INTO event_tags (tag, event_id) VALUES (?, ?)",
                [(tag, event_id) for tag in index_tags(tags)],
            )
        return Event(id=event_id, when=moment, what=what, data=data, tags=tags)

    def delete(self, event_id: int) -> bool:
        """Remove one event; False when there was none with that id."""
        with self._write() as connection:
            cursor = connection.execute("DELETE FROM events WHERE id = ?", (event_id,))
        return cursor.rowcount > 0

    # --- reads -----------------------------------------------------------------------

    def get(self, event_id: int) -> Event | None:
        """The event with ``event_id``, or None."""
        row = self._connection().execute(
            'SELECT id, "when", what, data, tags FROM events WHERE id = ?', (event_id,)
        ).fetchone()
        return None if row is None else _event(row)

    def count(self) -> int:
        """How many events are stored."""
        return self._connection().execute("SELECT COUNT(*) FROM events").fetchone()[0]

    def find(
        self,
        start: float | None = None,
        end: float | None = None,
        tags: Sequence[str] | None = None,
        set_operation: str | None = None,
    ) -> list[Event]:
        """Events with ``start <= when <= end`` matching ``tags``, ordered by ``when`` (then id).

        graphite-web 1.1.10's semantics: ``tags=None`` matches every event;
        otherwise only requested tags some event carries count (none → no
        events). ``set_operation="union"`` wants any of them, anything else
        all of them; ``"intersection"`` further keeps events whose returned
        (whitespace-split) tags include every requested entry, counting
        duplicate and empty entries, as graphite's workaround does.
        """
        where = []
        params: list[Any] = []
        if start is not None:
            where.append('e."when" >= ?')
            params.append(start)
        if end is not None:
            where.append('e."when" <= ?')
            params.append(end)
        if tags is not None:
            wanted = sorted(set(tags))
            placeholders = ", ".join("?" * len(wanted))
            connection = self._connection()
            known = [
                row[0]
                for row in connection.execute(
                    f"SELECT DISTINCT tag FROM event_tags WHERE tag IN ({placeholders})", wanted
                )
            ] if wanted else []
            if not known:
                return []
            marks = ", ".join("?" * len(known))
            having = "" if set_operation == "union" else f"HAVING COUNT(*) = {len(known)}"
            where.append(
                f"e.id IN (SELECT event_id FROM event_tags WHERE tag IN ({marks}) "
                f"GROUP BY event_id {having})"
            )
            params.extend(known)
        sql = 'SELECT e.id, e."when", e.what, e.data, e.tags FROM events e'
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += ' ORDER BY e."when", e.id'
        found = [_event(row) for row in self._connection().execute(sql, params)]
        if tags is not None and set_operation == "intersection":
            found = [e for e in found if len(set(tags) & set(e.tag_list)) == len(tags)]
        return found
