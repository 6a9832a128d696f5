"""One patient, by the Patient's logical id on the FHIR server (an opaque reference: the
personnummer never appears in the adapter's URLs): the plans with goals and who does what, the
follow-up history and the open Tasks.

A vårdsamordnare sees the patients of the units granted (the patient is on a unit's Prea60 list,
has a plan of it, or a Task of it); an admin every patient. A patient outside one's units
answers 404 like one that does not exist, so the id reveals nothing. Of a patient one may see,
only what belongs to one's units is shown: another unit's plan as a summary without content,
its Tasks and history not at all (inner confidentiality: adapter/worklist/scope.py). Each read
is audited with the caller's unit and what was shown."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from fastapi import APIRouter

from adapter.api.access import PatientAccessDep
from adapter.api.deps import AsOfQuery, ClinicDep, PatientPath
from adapter.api.models import (
    PatientHistoryOut,
    PatientOut,
    PatientPlansOut,
    PatientTasksOut,
    ViewOut,
)
from adapter.api.services import read_patient

router = APIRouter(prefix="/patients", tags=["patient"])
T = TypeVar("T")


def _route(resource: str, answer: type[ViewOut]) -> Callable[..., ViewOut]:
    """A GET route answering `answer` of the patient's view, audited as a read of `resource`."""

    def route(
        patient_id: PatientPath,
        access: PatientAccessDep,
        clinic: ClinicDep,
        as_of: AsOfQuery = None,
    ) -> ViewOut:
        day = as_of or clinic.today()
        return answer.of(read_patient(clinic, access, patient_id, day, resource))

    return route


# (path step, summary, the resource read as audited, answer); the route's name (and so its
# OpenAPI operationId) is patient[_<step>].
for _step, _summary, _resource, _answer in (
    ("", "Patientens planer, uppföljningar och öppna uppgifter", "Patient", PatientOut),
    ("plans", "Patientens SIP och patientkontrakt", "CarePlan", PatientPlansOut),
    ("followups", "Patientens uppföljningshistorik", "Procedure", PatientHistoryOut),
    ("tasks", "Patientens öppna uppföljningsuppgifter", "Task", PatientTasksOut),
):
    router.add_api_route(
        f"/{{patient_id}}/{_step}".rstrip("/"),
        _route(_resource, _answer),
        methods=["GET"],
        name=f"patient_{_step}".rstrip("_"),
        summary=_summary,
        response_model=_answer,
    )
