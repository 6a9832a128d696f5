"""`POST /tasks/{task_id}/done`: the vårdsamordnare has done what a Task asks.

Records the act that fulfils it (AW010 for a SIP, UPPF for a patientkontrakt, SIPKALL for a call
to SIP) as a Procedure through the ingest pipeline, then the follow-up engine completes the Task
(see adapter/api/clinic.py). A Task to establish or renew a plan answers 409: it closes when the
plan arrives. Same access rules and audit as reading the patient."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, status

from adapter.api.access import PatientAccessDep
from adapter.api.deps import ClinicDep, TaskPath
from adapter.api.models import TaskDoneIn, TaskDoneOut
from adapter.api.services import complete_task

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
