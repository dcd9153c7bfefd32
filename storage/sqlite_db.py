"""The SQLite file behind the event store and the tag index: one connection per thread and process.

Both are written by several processes at once (render workers, the carbon
daemon), so every file runs in WAL mode with ``synchronous = FULL`` (an
acknowledged write survives a kill), a long busy timeout, and writes in
``BEGIN IMMEDIATE`` transactions that take the write lock up front. A
connection inherited through ``fork`` is never reused.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BUSY_TIMEOUT_MS = 30_000


class SQLiteDatabase:
    """A schema-versioned SQLite file; subclasses give ``SCHEMA``, ``SCHEMA_VERSION`` and ``LABEL``."""

    SCHEMA = ""
    SCHEMA_VERSION = 1
    #: What the file holds, for error messages ("events database", "tag index").
    LABEL = "database"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._write() as connection:
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            if version > self.SCHEMA_VERSION:
                raise RuntimeError(
                    f"cannot open {self.LABEL}={str(self.path)!r}: "
                    f"schema version {version} is newer than {self.SCHEMA_VERSION}"
                )
            for statement in self.SCHEMA.split(";"):
                if statement.strip():
                    connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {self.SCHEMA_VERSION}")

    def _prepare(self, connection: sqlite3.Connection) -> None:
        """Per-connection set-up beyond the pragmas (SQL functions); nothing by default."""

    def _connection(self) -> sqlite3.Connection:
        local = self._local
        if getattr(local, "pid", None) != os.getpid() or local.connection is None:
            connection = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
            connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = FULL")
            connection.execute("PRAGMA foreign_keys = ON")
            self._prepare(connection)
            local.connection = connection
            local.pid = os.getpid()
        return local.connection

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction holding the write lock from its start; committed on exit."""
        connection = self._connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    def close(self) -> None:
        """Close this thread's connection (the next call opens a new one)."""
        connection = getattr(self._local, "connection", None)
        if connection is not None and self._local.pid == os.getpid():
            connection.close()
        self._local.connection = None
