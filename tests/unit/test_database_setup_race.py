"""Several processes opening one new SQLite store at once (two `sip-fhir import` on one data
dir): each creates the tables it misses, and the loser of the race must not fail with "table
... already exists" (CI met it: the second import died on the read model's tables)."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from multiprocessing.synchronize import Event
from pathlib import Path

from sqlalchemy import Column, MetaData, Table, Text, inspect

from adapter import database
from adapter.readmodel.store import WorklistStore

TABLES = 30


def _metadata() -> MetaData:
    metadata = MetaData()
    for n in range(TABLES):
        Table(f"t{n}", metadata, Column("k", Text, primary_key=True), Column("v", Text))
    return metadata


def _open(url: str, start: Event) -> None:
    start.wait()
    database.open_tables(url, _metadata())


def _open_worklists(url: str, start: Event) -> None:
    start.wait()
    WorklistStore(url)


def _race(tmp_path: Path, target: Callable[[str, Event], None]) -> list[str]:
    """Six processes open the same new file at once, three times; the tables of the last file."""
    context = multiprocessing.get_context("spawn")
    url = ""
    for round_ in range(3):
        url = database.sqlite_url(tmp_path / f"store-{round_}.sqlite")
        start = context.Event()
        workers = [context.Process(target=target, args=(url, start)) for _ in range(6)]
        for worker in workers:
            worker.start()
        start.set()
        for worker in workers:
            worker.join(120)
        assert [w.exitcode for w in workers] == [0] * len(workers), round_
    return inspect(database.engine(url)).get_table_names()


def test_processes_opening_one_new_store_at_once_all_succeed(tmp_path: Path) -> None:
    assert len(_race(tmp_path, _open)) == TABLES


def test_processes_opening_the_worklist_read_model_at_once_all_succeed(tmp_path: Path) -> None:
    assert "worklist_row" in _race(tmp_path, _open_worklists)
