"""The JSON answers of the worklist, patient, task, ingest and indicator routes (pydantic).

Patients are named in URLs and answers by `patient_id`, the Patient's logical id on the FHIR
server: an opaque reference. The personnummer appears in an answer's body only (audited), never
in a URL. Percentages are numbers (89.47), dates ISO 8601.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from adapter.api.clinic import Indicators, TaskDone
from adapter.api.ingestion import IngestReport
from adapter.canonical import TaskType
from adapter.domain import PersonId, RowError
from adapter.indicators.compute import Scoring
from adapter.indicators.measures import title
from adapter.indicators.present import scores_json
from adapter.indicators.trend import COUNTS, SHARES, UnitTrend
from adapter.personnummer import mask, written
from adapter.quality import PlanQuality
from adapter.sources.events import CONTACT_TYPES
from adapter.worklist import PatientView, TaskItem, WorklistRow
from adapter.worklist.patient import HistoryItem, PlanElsewhere, PlanView

ContactType = Literal[CONTACT_TYPES]  # type: ignore[valid-type]  # the events format's list


def formatted(person: PersonId) -> str:
    """ÅÅÅÅMMDD-NNNN."""
    return written(person.digits)


def _number(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


class TaskOut(BaseModel):
    id: str = Field(description="Task.id: används i POST /tasks/{id}/done")
    type: TaskType
    title: str
    description: str | None
    status: str
    due: date | None = Field(description="Sista dag")
    overdue: bool
    unit: str | None
    patient_id: str | None

    @classmethod
    def of(cls, task: TaskItem) -> TaskOut:
        return cls(
            id=task.id,
            type=task.task_type,
            title=task.title,
            description=task.description,
            status=task.status,
            due=task.due,
            overdue=task.overdue,
            unit=task.unit_hsa_id,
            patient_id=task.patient_id,
        )


class UnmetCriterionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str = Field(description="Kriteriets id (mappings/plan-quality.json)")
    label: str = Field(description="Vad planen saknar, i ord")


class PlanQualityOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    score: float = Field(description="Kvalitetspoäng 0–1")
    unmet: list[UnmetCriterionOut] = Field(description="Kriterier planen inte uppfyller")
    version: str = Field(description="Kriteriefilens version")

    @classmethod
    def of(cls, quality: PlanQuality) -> PlanQualityOut:
        return cls.model_validate(quality, from_attributes=True)


class WorklistRowOut(BaseModel):
    patient_id: str
    name: str | None
    personnummer: str
    in_risk_group: bool
    risk_percent: float | None
    run_date: date | None = Field(description="Prea60-körningen risken kommer från")
    plan: Literal["SIP", "patientkontrakt", "ingen"]
    plan_quality: PlanQualityOut | None = Field(
        description="Kvaliteten i enhetens egen aktiva plan (SIP före patientkontrakt)"
    )
    last_follow_up: date | None
    last_follow_up_what: str | None
    follow_up_due: date | None
    due: date | None = Field(description="Närmast förfallande: öppna uppgifter och uppföljning")
    overdue: bool
    open_tasks: list[TaskOut]

    @classmethod
    def of(cls, row: WorklistRow) -> WorklistRowOut:
        return cls(
            patient_id=row.patient_id,
            name=row.name,
            personnummer=formatted(row.person),
            in_risk_group=row.in_risk_group,
            risk_percent=_number(row.risk_percent),
            run_date=row.run_date,
            plan=row.plan.value,
            plan_quality=None if row.quality is None else PlanQualityOut.of(row.quality),
            last_follow_up=row.last_follow_up,
            last_follow_up_what=row.last_follow_up_what,
            follow_up_due=row.follow_up_due,
            due=row.due,
            overdue=row.overdue,
            open_tasks=[TaskOut.of(t) for t in row.tasks],
        )


class WorklistOut(BaseModel):
    unit: str
    as_of: date
    patients: int
    overdue: int
    open_tasks: int
    rows: list[WorklistRowOut]


def worklist_out(unit: str, as_of: date, rows: list[WorklistRow]) -> WorklistOut:
    return WorklistOut(
        unit=unit,
        as_of=as_of,
        patients=len(rows),
        overdue=sum(1 for r in rows if r.overdue),
        open_tasks=sum(len(r.tasks) for r in rows),
        rows=[WorklistRowOut.of(r) for r in rows],
    )


# --- one patient ---


class GoalOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    text: str
    by_patient: bool = Field(description="Patientens eget mål")
    due: date | None


class ActionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    text: str
    responsible: str | None = Field(description="region, kommun, patient eller narstaende")
    responsible_label: str | None
    performer: str | None
    role: str | None
    goal: str | None


class AppointmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    day: date
    text: str


class ParticipantOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    role: str | None
    name: str | None
    organization: str | None
    huvudman: str | None


class PlanOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

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

    @classmethod
    def of(cls, plan: PlanView) -> PlanOut:
        return cls.model_validate(plan, from_attributes=True)  # the same fields, nested


class PlanElsewhereOut(BaseModel):
    """Another unit's plan: that it exists, never its content (inner confidentiality)."""

    model_config = ConfigDict(from_attributes=True)

    unit: str = Field(validation_alias="unit_hsa_id", description="Enheten vars plan det är")
    kind: Literal["SIP", "patientkontrakt"]
    status: str
    active: bool
    created: date
    updated: date
    valid_until: date | None

    @classmethod
    def of(cls, plan: PlanElsewhere) -> PlanElsewhereOut:
        return cls.model_validate(plan, from_attributes=True)


