"""The tag index: which tagged series exist and what their tags are, in ``<data_dir>/tags.db``.

This is graphite-web 1.1.10's ``LocalDatabaseTagDB`` (the default TagDB)
on a plain SQLite file: the same four tables (tags, values, series, and
the series-tag links), the same statements in the same order, so the ids
``/tags`` and ``/tags/<tag>`` report are the ones graphite-web reports for
the same sequence of calls (SQLite's AUTOINCREMENT also spends an id on an
``INSERT OR IGNORE`` that is ignored). Semantics kept: tags and values stay
listed after their series are deleted (only their counts drop); results
sort by code point (SQLite's BINARY collation on UTF-8).

**Where entries come from.** Tagged whisper files are named by the SHA-256
of the series name (carbon's ``TAG_HASH_FILENAMES``), so the names cannot
be read back from the disk. The index is fed by ingestion, carbon's writer
calling :meth:`TagIndex.index_tagged_metric` for every tagged series it
creates, and by ``POST /tags/tagSeries`` / ``tagMultiSeries`` (what
graphite's carbon does over HTTP). :meth:`TagIndex.rebuild_from_disk`
re-derives what the disk can tell: it drops entries whose file is gone,
indexes names it is handed whose file exists, and lists hashed files no
entry names.

**Several processes.** The render workers and the carbon daemon share the
file: WAL mode, a busy timeout, one connection per thread and process
(never one inherited through ``fork``), writes take the write lock up front
(``BEGIN IMMEDIATE``), commits are durable (``synchronous=FULL``).
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from render.tagquery import (
    Matcher,
    ParsedPath,
    TagQueryError,
    expression_tag,
    parse_expression,
    parse_path,
    parse_query,
)
from storage.paths import TAGGED_DIR, WHISPER_SUFFIX, InvalidMetricName, metric_path
from storage.sqlite_db import SQLiteDatabase

DATABASE_NAME = "tags.db"
SCHEMA_VERSION = 1
#: graphite-web's ``TAGDB_AUTOCOMPLETE_LIMIT``.
AUTOCOMPLETE_LIMIT = 100

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tags (
    id  INTEGER PRIMARY KEY AUTOINCREMENT,
    tag TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS tag_values (
    id    INTEGER PRIMARY KEY AUTOINCREMENT,
    value TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS series (
    id   INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS series_tags (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    series_id INTEGER NOT NULL REFERENCES series (id) ON DELETE CASCADE,
    tag_id    INTEGER NOT NULL REFERENCES tags (id),
    value_id  INTEGER NOT NULL REFERENCES tag_values (id),
    UNIQUE (series_id, tag_id)
);
CREATE INDEX IF NOT EXISTS series_tags_by_value ON series_tags (tag_id, value_id, series_id);
"""


def _regexp(pattern: str, value: str) -> bool:
    """SQL ``tag_regexp(pattern, value)``: Django's sqlite REGEXP (``re.search``), which graphite uses."""
    return re.search(pattern, value) is not None


def _anchored_filter(what: str, text: str) -> str:
    """graphite's list filters: a regex anchored at the start (``^(...)`` unless it starts with ``^``)."""
    pattern = text if text.startswith("^") else f"^({text})"
    try:
        re.compile(pattern)
    except re.error as exc:
        raise TagQueryError(f"cannot filter {what}={text!r}: bad regular expression: {exc}") from None
    return pattern


def _check_limit(limit: int | None) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"cannot use limit={limit!r}: must be a whole number >= 0")


def _smallest(candidates: Iterable[str], limit: int) -> list[str]:
    """graphite's autocomplete result: the ``limit`` smallest distinct candidates, sorted."""
    return sorted(set(candidates))[:limit]


@dataclass(frozen=True)
class DiskScan:
    """What :meth:`TagIndex.rebuild_from_disk` found and did."""

    kept: int = 0
    added: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    #: ``_tagged`` files no entry names (their series names cannot be recovered).
    orphans: list[Path] = field(default_factory=list)


