"""Read models of the vårdsamordnare's views, pure: what the loader read → what a page shows.

    rows = worklist_rows(loaded, unit, as_of, rules, names)   # the unit's worklist (rows.py)
    view = patient_view(loaded_patient, resources, as_of, rules, patient_id=...)  # patient.py

No I/O and no clock: the API's service (adapter/api/clinic.py) reads the FHIR server and passes
`as_of`. Texts are Swedish (labels.py); identifiers in the models are the FHIR logical ids on the
server, which are what the adapter's own URLs carry (never a personnummer).
"""

from adapter.worklist.patient import (
    ActionView,
    AppointmentView,
    GoalView,
    HistoryItem,
    ParticipantView,
    PatientView,
    PlanView,
    RiskView,
    patient_name,
    patient_units,
    patient_view,
)
from adapter.worklist.rows import PlanLabel, TaskItem, WorklistRow, task_item, worklist_rows

__all__ = [
    "ActionView",
    "AppointmentView",
    "GoalView",
    "HistoryItem",
    "ParticipantView",
    "PatientView",
    "PlanLabel",
    "PlanView",
    "RiskView",
    "TaskItem",
    "WorklistRow",
    "patient_name",
    "patient_units",
    "patient_view",
    "task_item",
    "worklist_rows",
]
