"""The ingest routes' answer: what a file or body did, row errors with personnummer masked."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from adapter.api.ingestion import IngestReport
from adapter.domain import RowError
from adapter.personnummer import mask


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
