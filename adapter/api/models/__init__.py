"""The JSON answers of the worklist, patient, task, ingest and indicator routes (pydantic), one
module per kind of answer; every name is importable from here.

Patients are named in URLs and answers by `patient_id`, the Patient's logical id on the FHIR
server: an opaque reference. The personnummer appears in an answer's body only (audited), never
in a URL. Percentages are numbers (89.47), dates ISO 8601. An answer that shows a read-model view
is read from the view's attributes (`ViewOut`), not copied field by field.
"""

from adapter.api.models.base import Personnummer, ViewOut, formatted, number
from adapter.api.models.indicators import (
    IndicatorOut,
    IndicatorsOut,
    TrendOut,
    TrendPointOut,
    TrendSeriesOut,
)
from adapter.api.models.ingest import IngestOut, IngestState, RowErrorOut
from adapter.api.models.tasks import ContactType, TaskDoneIn, TaskDoneOut
from adapter.api.models.worklist import (
    ActionOut,
    AppointmentOut,
    GoalOut,
    HistoryOut,
    ParticipantOut,
    PatientHistoryOut,
    PatientOut,
    PatientPlansOut,
    PatientTasksOut,
    PlanElsewhereOut,
    PlanOut,
    PlanQualityOut,
    RiskOut,
    TaskOut,
    UnmetCriterionOut,
    WorklistOut,
    WorklistRowOut,
    worklist_out,
)

__all__ = [
    "ActionOut",
    "AppointmentOut",
    "ContactType",
    "GoalOut",
    "HistoryOut",
    "IndicatorOut",
    "IndicatorsOut",
    "IngestOut",
    "IngestState",
    "ParticipantOut",
    "PatientHistoryOut",
    "PatientOut",
    "PatientPlansOut",
    "PatientTasksOut",
    "Personnummer",
    "PlanElsewhereOut",
    "PlanOut",
    "PlanQualityOut",
    "RiskOut",
    "RowErrorOut",
    "TaskDoneIn",
    "TaskDoneOut",
    "TaskOut",
    "TrendOut",
    "TrendPointOut",
    "TrendSeriesOut",
    "UnmetCriterionOut",
    "ViewOut",
    "WorklistOut",
    "WorklistRowOut",
    "formatted",
    "number",
    "worklist_out",
]
