"""Access to patient data and ingest, with the audit trail (PDL) written on the way.

A route that returns patient data takes `access: PatientAccessDep`, checks units with
`access.ensure_unit(unit)`, shows of a patient only what `access.scope` covers (inner
confidentiality: adapter/worklist/scope.py) and calls `access.record(patients, resource=...)`
BEFORE it returns; the entry is on disk when `record` returns. A patient-data route that
returns without recording is a programming error and answers 500 rather than an unlogged read.

An ingest route takes `ingest: IngestAccessDep` and calls `ingest.record(...)` with row counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, status

from adapter.api.principal import INGESTERS, PATIENT_DATA_READERS, Principal, Role
from adapter.api.security import CurrentPrincipal, ensure_unit_access, require_role
from adapter.audit import AuditEvent, AuditKind, AuditLog, Purpose
from adapter.domain import PersonId
from adapter.logs import get_logger
from adapter.worklist.scope import EVERY_UNIT, UnitScope

_log = get_logger("adapter.api.access")

READ_PURPOSES = (Purpose.VARD, Purpose.UPPFOLJNING, Purpose.KVALITET)
_PURPOSE_HELP = ", ".join(p.value for p in READ_PURPOSES[:-1]) + f" eller {READ_PURPOSES[-1]}"


def get_audit_log(request: Request) -> AuditLog:
    audit_log: AuditLog = request.app.state.audit_log
    return audit_log


def request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", "-"))


def route_template(request: Request) -> str:
    """The matched route's template ("/worklist/{unit}"), never the filled-in path."""
    route = request.scope.get("route")
    return str(getattr(route, "path", request.url.path))


@dataclass(slots=True)
class AuditTrail:
    """The audit log, bound to one request and its caller."""

    log: AuditLog
    principal: Principal
    request_id: str
    route: str

    def write(
        self,
        kind: AuditKind,
        resource: str,
        *,
        patients: Iterable[str | None] = (None,),
        purpose: Purpose | None = None,
        unit: str | None = None,
        detail: str | None = None,
    ) -> None:
        at = datetime.now(UTC)
        self.log.record(
            [
                AuditEvent(
                    at=at,
                    kind=kind,
                    actor=self.principal.name,
                    subject=self.principal.subject,
                    resource=resource,
                    route=self.route,
                    request_id=self.request_id,
                    purpose=purpose,
                    patient=patient,
                    unit=unit,
                    detail=detail,
                )
                for patient in dict.fromkeys(patients)  # each patient once, in order
            ]
        )


def audit_trail(request: Request, principal: CurrentPrincipal) -> AuditTrail:
    """The audit trail of this request and its (logged-in) caller."""
    return AuditTrail(
        get_audit_log(request), principal, request_id(request), route_template(request)
    )


def parse_purpose(value: str | None) -> Purpose:
    """The purpose of a patient-data read; 400 (Swedish) when missing or unknown."""
    if not value or not value.strip():
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            detail=f"Ange syftet med uppslaget i rubriken X-Purpose: {_PURPOSE_HELP}.",
        )
    purpose = value.strip().lower()
    if purpose not in {p.value for p in READ_PURPOSES}:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            detail=f"Okänt syfte i rubriken X-Purpose; tillåtna värden: {_PURPOSE_HELP}.",
        )
    return Purpose(purpose)


@dataclass(slots=True)
class PatientAccess:
    trail: AuditTrail
    purpose: Purpose
    recorded: bool = field(default=False)

    @property
    def principal(self) -> Principal:
        return self.trail.principal

    @property
    def scope(self) -> UnitScope:
        """The units whose patient data the caller sees (inner confidentiality)."""
        return read_scope(self.principal)

    def ensure_unit(self, unit: str) -> None:
        ensure_unit_access(self.principal, unit)

    def record(
        self,
        patients: Iterable[PersonId],
        *,
        resource: str,
        unit: str | None = None,
        detail: str | None = None,
    ) -> None:
        """Log the read of `patients`' data (one entry per patient) before answering; `unit`
        is the caller's unit the read is made for, `detail` what was shown."""
        self.trail.write(
            AuditKind.PATIENT_READ,
            resource,
            patients=[p.digits for p in patients],
            purpose=self.purpose,
            unit=unit,
            detail=detail,
        )
        self.recorded = True


def read_scope(principal: Principal) -> UnitScope:
    """An admin sees every unit's data, anyone else that of the units granted (none: nothing)."""
    return EVERY_UNIT if principal.has_role(Role.ADMIN) else UnitScope(principal.units)


# Who may read patient data (and the aggregates about them): one dependency for every route.
Reader = Annotated[Principal, Depends(require_role(*PATIENT_DATA_READERS))]


def patient_access(
    request: Request,
    principal: Reader,
    x_purpose: Annotated[
        str | None, Header(description=f"Syftet med uppslaget: {_PURPOSE_HELP}")
    ] = None,
) -> Iterator[PatientAccess]:
    trail = audit_trail(request, principal)
    access = PatientAccess(trail, parse_purpose(x_purpose))
    yield access
    if not access.recorded:
        raise RuntimeError(f"{trail.route} answered with patient data but wrote no audit entry")


# scope="function": the check after `yield` runs before the answer is sent, so it can stop it.
PatientAccessDep = Annotated[PatientAccess, Depends(patient_access, scope="function")]


@dataclass(slots=True)
class IngestAccess:
    trail: AuditTrail

    @property
    def principal(self) -> Principal:
        return self.trail.principal

    def record(self, *, resource: str, accepted: int, rejected: int) -> None:
        detail = f"accepted={accepted} rejected={rejected}"
        units = self.principal.ingest_units
        if units is not None:  # a key limited to some units: which ones
            detail += f" units={','.join(sorted(units))}"
        self.trail.write(AuditKind.INGEST, resource, detail=detail)
        # principal names are masked by the log processor should one hold a personnummer
        _log.info(
            "ingest",
            principal=self.principal.name,
            resource=resource,
            accepted=accepted,
            rejected=rejected,
            request_id=self.trail.request_id,
        )


def ingest_access(
    request: Request,
    principal: Annotated[Principal, Depends(require_role(*INGESTERS))],
) -> IngestAccess:
    return IngestAccess(audit_trail(request, principal))


IngestAccessDep = Annotated[IngestAccess, Depends(ingest_access)]
AuditTrailDep = Annotated[AuditTrail, Depends(audit_trail)]
