"""`POST /tasks/{task_id}/done`: the vårdsamordnare has done what a Task asks.

Records the act that fulfils it (AW010 for a SIP, UPPF for a patientkontrakt, SIPKALL for a call
to SIP) as a Procedure through the ingest pipeline, then the follow-up engine completes the Task
(see adapter/api/clinic.py). A Task to establish or renew a plan answers 409: it closes when the
plan arrives. Same access rules and audit as reading the patient."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, status

from adapter.api.access import PatientAccess, PatientAccessDep
from adapter.api.clinic import Clinic, EventNotRecorded, TaskDone, TaskNotDoable
from adapter.api.deps import (
    NOT_FOUND_TASK,
    ClinicDep,
    TaskPath,
    audit_unit,
    fhir_errors,
    may_see,
)
from adapter.api.models import TaskDoneIn, TaskDoneOut

router = APIRouter(prefix="/tasks", tags=["uppgifter"])


@router.post(
    "/{task_id}/done",
    summary="Markera en uppgift som klar (registrerar uppföljningen)",
    responses={
        status.HTTP_404_NOT_FOUND: {"description": "Ingen sådan uppgift (som du får se)"},
        status.HTTP_409_CONFLICT: {"description": "Uppgiften kan inte markeras som klar här"},
    },
)
def task_done(
    task_id: TaskPath,
    access: PatientAccessDep,
    clinic: ClinicDep,
    body: Annotated[TaskDoneIn | None, Body()] = None,
) -> TaskDoneOut:
    body = body or TaskDoneIn()
    done = complete_task(clinic, access, task_id, body.performed, body.contact_type)
    return TaskDoneOut.of(done)


def complete_task(
    clinic: Clinic,
    access: PatientAccess,
    task_id: str,
    performed: date | None = None,
    contact_type: str | None = None,
) -> TaskDone:
    """Mark the Task done for the caller (the API route and the page's button); HTTPException
    with a Swedish reason when it cannot be."""
    today = clinic.today()
    day = performed or today
    if day > today:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, detail="Datumet får inte ligga i framtiden."
        )
    with fhir_errors():
        context = clinic.open_task(task_id)
    if context is None or not may_see(access.principal, context.units):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=NOT_FOUND_TASK)
    access.record(
        [context.patient.person], resource="Task", unit=audit_unit(access.principal, context.units)
    )
    try:
        with fhir_errors():
            return clinic.mark_done(
                context, day=day, contact_type=contact_type, by=access.principal.name
            )
    except TaskNotDoable as error:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=error.reason) from None
    except EventNotRecorded as error:
        report = error.report
        if report.pending or report.stopped:  # the server did not answer: it waits in the outbox
            code = status.HTTP_503_SERVICE_UNAVAILABLE
        elif report.dead:  # the server refused the Procedure
            code = status.HTTP_502_BAD_GATEWAY
        else:  # the row itself was refused (e.g. a unit the events format cannot carry)
            code = status.HTTP_409_CONFLICT
        raise HTTPException(code, detail=error.reason) from None
