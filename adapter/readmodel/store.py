"""The worklist read model's tables (SQLAlchemy Core, on the adapter's state database: SQLite by
default, the shared PostgreSQL when SIP_FHIR_DATABASE_URL is set). No FHIR here: rows in, rows
out, and the journal of the adapter's writes.

- `worklist_row`: one row per (unit, patient) as the worklist shows it (`WorklistRow` as JSON);
- `worklist_unit`: per unit, the day its rows are computed for, `seq` (the last journal entry
  they reflect) and the unit's Prea60 runs held back for a person to confirm (the page's banner);
- `worklist_write`: the journal: every write the adapter makes appends what it touched (a
  patient by Patient reference or personnummer, a unit, or `ALL_UNITS`); `seq` only grows.

A unit's rows are current when no journal entry after its `seq` concerns it. Concurrent
refreshes (threads, processes) are settled optimistically: rows are replaced in the same
transaction that moves the unit's `seq` on from the value the refresh started from; if another
refresh moved it first, this one's rows are thrown away (`Conflict`) and it looks again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from pydantic import TypeAdapter
from sqlalchemy import (
    Column,
    Connection,
    Date,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from adapter.database import open_tables
from adapter.prea60.guard import RunCheck
from adapter.worklist.rows import WorklistRow, row_order

ALL_UNITS = "*"  # a journal entry that concerns every unit (a region scan)
_IN_CHUNK = 500  # ids per IN (...) list

metadata = MetaData()
rows_table = Table(
    "worklist_row",
    metadata,
    Column("unit", String(64), primary_key=True),
    Column("patient_id", String(64), primary_key=True),
    Column("body", Text, nullable=False),
)
units_table = Table(
    "worklist_unit",
    metadata,
    Column("unit", String(64), primary_key=True),
    Column("as_of", Date, nullable=False),
    Column("seq", Integer, nullable=False),
    Column("built_at", DateTime(timezone=True), nullable=False),
    Column("unconfirmed", Text, nullable=False, server_default="[]"),
)
journal = Table(
    "worklist_write",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("unit", String(64), index=True),
    Column("patient_ref", String(80)),
    Column("person", String(12)),  # personnummer digits: the import knows no Patient id
    Column("at", DateTime(timezone=True), nullable=False),
    sqlite_autoincrement=True,  # seq never reused after a prune (PostgreSQL: an identity)
)

_ROW = TypeAdapter(WorklistRow)
_ROWS = TypeAdapter(list[WorklistRow])
_RUNS = TypeAdapter(list[RunCheck])


class Conflict(Exception):
    """Another refresh of the unit got there first."""


@dataclass(frozen=True, slots=True)
class UnitState:
    as_of: date
    seq: int
    built_at: datetime | None = field(default=None, compare=False)  # changes with every write


@dataclass(frozen=True, slots=True)
class Writes:
    """What the journal holds for a unit after its `seq`."""

    whole_unit: bool  # the unit (or every unit) was written: rebuild it
    patient_refs: frozenset[str]
    persons: frozenset[str]

    def __bool__(self) -> bool:
        return self.whole_unit or bool(self.patient_refs or self.persons)


@dataclass(frozen=True, slots=True)
class Touched:
    """What one write touched, for the journal."""

    units: frozenset[str] = frozenset()
    patient_refs: frozenset[str] = frozenset()
    persons: frozenset[str] = frozenset()  # personnummer digits

    def __bool__(self) -> bool:
        return bool(self.units or self.patient_refs or self.persons)


def _now() -> datetime:
    return datetime.now(UTC)


class WorklistStore:
    """The tables on one database URL (created on first use)."""

    def __init__(self, url: str) -> None:
        # open_tables: file mode 0600, and one process creates the tables when several start
        self.engine: Engine = open_tables(url, metadata)

    # --- the journal ---

    def record(self, touched: Touched) -> int:
        """Append what a write touched; the new last `seq` (0: nothing to record)."""
        entries = [{"unit": u} for u in sorted(touched.units)]
        entries += [{"patient_ref": r} for r in sorted(touched.patient_refs)]
        entries += [{"person": p} for p in sorted(touched.persons)]
        if not entries:
            return self.last_seq()
        at = _now()
        with self.engine.begin() as connection:
            for entry in entries:  # one by one: autoincrement order is the write order
                connection.execute(
                    insert(journal).values(
                        unit=entry.get("unit"),
                        patient_ref=entry.get("patient_ref"),
                        person=entry.get("person"),
                        at=at,
                    )
                )
        return self.last_seq()

    def last_seq(self) -> int:
        with self.engine.connect() as connection:
            return int(connection.execute(select(func.max(journal.c.seq))).scalar() or 0)

    def journalled_between(self, after: int, until: int) -> int:
        """How many journal entries have a seq in (after, until]."""
        query = select(func.count()).where(journal.c.seq > after, journal.c.seq <= until)
        with self.engine.connect() as connection:
            return int(connection.execute(query).scalar() or 0)

    def writes_since(self, unit: str, seq: int, until: int) -> Writes:
        """The journal's entries in (seq, until] that concern `unit`."""
        query = select(journal.c.unit, journal.c.patient_ref, journal.c.person).where(
            journal.c.seq > seq,
            journal.c.seq <= until,
            or_(journal.c.unit.is_(None), journal.c.unit.in_([unit, ALL_UNITS])),
        )
        with self.engine.connect() as connection:
            found = connection.execute(query).all()
        return Writes(
            whole_unit=any(e.unit is not None for e in found),
            patient_refs=frozenset(e.patient_ref for e in found if e.patient_ref),
            persons=frozenset(e.person for e in found if e.person),
        )

    # --- units and rows ---

    def unit_state(self, unit: str) -> UnitState | None:
        query = select(units_table.c.as_of, units_table.c.seq, units_table.c.built_at).where(
            units_table.c.unit == unit
        )
        with self.engine.connect() as connection:
            found = connection.execute(query).first()
        return UnitState(found.as_of, found.seq, found.built_at) if found else None

    def units(self) -> list[str]:
        """The units the read model holds (someone has looked at, or a scan built)."""
        with self.engine.connect() as connection:
            return sorted(connection.execute(select(units_table.c.unit)).scalars())

    def rows(self, unit: str) -> list[WorklistRow]:
        """The unit's rows, in the worklist's order."""
        query = select(rows_table.c.body).where(rows_table.c.unit == unit)
        with self.engine.connect() as connection:
            bodies = connection.execute(query).scalars().all()
        return sorted(_ROWS.validate_json("[" + ",".join(bodies) + "]"), key=row_order)

    def unconfirmed(self, unit: str) -> list[RunCheck]:
        """The unit's Prea60 runs held back, as of its last rebuild."""
        query = select(units_table.c.unconfirmed).where(units_table.c.unit == unit)
        with self.engine.connect() as connection:
            found = connection.execute(query).scalar()
        return _RUNS.validate_json(found) if found else []

    def replace_unit(
        self,
        unit: str,
        rows: Sequence[WorklistRow],
        *,
        as_of: date,
        seq: int,
        since: UnitState | None,
        unconfirmed: Sequence[RunCheck] = (),
    ) -> None:
        """The unit's rows replaced by `rows` as of `seq`; Conflict if its state is no longer
        `since` (another refresh)."""
        runs = _RUNS.dump_json(list(unconfirmed)).decode()
        with self.engine.begin() as connection:
            self._move(connection, unit, as_of=as_of, seq=seq, since=since, unconfirmed=runs)
            connection.execute(delete(rows_table).where(rows_table.c.unit == unit))
            self._insert(connection, unit, rows)

    def replace_patients(
        self,
        unit: str,
        patient_ids: Iterable[str],
        rows: Sequence[WorklistRow],
        *,
        seq: int,
        since: UnitState,
    ) -> None:
        """The rows of `patient_ids` replaced by `rows` (those still on the list) as of `seq`."""
        ids = sorted(set(patient_ids) | {r.patient_id for r in rows})
        with self.engine.begin() as connection:
            self._move(connection, unit, as_of=since.as_of, seq=seq, since=since)
            for start in range(0, len(ids), 500):
                connection.execute(
                    delete(rows_table).where(
                        rows_table.c.unit == unit,
                        rows_table.c.patient_id.in_(ids[start : start + 500]),
                    )
                )
            self._insert(connection, unit, rows)

    def prune(self) -> None:
        """Journal entries every unit has seen are no longer needed."""
        with self.engine.begin() as connection:
            oldest = connection.execute(select(func.min(units_table.c.seq))).scalar()
            newest = connection.execute(select(func.max(journal.c.seq))).scalar()
            if oldest is not None and newest is not None:  # the newest stays: it is `last_seq`
                connection.execute(delete(journal).where(journal.c.seq <= min(oldest, newest - 1)))

    @staticmethod
    def _insert(connection: Connection, unit: str, rows: Sequence[WorklistRow]) -> None:
        if rows:
            connection.execute(
                insert(rows_table),
                [
                    {"unit": unit, "patient_id": r.patient_id, "body": _ROW.dump_json(r).decode()}
                    for r in rows
                ],
            )

    @staticmethod
    def _move(
        connection: Connection,
        unit: str,
        *,
        as_of: date,
        seq: int,
        since: UnitState | None,
        unconfirmed: str | None = None,
    ) -> None:
        """Set the unit's state, first statement of the transaction (it locks the unit's row)."""
        values: dict[str, object] = {"as_of": as_of, "seq": seq, "built_at": _now()}
        if unconfirmed is not None:
            values["unconfirmed"] = unconfirmed
        if since is None:
            try:
                connection.execute(insert(units_table).values(unit=unit, **values))
            except IntegrityError:  # the transaction is rolled back as the error leaves it
                raise Conflict(unit) from None
            return
        moved = connection.execute(
            update(units_table)
            .where(
                units_table.c.unit == unit,
                units_table.c.seq == since.seq,
                units_table.c.as_of == since.as_of,
            )
            .values(**values)
        )
        if moved.rowcount != 1:
            raise Conflict(unit)
