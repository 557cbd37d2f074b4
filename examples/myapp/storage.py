"""A sqlite3-backed user repository."""

from __future__ import annotations

import atexit
import contextlib
import sqlite3


def create_schema(path: str) -> None:
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, name TEXT)")
        conn.executemany(
            "INSERT OR REPLACE INTO users VALUES (?, ?)", [(i, f"user-{i}") for i in range(8)]
        )


def find_user_leaky(path: str, user_id: int) -> str | None:
    """Opens a connection per request and never closes it.

    "Close it at exit" looks tidy, but ``atexit`` now holds every connection (and its file
    descriptor) until the process ends: one more open file per request.
    """
    conn = sqlite3.connect(path)
    atexit.register(conn.close)
    row = conn.execute("SELECT name FROM users WHERE id = ?", (user_id,)).fetchone()
    return row[0] if row else None


def find_user(path: str, user_id: int) -> str | None:
    """Opens a connection per request and closes it when done."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        row = conn.execute("SELECT name FROM users WHERE id = ?", (user_id,)).fetchone()
    return row[0] if row else None
