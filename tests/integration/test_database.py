"""adapter/database.py: one engine per URL, SQLite by default, PostgreSQL when set."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import text

from adapter import database
from adapter.settings import Settings


def test_without_a_database_url_each_store_keeps_its_sqlite_file(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    url = database.state_url(settings, "outbox.sqlite3")
    assert url == f"sqlite:///{tmp_path / 'data' / 'outbox.sqlite3'}"
    assert not database.is_postgres(url)
    with database.engine(url).connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    assert (tmp_path / "data" / "outbox.sqlite3").is_file()
    assert database.engine(url) is database.engine(url)


def test_with_a_database_url_every_store_shares_the_postgres_database(
    tmp_path: Path, database_url: str
) -> None:
    settings = Settings(data_dir=tmp_path, database_url=SecretStr(database_url))
    outbox, audit = (database.state_url(settings, f) for f in ("outbox.sqlite3", "audit.sqlite"))
    assert outbox == audit == database_url
    assert database.is_postgres(outbox)
    with database.engine(outbox).begin() as connection:
        connection.execute(text("CREATE TABLE probe (n integer)"))
        connection.execute(text("INSERT INTO probe VALUES (7)"))
    with database.engine(audit).connect() as connection:
        assert connection.execute(text("SELECT n FROM probe")).scalar() == 7
    assert not list(tmp_path.iterdir())  # nothing written to the data directory
    database.dispose_all()