class TagIndex(SQLiteDatabase):
    """graphite's tag database in one SQLite file; safe to share between threads and processes."""

    SCHEMA = _SCHEMA
    SCHEMA_VERSION = SCHEMA_VERSION
    LABEL = "tag index"

    @classmethod
    def in_data_dir(cls, data_dir: str | os.PathLike[str]) -> TagIndex:
        """The index every Carbyne process shares: ``<data_dir>/tags.db``."""
        return cls(Path(data_dir) / DATABASE_NAME)

    def _prepare(self, connection: sqlite3.Connection) -> None:
        connection.create_function("tag_regexp", 2, _regexp, deterministic=True)

    # --- writes ----------------------------------------------------------------------

    def tag_series(self, path: str) -> str:
        """Index one series (``name;tag=value;...``, any spelling); return its canonical path."""
        parsed = parse_path(path)
        with self._write() as connection:
            self._insert(connection, parsed)
        return parsed.path

    def tag_multi_series(self, paths: Sequence[str]) -> list[str]:
        """Index several series in one transaction; their canonical paths, in order.

        Every path is parsed before anything is written, so one bad path
        indexes none of them.
        """
        parsed = [parse_path(p) for p in paths]
        with self._write() as connection:
            for one in parsed:
                self._insert(connection, one)
        return [one.path for one in parsed]

    def index_tagged_metric(self, name: str) -> bool:
        """carbon writer's hook: index ``name`` if it is a tagged series not indexed yet.

        Names without ``;`` are skipped (carbon's ``SKIP_TAGS_FOR_NONTAGGED``).
        A known series costs one indexed read and takes no write lock.
        Returns whether an entry was added; raises TagQueryError for names
        graphite cannot parse.
        """
        if ";" not in name:
            return False
        parsed = parse_path(name)
        if self._series_id(self._connection(), parsed.path) is not None:
            return False
        with self._write() as connection:
            return self._insert(connection, parsed)

    @staticmethod
    def _series_id(connection: sqlite3.Connection, path: str) -> int | None:
        row = connection.execute("SELECT id FROM series WHERE path = ?", (path,)).fetchone()
        return None if row is None else row[0]

    def _insert(self, connection: sqlite3.Connection, parsed: ParsedPath) -> bool:
        """graphite's tag_series statements, in its order (which decides the ids handed out)."""
        if self._series_id(connection, parsed.path) is not None:
            return False
        tags = list(parsed.tags)
        values = list(parsed.tags.values())
        rows = ", ".join(["(?)"] * len(tags))
        marks = ", ".join("?" * len(tags))
        connection.execute(f"INSERT OR IGNORE INTO tags (tag) VALUES {rows}", tags)
        tag_ids = dict(connection.execute(f"SELECT tag, id FROM tags WHERE tag IN ({marks})", tags))
        connection.execute(f"INSERT OR IGNORE INTO tag_values (value) VALUES {rows}", values)
        value_ids = dict(
            connection.execute(f"SELECT value, id FROM tag_values WHERE value IN ({marks})", values)
        )
        series_id = connection.execute("INSERT INTO series (path) VALUES (?)", (parsed.path,)).lastrowid
        links = [x for tag, value in parsed.tags.items() for x in (series_id, tag_ids[tag], value_ids[value])]
        connection.execute(
            "INSERT OR IGNORE INTO series_tags (series_id, tag_id, value_id) VALUES "
            + ", ".join(["(?, ?, ?)"] * len(tags)),
            links,
        )
        return True

    def del_series(self, paths: Sequence[str]) -> int:
        """Remove series (any spelling); returns how many were indexed. Tags and values stay listed."""
        parsed = [parse_path(p).path for p in paths]
        removed = 0
        with self._write() as connection:
            for path in parsed:
                removed += connection.execute("DELETE FROM series WHERE path = ?", (path,)).rowcount
        return removed

    # --- series lookups ---------------------------------------------------------------

    def find_series(self, expressions: Sequence[str]) -> list[str]:
        """Canonical paths of the series matching every expression, sorted.

        Expressions as graphite's ``seriesByTag``: see :mod:`render.tagquery`.
        Raises TagQueryError for malformed expressions, bad regexes, or when
        every expression accepts the empty value.
        """
        query = parse_query(expressions)
        sql = ["SELECT s.path FROM series AS s"]
        params: list[Any] = []
        for number, matcher in enumerate(query.required):
            link = f"st{number}"
            sql.append(
                f"JOIN series_tags AS {link} ON {link}.series_id = s.id"
                f" AND {link}.tag_id = (SELECT id FROM tags WHERE tag = ?)"
            )
            params.append(matcher.tag)
            condition, extra = self._value_condition(link, matcher)
            sql.append(condition)
            params.extend(extra)
        sql.append("ORDER BY s.path")
        rows = self._connection().execute(" ".join(sql), params)
        if not query.filters:
            return [row[0] for row in rows]
        return [path for (path,) in rows if self._passes(query.filters, path)]

    @staticmethod
    def _value_condition(link: str, matcher: Matcher) -> tuple[str, list[Any]]:
        """The JOIN condition a required expression puts on the value of its tag."""
        if matcher.operator == "=":
            return (f"AND {link}.value_id = (SELECT id FROM tag_values WHERE value = ?)", [matcher.spec])
        if matcher.pattern is None:  # only "tag!=" (empty spec) is required: the tag is present
            return "", []
        # the regex runs once per distinct value of the tag, not once per series
        negation = "NOT " if matcher.negated else ""
        return (
            f"AND {link}.value_id {negation}IN (SELECT v.id FROM tag_values AS v WHERE v.id IN"
            " (SELECT value_id FROM series_tags WHERE tag_id = (SELECT id FROM tags WHERE tag = ?))"
            " AND tag_regexp(?, v.value))",
            [matcher.tag, matcher.pattern.pattern],
        )

    @staticmethod
    def _passes(filters: Sequence[Matcher], path: str) -> bool:
        try:
            tags = parse_path(path).tags
        except TagQueryError:
            return False
        return all(m.accepts_missing_or(tags.get(m.tag, "")) for m in filters)

    def series_count(self) -> int:
        """How many series are indexed."""
        return self._connection().execute("SELECT COUNT(*) FROM series").fetchone()[0]

    # --- tags and values --------------------------------------------------------------

    def list_tags(self, tag_filter: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """``[{"id", "tag"}, ...]`` sorted by tag; ``tag_filter`` a regex anchored at the start."""
        _check_limit(limit)
        sql = "SELECT id, tag FROM tags"
        params: list[Any] = []
        if tag_filter:
            sql += " WHERE tag_regexp(?, tag)"
            params.append(_anchored_filter("tags", tag_filter))
        sql += " ORDER BY tag"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [{"id": i, "tag": t} for i, t in self._connection().execute(sql, params)]

    def get_tag(self, tag: str, value_filter: str | None = None, limit: int | None = None) -> dict[str, Any] | None:
        """``{"id", "tag", "values": list_values(...)}``, or None for a tag never seen."""
        row = self._connection().execute("SELECT id, tag FROM tags WHERE tag = ?", (tag,)).fetchone()
        if row is None:
            return None
        return {"id": row[0], "tag": row[1], "values": self.list_values(tag, value_filter, limit)}

    def list_values(self, tag: str, value_filter: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """``[{"id", "value", "count"}, ...]`` of ``tag``'s values in use, sorted; count = series."""
        _check_limit(limit)
        sql = (
            "SELECT v.id, v.value, COUNT(st.id) FROM tag_values AS v"
            " JOIN series_tags AS st ON st.value_id = v.id"
            " JOIN tags AS t ON t.id = st.tag_id WHERE t.tag = ?"
        )
        params: list[Any] = [tag]
        if value_filter:
            sql += " AND tag_regexp(?, v.value)"
            params.append(_anchored_filter("values", value_filter))
        sql += " GROUP BY v.id, v.value ORDER BY v.value"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [{"id": i, "value": v, "count": c} for i, v, c in self._connection().execute(sql, params)]

    def auto_complete_tags(
        self, expressions: Sequence[str], tag_prefix: str | None = None, limit: int | None = None
    ) -> list[str]:
        """Tag names for an editor: all tags, or those of the series ``expressions`` match
        (minus the tags the expressions name), starting with ``tag_prefix``; sorted, at most
        ``limit`` (default 100)."""
        limit = AUTOCOMPLETE_LIMIT if limit is None else limit
        _check_limit(limit)
        if not expressions:
            sql = "SELECT tag FROM tags"
            params: list[Any] = []
            if tag_prefix:
                sql += " WHERE substr(tag, 1, ?) = ?"
                params += [len(tag_prefix), tag_prefix]
            sql += " ORDER BY tag LIMIT ?"
            return [row[0] for row in self._connection().execute(sql, [*params, limit])]
        searched = {expression_tag(e) for e in expressions}
        return _smallest(
            (
                tag
                for path in self.find_series(expressions)
                for tag in parse_path(path).tags
                if tag not in searched and (not tag_prefix or tag.startswith(tag_prefix))
            ),
            limit,
        )

    def auto_complete_values(
        self,
        expressions: Sequence[str],
        tag: str,
        value_prefix: str | None = None,
        limit: int | None = None,
    ) -> list[str]:
        """Values of ``tag``: all in use, or those of the series ``expressions`` match, starting
        with ``value_prefix``; sorted, at most ``limit`` (default 100)."""
        limit = AUTOCOMPLETE_LIMIT if limit is None else limit
        _check_limit(limit)
        if not expressions:
            sql = (
                "SELECT DISTINCT v.value FROM tag_values AS v"
                " JOIN series_tags AS st ON st.value_id = v.id"
                " JOIN tags AS t ON t.id = st.tag_id WHERE t.tag = ?"
            )
            params: list[Any] = [tag]
            if value_prefix:
                sql += " AND substr(v.value, 1, ?) = ?"
                params += [len(value_prefix), value_prefix]
            sql += " ORDER BY v.value LIMIT ?"
            return [row[0] for row in self._connection().execute(sql, [*params, limit])]
        has_tag = f"{tag}!="
        parse_expression(has_tag)
        found = []
        for path in self.find_series([*expressions, has_tag]):
            value = parse_path(path).tags.get(tag)
            if value is not None and (not value_prefix or value.startswith(value_prefix)):
                found.append(value)
        return _smallest(found, limit)

    # --- the disk ----------------------------------------------------------------------

    def rebuild_from_disk(
        self, data_dir: str | os.PathLike[str], names: Iterable[str] = (), prune: bool = True
    ) -> DiskScan:
        """Bring the index in line with the whisper files under ``data_dir``.

        ``prune`` drops entries whose file (``storage.paths.metric_path``) is
        gone. ``names`` (e.g. from carbon's logs) are indexed when their file
        exists. Tagged files whose hash no entry explains are returned as
        ``orphans``: their names are not recoverable from the disk.
        """
        root = Path(data_dir)
        dropped = []
        kept_paths: set[str] = set()
        for (path,) in self._connection().execute("SELECT path FROM series ORDER BY path").fetchall():
            if _file_of(root, path) is not None:
                kept_paths.add(path)
            elif prune:
                dropped.append(path)
        if dropped:
            self.del_series(dropped)
        added = []
        for name in names:
            parsed = parse_path(name)
            if _file_of(root, parsed.path) is not None and parsed.path not in kept_paths:
                with self._write() as connection:
                    if self._insert(connection, parsed):
                        added.append(parsed.path)
        known = {hashlib.sha256(p.encode("utf-8")).hexdigest() for p in [*kept_paths, *added]}
        tagged_root = root / TAGGED_DIR
        orphans = sorted(
            f for f in tagged_root.glob(f"*/*/*{WHISPER_SUFFIX}")
            if f.is_file() and f.name[: -len(WHISPER_SUFFIX)] not in known
        ) if tagged_root.is_dir() else []
        return DiskScan(kept=len(kept_paths), added=added, dropped=dropped, orphans=orphans)


def _file_of(root: Path, path: str) -> Path | None:
    try:
        candidate = metric_path(root, path)
    except InvalidMetricName:
        return None
    return candidate if candidate.is_file() else None


__all__ = ["AUTOCOMPLETE_LIMIT", "DATABASE_NAME", "DiskScan", "TagIndex", "TagQueryError"]
