"""Domain records: what the sources say, before any FHIR.

Readers turn files and API bodies into these; mapping and rules take them as input.
Immutable, typed, free of I/O. A personnummer is wrapped in `PersonId`, whose str/repr
are masked so it cannot leak into a log line by accident.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from adapter import canonical


class IdKind(StrEnum):
    PERSONNUMMER = "personnummer"
    SAMORDNINGSNUMMER = "samordningsnummer"


@dataclass(frozen=True, slots=True)
class PersonId:
    """A validated Swedish personal identity number, normalised to 12 digits (YYYYMMDDNNNN)."""

    digits: str
    kind: IdKind = IdKind.PERSONNUMMER

    @property
    def system(self) -> str:
        if self.kind is IdKind.SAMORDNINGSNUMMER:
            return canonical.SAMORDNINGSNUMMER
        return canonical.PERSONNUMMER

    @property
    def masked(self) -> str:
        from adapter.personnummer import mask  # imported here: personnummer imports this module

        return mask(self.digits)

    def __str__(self) -> str:  # never the full number in logs or f-strings
        return self.masked

    def __repr__(self) -> str:
        return f"PersonId({self.masked})"


@dataclass(frozen=True, slots=True)
class SourceRef:
    """Where a record came from: file (or API request) and 1-based line."""

    file: str
    line: int


@dataclass(frozen=True, slots=True)
class RowError:
    """A rejected input row. `reason` is user-facing (Swedish); `value` is already masked."""

    file: str
    line: int
    column: str | None
    reason: str
    value: str | None = None
    duplicate_of: int | None = None  # set: no rejection, the row repeats this line (skipped)


# --- Prea60 ---


@dataclass(frozen=True, slots=True)
class Prea60Row:
    patient: PersonId
    family_name: str
    given_name: str
    risk_percent: Decimal  # 0–100
    run_date: date
    unit_hsa_id: str
    unit_name: str
    gp_hsa_id: str | None
    source: SourceRef


# --- Plans (SIP and patientkontrakt) ---


class PlanKind(StrEnum):
    SIP = "sip"
    PATIENTKONTRAKT = "patientkontrakt"


class PlanStatus(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    COMPLETED = "completed"
    REVOKED = "revoked"

    @property
    def swedish(self) -> str:
        """The word users know: utkast, aktiv, avslutad, återkallad."""
        return _PLAN_STATUS_SWEDISH[self]


_PLAN_STATUS_SWEDISH = {
    PlanStatus.DRAFT: "utkast",
    PlanStatus.ACTIVE: "aktiv",
    PlanStatus.COMPLETED: "avslutad",
    PlanStatus.REVOKED: "återkallad",
}


class Huvudman(StrEnum):
    REGION = "region"
    KOMMUN = "kommun"


class Responsible(StrEnum):
    REGION = "region"
    KOMMUN = "kommun"
    PATIENT = "patient"
    NARSTAENDE = "narstaende"


class ExpressedBy(StrEnum):
    PATIENT = "patient"
    CARE = "care"


@dataclass(frozen=True, slots=True)
class PlanGoal:
    id: str
    text: str
    expressed_by: ExpressedBy
    due: date | None = None


@dataclass(frozen=True, slots=True)
class PlanAction:
    text: str
    responsible: Responsible
    role: str | None = None  # a ParticipantRole value
    goal: str | None = None  # PlanGoal.id within the same plan


class ParticipantRole(StrEnum):
    FAST_VARDKONTAKT = "fast-vardkontakt"
    FAST_LAKARKONTAKT = "fast-lakarkontakt"
    FAST_OMSORGSKONTAKT = "fast-omsorgskontakt"
    SAMORDNINGSANSVARIG = "samordningsansvarig"
    VARDSAMORDNARE = "vardsamordnare"
    DISTRIKTSSKOTERSKA = "distriktsskoterska"
    BISTANDSHANDLAGGARE = "bistandshandlaggare"
    HEMTJANST = "hemtjanst"
    HEMSJUKVARD = "hemsjukvard"
    REHAB = "rehab"
    PATIENT = "patient"
    NARSTAENDE = "narstaende"


@dataclass(frozen=True, slots=True)
class Participant:
    role: str  # a ParticipantRole value (see formats README)
    name: str | None = None
    hsa_id: str | None = None
    organization: str | None = None
    huvudman: Huvudman | None = None


@dataclass(frozen=True, slots=True)
class Appointment:
    date: date
    with_whom: str


class Consent(StrEnum):
    JA = "ja"
    NEJ = "nej"
    OKANT = "okant"


@dataclass(frozen=True, slots=True)
class Plan:
    source_system: str
    plan_id: str
    version: int
    kind: PlanKind
    patient: PersonId
    status: PlanStatus
    title: str
    created: date
    updated: date
    unit_hsa_id: str
    source: SourceRef
    valid_until: date | None = None
    kva: str | None = None  # SIP only: AU124 | AU125
    what_matters: str | None = None
    overall_responsibility: Huvudman | None = None  # SIP only
    goals: tuple[PlanGoal, ...] = ()
    actions: tuple[PlanAction, ...] = ()
    participants: tuple[Participant, ...] = ()
    next_follow_up: date | None = None
    agreed_appointments: tuple[Appointment, ...] = ()
    consent: Consent | None = None  # the patient's consent to the plan, when the source says
    # May the patient see the plan (e.g. in 1177)? None: the source does not say.
    approved_for_patient: bool | None = None

    @property
    def key(self) -> str:
        """Identity of the plan across versions: `source_system:plan_id`."""
        return f"{self.source_system}:{self.plan_id}"

    def participant(self, role: str) -> Participant | None:
        return next((p for p in self.participants if p.role == role), None)


# --- Events (KVÅ and local codes) ---


class EventCode(StrEnum):
    AU124 = "AU124"  # SIP established
    AU125 = "AU125"  # SIP established at discharge
    AW010 = "AW010"  # SIP followed up
    UPPF = "UPPF"  # follow-up of a vårdplan/patientkontrakt (local)
    SIPKALL = "SIPKALL"  # SIP meeting called (local)

    @property
    def is_kva(self) -> bool:
        return self in (EventCode.AU124, EventCode.AU125, EventCode.AW010)

    @property
    def is_follow_up(self) -> bool:
        return self in (EventCode.AW010, EventCode.UPPF)


@dataclass(frozen=True, slots=True)
class Event:
    patient: PersonId
    date: date
    code: EventCode
    unit_hsa_id: str
    source: SourceRef
    contact_type: str | None = None  # besök | telefon | video | hembesök
    plan_ref: str | None = None  # "source_system:plan_id"


# --- Discharge notices (utskrivningsklar) ---


@dataclass(frozen=True, slots=True)
class DischargeNotice:
    message_id: str
    patient: PersonId
    ready_at: datetime  # timezone-aware, Europe/Stockholm
    hospital: str
    ward: str
    needs_kommun: bool
    needs_region: bool
    consent: Consent
    source: SourceRef

    @property
    def needs_sip(self) -> bool:
        """Support from both huvudmän: the fast vårdkontakt must call the patient to a SIP."""
        return self.needs_kommun and self.needs_region


Record = Prea60Row | Plan | Event | DischargeNotice


@dataclass(slots=True)
class ReadSummary:
    """Counts of one read; errors kept in order for the report."""

    file: str
    rows: int = 0
    accepted: int = 0
    errors: list[RowError] = field(default_factory=list)
    encoding: str | None = None  # utf-8, utf-8-sig or cp1252; None: not a text file read

    @property
    def duplicates(self) -> int:
        """Rows skipped as repeats of an earlier row (reported in `errors`, nothing lost)."""
        return sum(1 for e in self.errors if e.duplicate_of is not None)
