"""Patients of a fake clinic as the worklist read model loads them."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from adapter.canonical import TaskType
from adapter.domain import PersonId, Record
from adapter.followup.facts import FocusIndex, PatientFacts
from adapter.followup.load import LoadedPatient
from adapter.followup.rules import PlanFocus, decide
from adapter.followup.rulesfile import load_rules
from adapter.followup.state import PatientState, states_from_records
from adapter.followup.tasks import new_task, read_task
from adapter.mapping import load_mappings, map_record
from adapter.settings import REPO_ROOT
from adapter.worklist import PlanLabel, TaskItem, WorklistRow
from tests.support.records import prea60_row

RULES = load_rules(REPO_ROOT / "mappings" / "rules.json")


MAPPINGS = load_mappings(REPO_ROOT / "mappings")


AS_OF = date(2024, 12, 20)


RUN = date(2024, 12, 16)


LATE = PersonId("193803139801")  # patientkontrakt from 2024-09-02: follow-up due 2024-12-01


NO_PLAN = PersonId("193106199817")


LOW = PersonId("192902279807")


Json = dict[str, Any]


def listed(person: PersonId, risk: str) -> Record:
    return replace(prea60_row(person, run=RUN), risk_percent=Decimal(risk))


def engine_tasks(state: PatientState, reference: str, focus: str) -> list[Any]:
    """The Tasks the follow-up engine would write for the state, as read back from a server."""
    tasks = []
    for number, decision in enumerate(decide(state, AS_OF, RULES), start=1):
        resource = new_task(
            decision, patient_reference=reference, focus_reference=focus, authored_on=AS_OF
        )
        tasks.append(read_task(resource | {"id": f"{reference[8:]}{number}"}))
    return tasks


def loaded_patients(records: list[Record], plan_key: str = "cosmic:VP-1001") -> list[LoadedPatient]:
    patients = []
    for number, state in enumerate(states_from_records(records).values(), start=1):
        reference = f"Patient/{number}"
        focus = FocusIndex()
        focus.add(PlanFocus(plan_key), "CarePlan/pk")
        tasks = engine_tasks(state, reference, "CarePlan/pk")
        patients.append(LoadedPatient(reference, PatientFacts(state, tasks, focus)))
    return patients


def with_ids(records: list[Record]) -> list[Json]:
    """Mapped resources as a server holds them: ids given, conditional references resolved."""
    mapped = [m for record in records for m in map_record(record, MAPPINGS)]
    ids = {m.match_url: f"{m.resource_type}/{n}" for n, m in enumerate(mapped, start=1)}

    def resolve(value: Any) -> Any:
        if isinstance(value, dict):
            out = {k: resolve(v) for k, v in value.items()}
            if out.get("reference") in ids:
                out["reference"] = ids[out["reference"]]
            return out
        if isinstance(value, list):
            return [resolve(v) for v in value]
        return value

    return [
        resolve(m.resource) | {"id": ids[m.match_url].split("/")[1]}
        for m in mapped
        if m.resource_type != "Patient"
    ]


def listed_row(
    patient_id: str,
    digits: str,
    *,
    due: date | None,
    overdue: bool = False,
    name: str | None = "",
    risk: str | None = "23.5",
    plan: PlanLabel = PlanLabel.PATIENTKONTRAKT,
    tasks: int = 1,
    unit: str = "SE2321000057-E00000000981",
) -> WorklistRow:
    """A row of a unit's worklist as the read model holds it: `tasks` open follow-up Tasks due
    `due`; the name "Patient <id>" unless given (None: no name on the server)."""
    task = TaskItem(
        id=f"t{patient_id}",
        task_type=TaskType.FOLLOW_UP,
        title="Följ upp planen",
        description=None,
        status="requested",
        due=due,
        overdue=overdue,
        unit_hsa_id=unit,
        patient_id=patient_id,
    )
    return WorklistRow(
        patient_id=patient_id,
        person=PersonId(digits),
        name=f"Patient {patient_id}" if name == "" else name,
        in_risk_group=True,
        risk_percent=None if risk is None else Decimal(risk),
        run_date=None if risk is None else AS_OF - timedelta(days=3),
        plan=plan,
        quality=None,
        last_follow_up=None,
        last_follow_up_what=None,
        follow_up_due=due,
        due=due,
        tasks=(task,) * tasks,
        overdue=overdue,
    )
