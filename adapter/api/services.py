"""What more than one route does (the service layer between the routes and the Clinic): one page
of a unit's worklist, read a patient for the caller, mark a Task done, draw a unit's trend
chart. The JSON routes and the pages both call these; a route imports them from here, never
from a sibling route."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path

from fastapi import HTTPException, status
from matplotlib import rc_context

from adapter.api.access import PatientAccess
from adapter.api.clinic import Clinic, EventNotRecorded, TaskDone, TaskNotDoable
from adapter.api.deps import (
    NOT_FOUND_PATIENT,
    NOT_FOUND_TASK,
    audit_unit,
    fhir_errors,
    may_see,
)
from adapter.indicators.chart import trend_figure
from adapter.indicators.trend import UnitTrend
from adapter.worklist import PatientView
from adapter.worklist.listing import WorklistPage, WorklistQuery, worklist_page
from adapter.worklist.scope import scoped_view, shown


def unit_worklist(
    clinic: Clinic, access: PatientAccess, unit: str, day: date, query: WorklistQuery
) -> WorklistPage:
    """The page of the unit's list `query` asks for (the caller's unit, or 403); the patients on
    the page, and only they, audited (one entry each, one transaction) before it returns."""
    access.ensure_unit(unit)
    with fhir_errors():
        found = worklist_page(clinic.worklist(unit, day), query)
    access.record([row.person for row in found.rows], resource="worklist", unit=unit)
    return found


def read_patient(
    clinic: Clinic, access: PatientAccess, patient_id: str, day: date, resource: str
) -> PatientView:
    """The view of a patient the caller may see (404 otherwise), audited before it returns."""
    with fhir_errors():
        found = clinic.patient(patient_id, day)
    view = found[0] if found else None
    if view is None or not may_see(access.principal, view.units):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=NOT_FOUND_PATIENT)
    visible = scoped_view(view, access.scope)
    unit = audit_unit(access.principal, view.units)
    access.record([view.person], resource=resource, unit=unit, detail=shown(visible))
    return visible


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


def trend_svg(trend: UnitTrend, profiles_dir: Path) -> bytes:
    """The trend chart (adapter.indicators.chart) as SVG, the same bytes for the same trend."""
    buffer = io.BytesIO()
    with rc_context({"svg.hashsalt": "sip-fhir"}):
        trend_figure(trend, profiles_dir).savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()
