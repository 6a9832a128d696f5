"""The worklist's read models without a server: rows from patients' states and the engine's
Tasks, a patient's plans from mapped resources, the act that marks a Task done, the events file
the act travels in, and JSON plan bodies as JSON Lines."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi import HTTPException

from adapter.api.clinic import Clinic, TaskContext, TaskNotDoable
from adapter.api.ingestion import Ingestion, events_csv
from adapter.api.routes.ingest import plans_as_lines
from adapter.canonical import TaskType
from adapter.domain import EventCode, PlanStatus
from adapter.followup.facts import Translations
from adapter.followup.load import LoadedPatient
from adapter.followup.rules import Outcome
from adapter.followup.service import FollowupService
from adapter.followup.state import UnitRun
from adapter.followup.tasks import closed_task, read_task
from adapter.settings import REPO_ROOT, Settings
from adapter.sources import SourceKind, read_file
from adapter.worklist import PlanLabel, patient_view, worklist_rows
from tests.support.records import UNIT, event, patientkontrakt, sip
from tests.support.worklist import (
    AS_OF,
    LATE,
    LOW,
    MAPPINGS,
    NO_PLAN,
    RULES,
    RUN,
    listed,
    loaded_patients,
    with_ids,
)

MAPPINGS_DIR = REPO_ROOT / "mappings"


@pytest.fixture
def patients() -> list[LoadedPatient]:
    return loaded_patients(
        [
            listed(LATE, "23.5"),
            patientkontrakt(LATE),
            listed(NO_PLAN, "31.0"),
            listed(LOW, "5.0"),
        ]
    )


def test_worklist_rows_show_risk_plan_follow_up_and_tasks_overdue_first(
    patients: list[LoadedPatient],
) -> None:
    names = {"1": "Åsa Lind", "2": "Gösta Öberg"}
    rows = worklist_rows(patients, UNIT, AS_OF, RULES, names)
    assert [r.person for r in rows] == [LATE, NO_PLAN]  # LOW is under the threshold
    late, no_plan = rows
    assert (late.name, late.patient_id, late.plan) == ("Åsa Lind", "1", PlanLabel.PATIENTKONTRAKT)
    assert (late.risk_percent, late.run_date) == (Decimal("23.5"), RUN)
    assert late.last_follow_up == date(2024, 9, 2) and late.last_follow_up_what == "ny plan"
    assert late.follow_up_due == date(2024, 12, 1) == late.due
    assert late.overdue and [t.task_type for t in late.tasks] == [TaskType.FOLLOW_UP]
    assert late.tasks[0].overdue and late.tasks[0].title == "Följ upp planen"
    assert no_plan.plan is PlanLabel.NONE and not no_plan.overdue
    assert [t.task_type for t in no_plan.tasks] == [TaskType.ESTABLISH_PLAN]
    assert no_plan.due == no_plan.tasks[0].due


def test_a_patient_who_left_the_risk_group_stays_while_a_task_of_the_unit_is_open() -> None:
    (patient,) = loaded_patients([listed(NO_PLAN, "31.0")])
    next_run = RUN + timedelta(days=7)  # a run without the patient: out of the group
    state = patient.facts.state
    patient.facts.state = replace(state, unit_runs=(*state.unit_runs, UnitRun(UNIT, next_run)))
    (row,) = worklist_rows([patient], UNIT, next_run, RULES)
    assert not row.in_risk_group and [t.task_type for t in row.tasks] == [TaskType.ESTABLISH_PLAN]
    assert row.follow_up_due is None


def test_a_task_of_another_unit_is_not_on_this_list(patients: list[LoadedPatient]) -> None:
    rows = worklist_rows(patients, "SE2321000057-E00000000009", AS_OF, RULES)
    assert rows == []


def test_the_patient_view_shows_goals_and_who_does_what(patients: list[LoadedPatient]) -> None:
    translations = Translations.from_mappings(MAPPINGS)
    resources = with_ids([patientkontrakt(LATE), sip(LATE, status=PlanStatus.COMPLETED)])
    view = patient_view(patients[0], resources, AS_OF, RULES, translations, name="Åsa Lind")
    assert [(p.kind, p.active) for p in view.plans] == [
        (PlanLabel.PATIENTKONTRAKT, True),
        (PlanLabel.SIP, False),  # completed: after the active one
    ]
    contract, done = view.plans
    assert contract.what_matters == "Att orka gå till affären själv"
    assert [(g.text, g.by_patient) for g in contract.goals] == [("Gå 20 minuter varje dag", True)]
    assert [
        (a.text, a.responsible, a.responsible_label, a.performer, a.goal) for a in contract.actions
    ] == [
        ("Väga mig varje måndag", "patient", "Patienten", "Patienten", "Gå 20 minuter varje dag"),
        ("Läkemedelsgenomgång", "region", "Regionen", "Per Holm", None),
    ]
    assert contract.actions[1].role == "fast läkarkontakt i primärvård"
    assert [(p.name, p.huvudman) for p in contract.participants] == [
        ("Karin Ek", "Regionen"),
        ("Per Holm", "Regionen"),
    ]
    assert [a.text for a in contract.appointments] == [
        "Nästa uppföljning",
        "Överenskommen tid med distriktssköterska",
    ]
    assert done.status == "avslutad" and done.overall_responsibility == "Kommunen"
    assert {a.responsible for a in done.actions} == {"kommun", "narstaende", "patient", "region"}
    assert view.units == (UNIT,) and view.history[-1].text == "Plan upprättad"


def clinic(tmp_path: Path) -> Clinic:
    settings = Settings(data_dir=tmp_path)
    return Clinic(settings, FollowupService(settings))


def context(patient: LoadedPatient, task_type: TaskType) -> TaskContext:
    task = next(t for t in patient.tasks if t.task_type is task_type)
    return TaskContext(task, patient)


def test_a_follow_up_is_fulfilled_by_uppf_for_a_patientkontrakt_and_aw010_for_a_sip(
    tmp_path: Path,
) -> None:
    (patient,) = loaded_patients([listed(LATE, "23.5"), patientkontrakt(LATE)])
    act = clinic(tmp_path).fulfilling_event(context(patient, TaskType.FOLLOW_UP), AS_OF)
    assert (act.code, act.plan_ref, act.date, act.patient) == (
        EventCode.UPPF,
        "cosmic:VP-1001",
        AS_OF,
        LATE,
    )
    assert act.unit_hsa_id == UNIT
    sip_patient = replace(sip(LATE), created=date(2024, 8, 1), updated=date(2024, 8, 1))
    (patient,) = loaded_patients([listed(LATE, "23.5"), sip_patient], sip_patient.key)
    act = clinic(tmp_path).fulfilling_event(context(patient, TaskType.FOLLOW_UP), AS_OF)
    assert (act.code, act.plan_ref) == (EventCode.AW010, sip_patient.key)


def test_plan_tasks_and_closed_tasks_cannot_be_marked_done(
    tmp_path: Path, patients: list[LoadedPatient]
) -> None:
    with pytest.raises(TaskNotDoable, match="planen"):
        clinic(tmp_path).fulfilling_event(context(patients[1], TaskType.ESTABLISH_PLAN), AS_OF)
    task = context(patients[0], TaskType.FOLLOW_UP).task
    closed = read_task(closed_task(task.resource, Outcome.COMPLETED, "klar") | {"id": task.id})
    assert closed is not None
    with pytest.raises(TaskNotDoable, match="redan avslutad"):
        clinic(tmp_path).fulfilling_event(TaskContext(closed, patients[0]), AS_OF)


def test_the_act_travels_as_an_events_file_the_reader_gives_back_unchanged(
    tmp_path: Path,
) -> None:
    act = event(LATE, code=EventCode.UPPF, contact="telefon", plan_ref="cosmic:VP-1001")
    body = events_csv([act], REPO_ROOT / "mappings")
    assert body.decode().splitlines()[0].startswith("Personnummer;Datum;Åtgärdskod")
    (back,) = list(
        read_file(
            io.BytesIO(body), SourceKind.EVENTS, name="x", mappings_dir=MAPPINGS_DIR
        ).records()
    )
    assert replace(back, source=act.source) == act
    ingestion = Ingestion(Settings(data_dir=tmp_path))
    with ingestion.spooled(io.BytesIO(body), SourceKind.EVENTS) as path:
        assert path.read_bytes() == body and oct(path.stat().st_mode & 0o777) == "0o600"
    assert not path.exists()  # the spool file is gone


def test_a_json_list_of_plans_becomes_json_lines_in_order() -> None:
    assert plans_as_lines(b'[{"a": 1}, {"b": "\xc3\xa5"}]') == '{"a": 1}\n{"b": "å"}\n'.encode()
    assert plans_as_lines(b'{"a": 1}') == b'{"a": 1}\n'
    with pytest.raises(HTTPException) as error:
        plans_as_lines(b"{not json")
    assert error.value.status_code == 422 and "Ogiltig JSON" in str(error.value.detail)


def test_before_a_task_opens_the_next_follow_up_is_not_on_the_list() -> None:
    recent = replace(patientkontrakt(LATE), created=AS_OF - timedelta(days=10))
    recent = replace(recent, updated=recent.created)
    (patient,) = loaded_patients([listed(LATE, "23.5"), recent])
    (row,) = worklist_rows([patient], UNIT, AS_OF, RULES)
    assert row.tasks == () and not row.overdue
    assert row.due == recent.created + timedelta(days=90)
