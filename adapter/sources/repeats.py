"""Repeated rows within one file: exact repeats, and one identity with two different contents.

Each row is remembered under a key (its identity, e.g. the Meddelande-id, or else its content)
with a digest of its content, as 64-bit digests in a private temporary SQLite database. It
spills to disk beyond a small page cache, so a file of millions of rows reads in flat memory
(a Python set would grow with the file). Two different keys sharing a 64-bit digest is
negligible (about 1 in 30 million for a file of a million rows).
"""

from __future__ import annotations

import sqlite3
from typing import NamedTuple


def digest(text: str) -> int:
    """A signed 64-bit digest (SQLite's INTEGER), stable within this process only (Python's
    salted SipHash): enough, since the digests live as long as one reading."""
    return hash(text)


class Earlier(NamedTuple):
    line: int
    same_content: bool  # True: a repeat; False: the same identity with other content


class RepeatCheck:
    """Remembers the rows of one file. Close it (or use `with`) when the file is done."""

    def __init__(self) -> None:
        # "" = a private temporary database, deleted on close; no journal, nothing to keep.
        self._db = sqlite3.connect("", isolation_level=None)
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute(
            "CREATE TABLE seen (key INTEGER PRIMARY KEY, content INTEGER, line INTEGER)"
        )
        self._db.execute("BEGIN")

    def earlier(self, key: str | None, content: int, line: int) -> Earlier | None:
        """The earlier row with this key (None: the content is the key); else remember this
        row and return None."""
        key_digest = content if key is None else digest(f"key\x1f{key}")
        cur = self._db.execute(
            "INSERT OR IGNORE INTO seen VALUES (?, ?, ?)", (key_digest, content, line)
        )
        if cur.rowcount:
            return None
        first_line, first_content = self._db.execute(
            "SELECT line, content FROM seen WHERE key = ?", (key_digest,)
        ).fetchone()
        return Earlier(int(first_line), first_content == content)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> RepeatCheck:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
