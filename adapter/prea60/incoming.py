"""The Prea60 runs of the files about to be imported, as the run guard needs them: the rows of
each run, and who is in its risk group.

The risk groups wait in a temporary SQLite file, not in memory, and are read one run at a time:
a region's first import of a year of weekly runs holds some 700 000 group members at 100 000
patients, which in memory made the import's peak grow with the list (tests/benchmarks/README.md).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import date
from decimal import Decimal

from adapter.domain import IdKind, PersonId, Prea60Row

INSERT_BATCH = 5_000


class IncomingRuns:
    """Filled once from the rows; then asked per run. Close it (or use `with`) when done."""

    def __init__(self) -> None:
        # "": a private database in a temporary file; SQLite keeps only its page cache (2 MB by
        # default) in memory. The file holds personnummer: on Linux SQLite creates it mode 0600
        # and unlinks it at once (checked in /proc/self/fd), so no path leads to it and nothing
        # is left after a crash.
        self._db = sqlite3.connect("")
        self._db.execute("CREATE TABLE member (unit TEXT, day TEXT, digits TEXT, kind TEXT)")
        self.rows: dict[tuple[str, date], int] = {}

    def __enter__(self) -> IncomingRuns:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def add(self, rows: Iterable[Prea60Row], threshold: Decimal) -> None:
        """Count every row per run; keep those at or above `threshold` as the run's group."""
        batch: list[tuple[str, str, str, str]] = []
        for row in rows:
            key = (row.unit_hsa_id, row.run_date)
            self.rows[key] = self.rows.get(key, 0) + 1
            if row.risk_percent >= threshold:
                patient = row.patient
                batch.append((key[0], key[1].isoformat(), patient.digits, patient.kind.value))
                if len(batch) >= INSERT_BATCH:
                    self._insert(batch)
        self._insert(batch)
        self._db.execute("CREATE INDEX member_run ON member (unit, day)")

    def _insert(self, batch: list[tuple[str, str, str, str]]) -> None:
        self._db.executemany("INSERT INTO member VALUES (?, ?, ?, ?)", batch)
        batch.clear()

    def group(self, unit_hsa_id: str, day: date) -> set[PersonId]:
        """The run's risk group (a person listed twice in a run counts once)."""
        found = self._db.execute(
            "SELECT DISTINCT digits, kind FROM member WHERE unit = ? AND day = ?",
            (unit_hsa_id, day.isoformat()),
        )
        return {PersonId(digits, IdKind(kind)) for digits, kind in found}

    def __bool__(self) -> bool:
        return bool(self.rows)
