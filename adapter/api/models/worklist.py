"""The worklist's and one patient's answers: the read model's views (adapter/worklist) as JSON.

Patients are named by `patient_id`, the Patient's logical id on the FHIR server (an opaque
reference); the personnummer appears in an answer's body only (audited), never in a URL.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, Field

from adapter.api.models.base import Personnummer, ViewOut
from adapter.canonical import TaskType
from adapter.worklist.listing import WorklistPage


class TaskOut(ViewOut):
    id: str = Field(description="Task.id: används i POST /tasks/{id}/done")
    type: TaskType = Field(validation_alias="task_type")
    title: str
    description: str | None
    status: str
    due: date | None = Field(description="Sista dag")
    overdue: bool
    unit: str | None = Field(validation_alias="unit_hsa_id")
    patient_id: str | None


class UnmetCriterionOut(ViewOut):
    id: str = Field(description="Kriteriets id (mappings/plan-quality.json)")
    label: str = Field(description="Vad planen saknar, i ord")


class PlanQualityOut(ViewOut):
    score: float = Field(description="Kvalitetspoäng 0–1")
    unmet: list[UnmetCriterionOut] = Field(description="Kriterier planen inte uppfyller")
    version: str = Field(description="Kriteriefilens version")


class WorklistRowOut(ViewOut):
    patient_id: str
    name: str | None
    personnummer: Personnummer = Field(validation_alias="person")
    in_risk_group: bool
    risk_percent: float | None
    run_date: date | None = Field(description="Prea60-körningen risken kommer från")
    plan: Literal["SIP", "patientkontrakt", "ingen"]
    plan_quality: PlanQualityOut | None = Field(
        validation_alias="quality",
        description="Kvaliteten i enhetens egen aktiva plan (SIP före patientkontrakt)",
    )
    last_follow_up: date | None
    last_follow_up_what: str | None
    follow_up_due: date | None
    due: date | None = Field(description="Närmast förfallande: öppna uppgifter och uppföljning")
    overdue: bool
    open_tasks: list[TaskOut] = Field(validation_alias="tasks")


class WorklistOut(BaseModel):
    unit: str
    as_of: date
    patients: int = Field(description="Patienter på hela listan")
    overdue: int = Field(description="Av dem med något försenat")
    open_tasks: int = Field(description="Öppna uppgifter på hela listan")
    matching: int = Field(description="Patienter som filtren släpper igenom")
    page: int = Field(description="Sidan som visas, från 1")
    page_size: int
    pages: int = Field(description="Sidor med filtren (minst 1)")
    rows: list[WorklistRowOut] = Field(description="Sidans rader, i vald ordning")


def worklist_out(unit: str, as_of: date, found: WorklistPage) -> WorklistOut:
    return WorklistOut(
        unit=unit,
        as_of=as_of,
        patients=found.total,
        overdue=found.overdue,
        open_tasks=found.open_tasks,
        matching=found.matching,
        page=found.page,
        page_size=found.page_size,
        pages=found.pages,
        rows=[WorklistRowOut.of(r) for r in found.rows],
    )


# --- one patient ---


class GoalOut(ViewOut):
    text: str
    by_patient: bool = Field(description="Patientens eget mål")
    due: date | None


class ActionOut(ViewOut):
    text: str
    responsible: str | None = Field(description="region, kommun, patient eller narstaende")
    responsible_label: str | None
    performer: str | None
    role: str | None
    goal: str | None


class AppointmentOut(ViewOut):
    day: date
    text: str


class ParticipantOut(ViewOut):
    role: str | None
    name: str | None
    organization: str | None
    huvudman: str | None


class PlanOut(ViewOut):
    id: str
    key: str
    unit: str = Field(validation_alias="unit_hsa_id", description="Enheten vars plan det är")
    kind: Literal["SIP", "patientkontrakt"]
    status: str
    active: bool
    title: str | None
    created: date
    updated: date
    version: int
    valid_until: date | None
    what_matters: str | None
    overall_responsibility: str | None
    goals: list[GoalOut]
    actions: list[ActionOut]
    appointments: list[AppointmentOut]
    participants: list[ParticipantOut]
    quality: PlanQualityOut | None


class PlanElsewhereOut(ViewOut):
    """Another unit's plan: that it exists, never its content (inner confidentiality)."""

    unit: str = Field(validation_alias="unit_hsa_id", description="Enheten vars plan det är")
    kind: Literal["SIP", "patientkontrakt"]
    status: str
    active: bool
    created: date
    updated: date
    valid_until: date | None


class HistoryOut(ViewOut):
    day: date
    code: str = Field(description="AU124, AU125, AW010, UPPF, SIPKALL, eller plan")
    text: str
    unit: str | None = Field(validation_alias="unit_hsa_id")
    plan_key: str | None


class RiskOut(ViewOut):
    unit: str = Field(validation_alias="unit_hsa_id")
    run_date: date
    risk_percent: float
    in_risk_group: bool


class PatientOut(ViewOut):
    patient_id: str
    name: str | None
    personnummer: Personnummer = Field(validation_alias="person")
    units: list[str]
    risks: list[RiskOut]
    last_follow_up: date | None
    follow_up_due: date | None
    plans: list[PlanOut]
    plans_elsewhere: list[PlanElsewhereOut] = Field(
        description="Planer vid enheter du inte har behörighet till: bara enhet, slag, status "
        "och datum, inget innehåll"
    )
    history: list[HistoryOut]
    open_tasks: list[TaskOut] = Field(validation_alias="tasks")


class PatientPlansOut(ViewOut):
    patient_id: str
    plans: list[PlanOut]
    plans_elsewhere: list[PlanElsewhereOut]


class PatientHistoryOut(ViewOut):
    patient_id: str
    last_follow_up: date | None
    follow_up_due: date | None
    history: list[HistoryOut]


class PatientTasksOut(ViewOut):
    patient_id: str
    open_tasks: list[TaskOut] = Field(validation_alias="tasks")
