"""The worklist read model's tables (adapter/readmodel/store.py) on SQLite and on PostgreSQL:
rows round-trip in the worklist's order, the journal says which writes concern a unit, a
refresh that lost to another is refused, and pruning never lets a write's number be reused."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from adapter import database
from adapter.readmodel.store import ALL_UNITS, Conflict, Touched, UnitState, WorklistStore
from tests.support.worklist import listed_row

UNIT = "SE2321000057-E00000000981"
OTHER = "SE2321000057-E00000000982"
DAY = date(2026, 3, 2)


LATE = listed_row("11", "193102149824", due=DAY - timedelta(days=5), overdue=True, unit=UNIT)
SOON = listed_row("12", "193803139801", due=DAY + timedelta(days=5), unit=UNIT)
LATER = listed_row("13", "193106199817", due=DAY + timedelta(days=30), unit=UNIT)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> WorklistStore:
    if request.param == "sqlite":
        return WorklistStore(database.sqlite_url(tmp_path / "readmodel.sqlite"))
    url: str = request.getfixturevalue("database_url")
    request.addfinalizer(database.dispose_all)
    return WorklistStore(url)


def test_rows_come_back_as_written_in_the_worklists_order(store: WorklistStore) -> None:
    store.replace_unit(UNIT, [LATER, SOON, LATE], as_of=DAY, seq=0, since=None)
    assert store.rows(UNIT) == [LATE, SOON, LATER]  # overdue first, then by due
    assert store.rows(OTHER) == []
    assert store.unit_state(UNIT) == UnitState(DAY, 0)
    assert store.units() == [UNIT]


def test_the_journal_says_which_writes_concern_a_unit(store: WorklistStore) -> None:
    start = store.last_seq()
    store.record(Touched(units=frozenset({OTHER})))
    store.record(
        Touched(patient_refs=frozenset({"Patient/11"}), persons=frozenset({"193803139801"}))
    )
    last = store.last_seq()
    writes = store.writes_since(UNIT, start, last)
    assert not writes.whole_unit  # another unit's scan is not this unit's
    assert writes.patient_refs == {"Patient/11"} and writes.persons == {"193803139801"}
    store.record(Touched(units=frozenset({ALL_UNITS})))
    assert store.writes_since(UNIT, last, store.last_seq()).whole_unit
    assert not store.writes_since(UNIT, store.last_seq(), store.last_seq())


def test_a_refresh_that_lost_to_another_changes_nothing(store: WorklistStore) -> None:
    store.replace_unit(UNIT, [LATE, SOON], as_of=DAY, seq=1, since=None)
    with pytest.raises(Conflict):  # another process built the unit first
        store.replace_unit(UNIT, [LATER], as_of=DAY, seq=1, since=None)
    state = UnitState(DAY, 1)
    store.replace_patients(UNIT, {"12"}, [], seq=2, since=state)  # 12 left the list
    with pytest.raises(Conflict):  # started from seq 1, but the unit is at 2 now
        store.replace_patients(UNIT, {"11"}, [], seq=3, since=state)
    assert store.rows(UNIT) == [LATE]
    assert store.unit_state(UNIT) == UnitState(DAY, 2)


def test_pruning_never_lets_a_writes_number_be_reused(store: WorklistStore) -> None:
    store.record(Touched(units=frozenset({UNIT})))
    seq = store.record(Touched(units=frozenset({UNIT})))
    store.replace_unit(UNIT, [LATE], as_of=DAY, seq=seq, since=None)
    store.prune()
    newer = store.record(Touched(patient_refs=frozenset({"Patient/11"})))
    assert newer > seq  # else the unit would count the new write as seen
    assert store.writes_since(UNIT, seq, newer).patient_refs == {"Patient/11"}