class HistoryOut(BaseModel):
    day: date
    code: str = Field(description="AU124, AU125, AW010, UPPF, SIPKALL, eller plan")
    text: str
    unit: str | None
    plan_key: str | None

    @classmethod
    def of(cls, item: HistoryItem) -> HistoryOut:
        return cls(
            day=item.day,
            code=item.code,
            text=item.text,
            unit=item.unit_hsa_id,
            plan_key=item.plan_key,
        )


class RiskOut(BaseModel):
    unit: str
    run_date: date
    risk_percent: float
    in_risk_group: bool


class PatientOut(BaseModel):
    patient_id: str
    name: str | None
    personnummer: str
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
    open_tasks: list[TaskOut]

    @classmethod
    def of(cls, view: PatientView) -> PatientOut:
        return cls(
            patient_id=view.patient_id,
            name=view.name,
            personnummer=formatted(view.person),
            units=list(view.units),
            risks=[
                RiskOut(
                    unit=r.unit_hsa_id,
                    run_date=r.run_date,
                    risk_percent=float(r.risk_percent),
                    in_risk_group=r.in_risk_group,
                )
                for r in view.risks
            ],
            last_follow_up=view.last_follow_up,
            follow_up_due=view.follow_up_due,
            plans=[PlanOut.of(p) for p in view.plans],
            plans_elsewhere=[PlanElsewhereOut.of(p) for p in view.plans_elsewhere],
            history=[HistoryOut.of(h) for h in view.history],
            open_tasks=[TaskOut.of(t) for t in view.tasks],
        )


class PatientPlansOut(BaseModel):
    patient_id: str
    plans: list[PlanOut]
    plans_elsewhere: list[PlanElsewhereOut]

    @classmethod
    def of(cls, view: PatientView) -> PatientPlansOut:
        return cls(
            patient_id=view.patient_id,
            plans=[PlanOut.of(p) for p in view.plans],
            plans_elsewhere=[PlanElsewhereOut.of(p) for p in view.plans_elsewhere],
        )


class PatientHistoryOut(BaseModel):
    patient_id: str
    last_follow_up: date | None
    follow_up_due: date | None
    history: list[HistoryOut]


class PatientTasksOut(BaseModel):
    patient_id: str
    open_tasks: list[TaskOut]


# --- marking a Task done ---


class TaskDoneIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    performed: date | None = Field(
        default=None, description="Dagen åtgärden gjordes (standard: i dag); inte i framtiden"
    )
    contact_type: ContactType | None = Field(default=None, description="Kontakttyp")


class TaskDoneOut(BaseModel):
    task_id: str
    status: str = Field(description="Uppgiftens status efteråt (completed)")
    reason: str | None
    event_code: str = Field(description="Registrerad åtgärd: AW010, UPPF eller SIPKALL")
    event_date: date
    next_follow_up_due: date | None

    @classmethod
    def of(cls, done: TaskDone) -> TaskDoneOut:
        return cls(
            task_id=done.task_id,
            status=done.status,
            reason=done.reason,
            event_code=done.event_code.value,
            event_date=done.event_date,
            next_follow_up_due=done.next_due,
        )


# --- ingest ---


class RowErrorOut(BaseModel):
    line: int = Field(description="Rad (CSV, JSON Lines) eller plats i JSON-listan, från 1")
    column: str | None = Field(description="Kolumnens rubrik (CSV) eller fältets JSON-sökväg")
    reason: str
    value: str | None = Field(description="Värdet, med personnummer maskerat")
    duplicate_of: int | None = Field(description="Satt: raden upprepar den raden och hoppades över")

    @classmethod
    def of(cls, error: RowError) -> RowErrorOut:
        return cls(  # masked by the readers, and again here whatever put it there
            line=error.line,
            column=None if error.column is None else mask(error.column),
            reason=mask(error.reason),
            value=None if error.value is None else mask(error.value),
            duplicate_of=error.duplicate_of,
        )


