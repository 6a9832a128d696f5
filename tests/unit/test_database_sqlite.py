"""Opening a SQLite store while another connection holds the file: the journal-mode switch
answers "database is locked" at once (no busy wait), which failed a scheduled job in CI."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from adapter import database


class Flaky:
    """A cursor whose journal-mode statements fail `failures` times, as a file being closed does."""

    def __init__(self, real: sqlite3.Cursor, failures: int) -> None:
        self.real, self.failures, self.statements = real, failures, list[str]()

    def execute(self, sql: str) -> Any:
        self.statements.append(sql)
        if "journal_mode" in sql and self.failures:
            self.failures -= 1
            raise sqlite3.OperationalError("database is locked")
        return self.real.execute(sql)

    def close(self) -> None:
        self.real.close()


class Connection:
    def __init__(self, path: Path, failures: int) -> None:
        self.cursor_ = Flaky(sqlite3.connect(path).cursor(), failures)

    def cursor(self) -> Flaky:
        return self.cursor_


def test_a_locked_journal_mode_switch_is_retried_and_the_file_ends_in_wal(tmp_path: Path) -> None:
    connection = Connection(tmp_path / "s.sqlite", failures=3)
    database._sqlite_pragmas(connection, None)
    check = sqlite3.connect(tmp_path / "s.sqlite")
    assert check.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert connection.cursor_.statements.count("PRAGMA journal_mode") == 4


def test_a_file_already_in_wal_is_not_switched_again(tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / "s.sqlite").execute("PRAGMA journal_mode=WAL").fetchone()
    connection = Connection(tmp_path / "s.sqlite", failures=0)
    database._sqlite_pragmas(connection, None)
    assert "PRAGMA journal_mode=WAL" not in connection.cursor_.statements


def test_an_error_other_than_a_lock_is_not_retried(tmp_path: Path) -> None:
    connection = Connection(tmp_path / "s.sqlite", failures=0)
    connection.cursor_.real.close()
    with pytest.raises(sqlite3.ProgrammingError):
        database._sqlite_pragmas(connection, None)
