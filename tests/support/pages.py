"""The HTML pages over a fake clinic, and a logged-in browser session."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from fastapi.testclient import TestClient

from adapter.api import create_app
from adapter.api.apikeys import ApiKeyEntry, add_entry, new_key
from adapter.api.clinic import Clinic, TaskContext, TaskDone
from adapter.api.principal import Role
from adapter.audit import AuditKind, AuditLog
from adapter.followup.facts import Translations
from adapter.followup.load import LoadedPatient
from adapter.followup.service import FollowupService
from adapter.prea60.guard import RunCheck
from adapter.settings import Settings
from adapter.worklist import PatientView, WorklistRow, patient_view, worklist_rows
from adapter.worklist.rows import logical_id
from tests.support.records import UNIT, patientkontrakt
from tests.support.worklist import (
    AS_OF,
    LATE,
    LOW,
    MAPPINGS,
    NO_PLAN,
    RULES,
    listed,
    loaded_patients,
)

OTHER_UNIT = "SE2321000057-E00000000002"


NAMES = {"1": "Åsa Lind", "2": "Gösta Öberg", "3": "Maja Ek"}


class FakeClinic(Clinic):
    """The routes' Clinic on patients in memory; `mark_done` only records its calls."""

    def __init__(self, settings: Settings, patients: list[LoadedPatient]) -> None:
        super().__init__(settings, FollowupService(settings))
        self.patients = patients
        self.done: list[tuple[str, date, str | None, str]] = []
        self.pending: dict[str, list[RunCheck]] = {}  # unconfirmed Prea60 runs per unit

    def today(self) -> date:
        return AS_OF

    def worklist(self, unit_hsa_id: str, as_of: date) -> list[WorklistRow]:
        return worklist_rows(self.patients, unit_hsa_id, as_of, RULES, NAMES)

    def unconfirmed_runs(self, unit_hsa_id: str) -> list[RunCheck]:
        return self.pending.get(unit_hsa_id, [])

    def patient(self, patient_id: str, as_of: date) -> tuple[PatientView, LoadedPatient] | None:
        found = next((p for p in self.patients if logical_id(p.reference) == patient_id), None)
        if found is None:
            return None
        translations = Translations.from_mappings(MAPPINGS)
        view = patient_view(found, [], as_of, RULES, translations, name=NAMES[patient_id])
        return view, found

    def open_task(self, task_id: str) -> TaskContext | None:
        for patient in self.patients:
            for task in patient.tasks:
                if task.id == task_id:
                    return TaskContext(task, patient)
        return None

    def mark_done(
        self, context: TaskContext, *, day: date, contact_type: str | None, by: str
    ) -> TaskDone:
        act = self.fulfilling_event(context, day)  # the real rule: which act, or TaskNotDoable
        self.done.append((context.task.id, day, contact_type, by))
        return TaskDone(context.task.id, "completed", "Uppföljd", act.code, day, None)


@dataclass
class Service:
    app: object
    client: TestClient
    clinic: FakeClinic
    audit: AuditLog
    keys: dict[Role | str, str] = field(default_factory=dict)

    def as_(self, who: Role | str, **headers: str) -> dict[str, str]:
        return {"X-API-Key": self.keys[who], **headers}

    def reads(self) -> list[object]:
        return [e for e in self.audit.search(limit=1000) if e.kind == AuditKind.PATIENT_READ]


def make_pages_service(tmp_path: Path) -> Service:
    """The app over a fake clinic of four listed patients, with a key per role."""
    keys_file = tmp_path / "keys.json"
    keys: dict[Role | str, str] = {}
    for who, role, units in (
        (Role.VARDSAMORDNARE, Role.VARDSAMORDNARE, [UNIT]),
        ("other", Role.VARDSAMORDNARE, [OTHER_UNIT]),
        (Role.INTEGRATION, Role.INTEGRATION, []),
        (Role.ADMIN, Role.ADMIN, []),
    ):
        keys[who] = new_key()
        add_entry(keys_file, keys[who], ApiKeyEntry(name=f"key-{who}", role=role, units=units))
    settings = Settings(data_dir=tmp_path / "data", api_keys_file=keys_file, scheduler=False)
    audit = AuditLog(tmp_path / "audit.sqlite")
    app = create_app(settings, audit_log=audit, readiness_checks={})
    patients = loaded_patients(
        [listed(LATE, "23.5"), patientkontrakt(LATE), listed(NO_PLAN, "31.0"), listed(LOW, "5.0")]
    )
    clinic = FakeClinic(settings, patients)
    app.state.clinic = clinic
    client = TestClient(app, raise_server_exceptions=False)
    return Service(app, client, clinic, audit, keys)


def task_id(service: Service, patient: int, kind: str) -> str:
    tasks = service.clinic.patients[patient - 1].tasks
    return next(t.id for t in tasks if t.task_type.value == kind)


def login(service: Service, who: Role | str, purpose: str = "uppfoljning") -> TestClient:
    answer = service.client.post(
        "/ui/login",
        data={"api_key": service.keys[who], "purpose": purpose},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return service.client