IngestState = Literal["klar", "väntar", "oläsbar", "avvisad"]


class IngestOut(BaseModel):
    source: str
    kind: str
    status: IngestState = Field(
        description="klar: allt skrivet; väntar: sparat i utkorgen, skickas när FHIR-servern "
        "svarar (sip-fhir sync); oläsbar: inget kunde läsas; avvisad: varje rad avvisades "
        "(inget skrevs)"
    )
    encoding: str | None = Field(
        default=None, description="Teckenkodningen filen lästes med: utf-8, utf-8-sig, cp1252"
    )
    rows: int
    accepted: int
    rejected: int
    duplicates: int
    errors: list[RowErrorOut]
    errors_total: int
    created: int
    updated: int
    unchanged: int
    refused: int = Field(description="Resurser som FHIR-servern avvisade (sip-fhir sync --failed)")
    pending: int
    message: str | None
    unconfirmed_runs: list[str] = Field(
        default_factory=list,
        description="Prea60-körningar som lagrades som obekräftade och varför; de används inte "
        "förrän en vårdsamordnare för enheten eller en administratör bekräftat dem",
    )

    @classmethod
    def of(cls, report: IngestReport) -> IngestOut:
        state: IngestState = "klar"
        if report.unreadable:
            state = "oläsbar"
        elif report.all_rejected:
            state = "avvisad"
        elif report.pending or report.stopped:
            state = "väntar"
        return cls(
            source=report.source,
            kind=report.kind.value,
            status=state,
            encoding=report.encoding,
            rows=report.rows,
            accepted=report.accepted,
            rejected=report.rejected,
            duplicates=report.duplicates,
            errors=[RowErrorOut.of(e) for e in report.errors],
            errors_total=report.errors_total,
            created=report.created,
            updated=report.updated,
            unchanged=report.unchanged,
            refused=report.dead,
            pending=report.pending,
            message=report.stopped,
            unconfirmed_runs=report.unconfirmed_runs,
        )


# --- indicators ---


class IndicatorOut(BaseModel):
    id: str
    title: str
    scoring: Literal["proportion", "cohort"]
    numerator: int
    denominator: int | None
    value: float | None = Field(description="Andel i procent, eller antal")
    region_target: float | None
    unit_target: float | None
    scores: dict[str, Any] | None = Field(
        default=None,
        description="plan-quality: tröskel, medel, min, median, max (0–1) och planer per intervall",
    )


class IndicatorsOut(BaseModel):
    unit: str
    as_of: date
    period_start: date
    period_end: date
    indicators: list[IndicatorOut]

    @classmethod
    def of(cls, found: Indicators) -> IndicatorsOut:
        return cls(
            unit=found.unit_hsa_id,
            as_of=found.period.end,
            period_start=found.period.start,
            period_end=found.period.end,
            indicators=[
                IndicatorOut(
                    id=r.indicator.value,
                    title=title(r.indicator),
                    scoring="cohort" if r.scoring is Scoring.COHORT else "proportion",
                    numerator=r.numerator,
                    denominator=r.denominator,
                    value=_number(r.value),
                    region_target=_number(r.region_target_percent),
                    unit_target=_number(r.unit_target_percent),
                    scores=None if r.scores is None else scores_json(r.scores),
                )
                for r in found.results
            ],
        )


class TrendPointOut(BaseModel):
    day: date
    value: float | None
    numerator: int | None
    denominator: int | None


class TrendSeriesOut(BaseModel):
    id: str
    title: str
    scoring: Literal["proportion", "cohort"]
    region_target: float | None
    unit_target: float | None
    points: list[TrendPointOut]


class TrendOut(BaseModel):
    unit: str
    days: list[date]
    series: list[TrendSeriesOut]

    @classmethod
    def of(cls, unit: str, trend: UnitTrend | None) -> TrendOut:
        if trend is None:
            return cls(unit=unit, days=[], series=[])
        series = []
        for indicator in (*SHARES, *COUNTS):
            stored = trend.reports.get(indicator, {})
            targets = trend.targets.get(indicator)
            points = []
            for day in trend.days:
                report = stored.get(day)
                points.append(
                    TrendPointOut(
                        day=day,
                        value=_number(report.value) if report else None,
                        numerator=report.numerator if report else None,
                        denominator=report.denominator if report else None,
                    )
                )
            series.append(
                TrendSeriesOut(
                    id=indicator.value,
                    title=title(indicator),
                    scoring="proportion" if indicator in SHARES else "cohort",
                    region_target=_number(targets.region_percent) if targets else None,
                    unit_target=_number(targets.unit_percent) if targets else None,
                    points=points,
                )
            )
        return cls(unit=unit, days=list(trend.days), series=series)
