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
from datetime import date
from typing import TypeVar

from fastapi import APIRouter

from adapter.api.access import PatientAccess, PatientAccessDep
from adapter.api.clinic import Clinic
from adapter.api.deps import AsOfQuery, ClinicDep, PatientPath
from adapter.api.models import PatientHistoryOut, PatientOut, PatientPlansOut, PatientTasksOut
from adapter.api.services import read_patient
from adapter.worklist import PatientView

router = APIRouter(prefix="/patients", tags=["patient"])
T = TypeVar("T")


def _answer(
    patient_id: str,
    access: PatientAccess,
    clinic: Clinic,
    as_of: date | None,
    resource: str,
    shape: Callable[[PatientView], T],
) -> T:
    return shape(read_patient(clinic, access, patient_id, as_of or clinic.today(), resource))


@router.get("/{patient_id}", summary="Patientens planer, uppföljningar och öppna uppgifter")
def patient(
    patient_id: PatientPath, access: PatientAccessDep, clinic: ClinicDep, as_of: AsOfQuery = None
) -> PatientOut:
    return _answer(patient_id, access, clinic, as_of, "Patient", PatientOut.of)


@router.get("/{patient_id}/plans", summary="Patientens SIP och patientkontrakt")
def patient_plans(
    patient_id: PatientPath, access: PatientAccessDep, clinic: ClinicDep, as_of: AsOfQuery = None
) -> PatientPlansOut:
    return _answer(patient_id, access, clinic, as_of, "CarePlan", PatientPlansOut.of)


@router.get("/{patient_id}/followups", summary="Patientens uppföljningshistorik")
def patient_followups(
    patient_id: PatientPath, access: PatientAccessDep, clinic: ClinicDep, as_of: AsOfQuery = None
) -> PatientHistoryOut:
    return _answer(patient_id, access, clinic, as_of, "Procedure", PatientHistoryOut.of)


@router.get("/{patient_id}/tasks", summary="Patientens öppna uppföljningsuppgifter")
def patient_tasks(
    patient_id: PatientPath, access: PatientAccessDep, clinic: ClinicDep, as_of: AsOfQuery = None
) -> PatientTasksOut:
    return _answer(patient_id, access, clinic, as_of, "Task", PatientTasksOut.of)
