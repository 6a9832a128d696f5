"""The audit log, for admins: who read which patient's data (PDL follow-up).

Searched with POST and a JSON body, so a personnummer never appears in a URL (and so in no
proxy or server access log). Each search is itself logged.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from adapter import personnummer
from adapter.api.access import AuditTrailDep, get_audit_log
from adapter.api.principal import Principal, Role
from adapter.api.security import require_role
from adapter.audit import AuditKind, AuditLog, Purpose

router = APIRouter(prefix="/audit", tags=["granskningslogg"])

_TWELVE_DIGITS = re.compile(r"\d{8}-?\d{4}")


class AuditQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    patient: str | None = Field(
        default=None, description="Patientens personnummer eller samordningsnummer, ÅÅÅÅMMDD-NNNN"
    )
    subject: str | None = Field(
        default=None, max_length=200, description="Användarens id: token-`sub` eller apikey:<namn>"
    )
    since: AwareDatetime | None = Field(default=None, description="Från och med (med tidszon)")
    until: AwareDatetime | None = Field(default=None, description="Till (exklusive)")
    limit: int = Field(default=100, ge=1, le=1000)

    @field_validator("patient")
    @classmethod
    def _twelve_digits(cls, value: str | None) -> str | None:
        if value is None:
            return None
        text = value.strip()
        if not _TWELVE_DIGITS.fullmatch(text):
            raise ValueError("ange numret med tolv siffror: ÅÅÅÅMMDD-NNNN")
        personnummer.check(text)  # PersonnummerError is a ValueError with a Swedish reason
        return text.replace("-", "")


class AuditEntry(BaseModel):
    at: datetime
    kind: AuditKind
    actor: str
    subject: str
    resource: str
    route: str
    request_id: str
    purpose: str | None
    patient: str | None
    unit: str | None
    detail: str | None


class AuditSearchResult(BaseModel):
    events: list[AuditEntry]


@router.post("/search", summary="Sök i granskningsloggen (endast admin)")
def search_audit(
    query: AuditQuery,
    _admin: Annotated[Principal, Depends(require_role(Role.ADMIN))],
    trail: AuditTrailDep,
    audit_log: Annotated[AuditLog, Depends(get_audit_log)],
) -> AuditSearchResult:
    trail.write(
        AuditKind.AUDIT_SEARCH, "audit", patients=[query.patient], purpose=Purpose.LOGGUPPFOLJNING
    )
    events = audit_log.search(
        patient=query.patient,
        subject=query.subject,
        since=query.since,
        until=query.until,
        limit=query.limit,
    )
    return AuditSearchResult(
        events=[AuditEntry.model_validate(event, from_attributes=True) for event in events]
    )
