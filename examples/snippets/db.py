"""SQLite storage for snippets: one table, one connection per request, job or clock run."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS snippets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    title TEXT NOT NULL,
    code TEXT NOT NULL,
    created_at REAL NOT NULL,
    html TEXT
);
CREATE INDEX IF NOT EXISTS snippets_created_at ON snippets (created_at);
"""


@dataclass(frozen=True, slots=True)
class Snippet:
    id: int
    title: str
    code: str
    created_at: float
    html: str | None = None
    """The highlighted code, once the worker has run ``snippets.jobs.highlight``."""


def connect(path: Path) -> sqlite3.Connection:
    """Open the database, creating the table on first use. The web workers and the clock share
    the file, so writers wait for each other (WAL mode, busy timeout) instead of failing."""
    connection = sqlite3.connect(path, timeout=10, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.executescript(SCHEMA)
    columns = {row[1] for row in connection.execute("PRAGMA table_info(snippets)")}
    if "html" not in columns:  # a database from before the worker highlighted snippets
        connection.execute("ALTER TABLE snippets ADD COLUMN html TEXT")
    return connection


def add(connection: sqlite3.Connection, title: str, code: str, now: float) -> int:
    cursor = connection.execute(
        "INSERT INTO snippets (title, code, created_at) VALUES (?, ?, ?)", (title, code, now)
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def get(connection: sqlite3.Connection, snippet_id: int) -> Snippet | None:
    row = connection.execute(
        "SELECT id, title, code, created_at, html FROM snippets WHERE id = ?", (snippet_id,)
    ).fetchone()
    return Snippet(*row) if row else None


def set_html(connection: sqlite3.Connection, snippet_id: int, html: str) -> bool:
    """Store the highlighted code; False when the snippet is gone (expired meanwhile)."""
    cursor = connection.execute("UPDATE snippets SET html = ? WHERE id = ?", (html, snippet_id))
    return cursor.rowcount == 1


def recent(connection: sqlite3.Connection, limit: int = 20) -> list[Snippet]:
    rows = connection.execute(
        "SELECT id, title, code, created_at, html FROM snippets ORDER BY id DESC LIMIT ?",
        (limit,),
    )
    return [Snippet(*row) for row in rows]


def delete_older_than(connection: sqlite3.Connection, cutoff: float) -> int:
    """Delete snippets created before ``cutoff`` (a Unix time); return how many."""
    cursor = connection.execute("DELETE FROM snippets WHERE created_at < ?", (cutoff,))
    return cursor.rowcount
