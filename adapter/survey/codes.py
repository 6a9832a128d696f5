"""One-time survey codes, where the adapter keeps its state (adapter/database.py): the shared
database when SIP_FHIR_DATABASE_URL is set, else <data_dir>/survey.sqlite (owner-only).

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
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import (
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    func,
    insert,
    select,
    update,
)

from adapter.database import open_tables, state_url, url_of
from adapter.settings import Settings

ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
LENGTH = 10
SQLITE_FILE = "survey.sqlite"
_METADATA = MetaData()
_CODE = Table(
    "survey_code",
    _METADATA,
    Column("code_hash", Text, primary_key=True),
    Column("unit", Text, nullable=False),
    Column("meeting_date", Text, nullable=False),
    Column("issued_at", Text, nullable=False),
    # A flag, no time: a time could be matched to the answer's lastUpdated on the FHIR server.
    Column("answered", Integer, nullable=False, server_default="0"),
)
_HANDOUT = Table(
    "survey_handout",
    _METADATA,
    Column("code_hash", Text, ForeignKey("survey_code.code_hash"), primary_key=True),
    Column("plan_id", Text, nullable=False),
    Column("patient_id", Text, nullable=False),
    Index("survey_handout_plan", "plan_id"),
    Index("survey_handout_patient", "patient_id"),
)


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
    """The codes: a SQLite file (a Path) or a database URL (a str)."""

    def __init__(self, target: Path | str) -> None:
        self.url = url_of(target)
        self._engine = open_tables(self.url, _METADATA)

    @classmethod
    def for_settings(cls, settings: Settings) -> CodeStore:
        return cls(state_url(settings, SQLITE_FILE))

    def issue(self, unit_hsa_id: str, meeting_date: date, plan_id: str, patient_id: str) -> str:
        """A new code for the meeting of `plan_id` (CarePlan id) of `patient_id` (Patient id);
        the plain code is returned, never stored."""
        code = new_code()
        digest = _hash(code)
        with self._engine.begin() as db:
            db.execute(
                insert(_CODE).values(
                    code_hash=digest,
                    unit=unit_hsa_id,
                    meeting_date=meeting_date.isoformat(),
                    issued_at=_now(),
                )
            )
            db.execute(
                insert(_HANDOUT).values(code_hash=digest, plan_id=plan_id, patient_id=patient_id)
            )
        return code

    def lookup(self, code: str) -> CodeInfo | None:
        c = _CODE.c
        query = select(c.unit, c.meeting_date, c.answered).where(c.code_hash == _hash(code))
        with self._engine.connect() as db:
            row = db.execute(query).first()
        if row is None:
            return None
        return CodeInfo(row[0], date.fromisoformat(row[1]), bool(row[2]))

    def claim(self, code: str) -> CodeInfo | None:
        """Mark the code answered; None if unknown or already used (one answer per code, even
        for two answers sent at the same moment, by two processes too: the row's update is
        atomic)."""
        c = _CODE.c
        with self._engine.begin() as db:
            updated = db.execute(
                update(_CODE).where(c.code_hash == _hash(code), c.answered == 0).values(answered=1)
            ).rowcount
        return self.lookup(code) if updated == 1 else None

    def release(self, code: str) -> None:
        """Undo a claim whose answer could not be stored, so the patient can try again."""
        with self._engine.begin() as db:
            db.execute(update(_CODE).where(_CODE.c.code_hash == _hash(code)).values(answered=0))

    def belongs_to(self, code: str, plan_id: str) -> bool:
        h = _HANDOUT.c
        query = select(h.code_hash).where(h.code_hash == _hash(code), h.plan_id == plan_id)
        with self._engine.connect() as db:
            return db.execute(query).first() is not None

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
        key = _HANDOUT.c[column]
        query = (
            select(key, func.count(), func.sum(_CODE.c.answered), func.max(_CODE.c.issued_at))
            .select_from(_HANDOUT.join(_CODE, _HANDOUT.c.code_hash == _CODE.c.code_hash))
            .where(key.in_(ids))
            .group_by(key)
        )
        with self._engine.connect() as db:
            rows = db.execute(query).all()
        return {
            r[0]: HandoutStatus(int(r[1]), int(r[2]), date.fromisoformat(r[3][:10])) for r in rows
        }

    def issued_count(self, unit_hsa_id: str, start: date, end: date) -> int:
        """Codes issued for the unit's meetings in [start, end]."""
        c = _CODE.c
        query = select(func.count()).where(
            c.unit == unit_hsa_id, c.meeting_date.between(start.isoformat(), end.isoformat())
        )
        with self._engine.connect() as db:
            return int(db.execute(query).scalar_one())
