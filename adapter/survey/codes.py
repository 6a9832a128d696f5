"""One-time survey codes, in the adapter's own SQLite file (data dir, like the audit log).

A code is 10 characters from an alphabet without look-alikes (no 0/O, 1/I/L), about 49 bits:
short enough to type from paper, far too many to guess within the answer page's rate limit.
Only a SHA-256 of the code is stored. Two tables, on purpose:

- `survey_code`: what the answer page may see: the unit's HSA-id, the meeting date, when the
  code was issued and answered. No patient, no plan: an answer cannot be traced to a person
  from what the answer page reads or writes.
- `survey_handout`: which plan (and Patient id) a code was handed out for, read only by the
  staff pages (the worklist, patient page and Min plan show "kod utlämnad / besvarad"). The
  answer (on the FHIR server) holds neither the code nor the plan.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
LENGTH = 10
_SCHEMA = """
CREATE TABLE IF NOT EXISTS survey_code (
    code_hash TEXT PRIMARY KEY,
    unit TEXT NOT NULL,
    meeting_date TEXT NOT NULL,
    issued_at TEXT NOT NULL,
    answered INTEGER NOT NULL DEFAULT 0  -- a flag, no time: a time could be matched to the
                                         -- answer's lastUpdated on the FHIR server
);
CREATE TABLE IF NOT EXISTS survey_handout (
    code_hash TEXT PRIMARY KEY REFERENCES survey_code (code_hash),
    plan_id TEXT NOT NULL,
    patient_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS survey_handout_plan ON survey_handout (plan_id);
CREATE INDEX IF NOT EXISTS survey_handout_patient ON survey_handout (patient_id);
"""


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def normalize(typed: str) -> str:
    """What a patient types: case, spaces and dashes do not matter."""
    return "".join(c for c in typed.upper() if c not in " -\t")


def shown(code: str) -> str:
    """The code as printed: two groups of five."""
    plain = normalize(code)
    return f"{plain[:5]}-{plain[5:]}"


def _hash(code: str) -> str:
    return hashlib.sha256(normalize(code).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class CodeInfo:
    """All the answer page learns from a code."""

    unit_hsa_id: str
    meeting_date: date
    answered: bool


@dataclass(frozen=True, slots=True)
class HandoutStatus:
    """For the staff pages: codes handed out for a plan, and how many were answered."""

    issued: int
    answered: int
    last_issued: date | None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class CodeStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path, timeout=30)) as db, db:
            yield db

    def issue(self, unit_hsa_id: str, meeting_date: date, plan_id: str, patient_id: str) -> str:
        """A new code for the meeting of `plan_id` (CarePlan id) of `patient_id` (Patient id);
        the plain code is returned, never stored."""
        code = new_code()
        digest = _hash(code)
        with self._lock, self._connect() as db:
            db.execute(
                "INSERT INTO survey_code (code_hash, unit, meeting_date, issued_at) "
                "VALUES (?, ?, ?, ?)",
                (digest, unit_hsa_id, meeting_date.isoformat(), _now()),
            )
            db.execute(
                "INSERT INTO survey_handout (code_hash, plan_id, patient_id) VALUES (?, ?, ?)",
                (digest, plan_id, patient_id),
            )
        return code

    def lookup(self, code: str) -> CodeInfo | None:
        with self._connect() as db:
            row = db.execute(
                "SELECT unit, meeting_date, answered FROM survey_code WHERE code_hash = ?",
                (_hash(code),),
            ).fetchone()
        if row is None:
            return None
        return CodeInfo(row[0], date.fromisoformat(row[1]), bool(row[2]))

    def claim(self, code: str) -> CodeInfo | None:
        """Mark the code answered; None if unknown or already used (one answer per code, even
        for two answers sent at the same moment)."""
        with self._lock, self._connect() as db:
            updated = db.execute(
                "UPDATE survey_code SET answered = 1 WHERE code_hash = ? AND answered = 0",
                (_hash(code),),
            ).rowcount
        return self.lookup(code) if updated == 1 else None

    def release(self, code: str) -> None:
        """Undo a claim whose answer could not be stored, so the patient can try again."""
        with self._lock, self._connect() as db:
            db.execute("UPDATE survey_code SET answered = 0 WHERE code_hash = ?", (_hash(code),))

    def belongs_to(self, code: str, plan_id: str) -> bool:
        with self._connect() as db:
            row = db.execute(
                "SELECT 1 FROM survey_handout WHERE code_hash = ? AND plan_id = ?",
                (_hash(code), plan_id),
            ).fetchone()
        return row is not None

    def status(self, plan_ids: Iterable[str]) -> dict[str, HandoutStatus]:
        """Per CarePlan id: the codes handed out and answered."""
        return self._status("plan_id", plan_ids)

    def status_by_patient(self, patient_ids: Iterable[str]) -> dict[str, HandoutStatus]:
        """Per Patient id (the worklist's rows): the codes handed out and answered."""
        return self._status("patient_id", patient_ids)

    def _status(self, column: str, keys: Iterable[str]) -> dict[str, HandoutStatus]:
        ids = sorted(set(keys))
        if not ids or column not in ("plan_id", "patient_id"):
            return {}
        marks = ", ".join("?" for _ in ids)
        with self._connect() as db:
            rows = db.execute(
                f"SELECT h.{column}, count(*), sum(c.answered), max(c.issued_at) "  # noqa: S608
                "FROM survey_handout h JOIN survey_code c USING (code_hash) "
                f"WHERE h.{column} IN ({marks}) GROUP BY h.{column}",
                ids,
            ).fetchall()
        return {
            r[0]: HandoutStatus(int(r[1]), int(r[2]), date.fromisoformat(r[3][:10])) for r in rows
        }

    def issued_count(self, unit_hsa_id: str, start: date, end: date) -> int:
        """Codes issued for the unit's meetings in [start, end]."""
        with self._connect() as db:
            row = db.execute(
                "SELECT count(*) FROM survey_code WHERE unit = ? AND meeting_date BETWEEN ? AND ?",
                (unit_hsa_id, start.isoformat(), end.isoformat()),
            ).fetchone()
        return int(row[0])
