"""Ingest: plans, registered actions, discharge notices and Prea60 lists, through the same
pipeline and outbox as `sip-fhir import` (adapter/api/ingestion.py). Role integration or admin.

- `POST /ingest/plans`: `application/json` (one plan object, or a list of them) or
  `application/x-ndjson` (JSON Lines, as plans*.jsonl). A list's positions count as its lines.
- `POST /ingest/events`, `/ingest/discharges`, `/ingest/prea60`: the CSV file formats exactly
  (same columns, column maps and encodings), as a `text/csv` body or a `multipart/form-data`
  upload in the field `file`. CSV rather than JSON rows: the source systems export these as
  files, and one reader per format keeps one set of rules (and error messages).

The answer counts the rows read, accepted and rejected, with every rejected row's line, column
and reason (Swedish, personnummer masked), the encoding the body was read in, and what was
written. A key limited to some units (`sip-fhir api-key --unit`) sends only their rows: another
unit's row is a row error naming the unit, a discharge notice (no unit) is refused; see
adapter/api/ingestion.py. 200: what was accepted is written (rejected rows listed); 202: saved in
the outbox, the FHIR server did not answer (it is sent by the next import or `sip-fhir sync`);
422: nothing could be read (`oläsbar`: empty, no header, a column missing, JSON nested too deep)
or every row was rejected (`avvisad`), as `sip-fhir import` exits non-zero then. Rows count in
the metric `sip_fhir_rows_in`.
"""

from __future__ import annotations

import io
import json
from collections.abc import Awaitable, Callable
from typing import Any, BinaryIO

from fastapi import APIRouter, HTTPException, Request, Response, status
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from adapter import safejson
from adapter.api.access import IngestAccessDep
from adapter.api.deps import ClinicDep
from adapter.api.models import IngestOut
from adapter.personnummer import mask
from adapter.sources import PlanIn, SourceKind

router = APIRouter(prefix="/ingest", tags=["inläsning"])

JSON = "application/json"
JSON_LINES = ("application/x-ndjson", "application/jsonl", "application/json-lines")
CSV = "text/csv"
MULTIPART = "multipart/form-data"
UPLOAD_FIELD = "file"
_MAX_NAME = 120

_ANSWERS: dict[int | str, dict[str, Any]] = {
    status.HTTP_202_ACCEPTED: {
        "model": IngestOut,
        "description": "Sparat i utkorgen; FHIR-servern svarade inte (skickas senare)",
    },
    status.HTTP_415_UNSUPPORTED_MEDIA_TYPE: {"description": "Innehållstypen stöds inte"},
    status.HTTP_422_UNPROCESSABLE_CONTENT: {
        "model": IngestOut,
        "description": "Inget kunde läsas (tom fil, rubrikrad saknas, ogiltig JSON ...) "
        "eller varje rad avvisades",
    },
}


def _inlined(schema: Any, defs: dict[str, Any]) -> Any:
    """A JSON schema with its local `$defs` references written out (the OpenAPI body needs
    them inline: the components section is FastAPI's)."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inlined(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inlined(v, defs) for k, v in schema.items() if k != "$defs"}
    if isinstance(schema, list):
        return [_inlined(item, defs) for item in schema]
    return schema


def _plan_schema() -> dict[str, Any]:
    schema = PlanIn.model_json_schema()
    plan = _inlined(schema, schema.get("$defs", {}))
    return {"oneOf": [plan, {"type": "array", "items": plan}]}


_PLANS_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            JSON: {"schema": _plan_schema()},
            JSON_LINES[0]: {"schema": {"type": "string", "description": "JSON Lines"}},
        },
    }
}
_CSV_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            CSV: {"schema": {"type": "string", "description": "CSV som källfilen"}},
            MULTIPART: {
                "schema": {
                    "type": "object",
                    "required": [UPLOAD_FIELD],
                    "properties": {UPLOAD_FIELD: {"type": "string", "format": "binary"}},
                }
            },
        },
    }
}


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _unsupported(*accepted: str) -> HTTPException:
    return HTTPException(
        status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
        detail=f"Innehållstypen stöds inte; använd {' eller '.join(accepted)}.",
    )


def plans_as_lines(body: bytes) -> bytes:
    """A JSON body (one plan or a list of them) as JSON Lines: the list's positions are lines."""
    try:
        # One level more than a line may have: the list around the plans.
        parsed = safejson.loads(body, safejson.MAX_DEPTH + 1)
    except ValueError as error:  # also UnicodeDecodeError and safejson.TooDeep
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, detail=f"Ogiltig JSON: {error}"
        ) from None
    items = parsed if isinstance(parsed, list) else [parsed]
    return "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items).encode()


async def _run(
    stream: BinaryIO,
    kind: SourceKind,
    name: str,
    clinic: ClinicDep,
    ingest: IngestAccessDep,
    response: Response,
) -> IngestOut:
    units = ingest.principal.ingest_units
    report = await run_in_threadpool(clinic.ingestion.run, stream, kind, name, units=units)
    ingest.record(resource=kind.value, accepted=report.accepted, rejected=report.rejected)
    answer = IngestOut.of(report)
    if answer.status in ("oläsbar", "avvisad"):
        response.status_code = status.HTTP_422_UNPROCESSABLE_CONTENT
    elif answer.status == "väntar":
        response.status_code = status.HTTP_202_ACCEPTED
    return answer


@router.post(
    "/plans",
    summary="Läs in planer (SIP och patientkontrakt)",
    openapi_extra=_PLANS_BODY,
    responses=_ANSWERS,
)
async def ingest_plans(
    request: Request, response: Response, ingest: IngestAccessDep, clinic: ClinicDep
) -> IngestOut:
    media_type = _media_type(request)
    body = await request.body()
    if media_type == JSON:
        body = plans_as_lines(body)
    elif media_type not in JSON_LINES:
        raise _unsupported(JSON, JSON_LINES[0])
    return await _run(io.BytesIO(body), SourceKind.PLANS, "plans (API)", clinic, ingest, response)


def _upload_name(upload: UploadFile, kind: SourceKind) -> str:
    name = mask((upload.filename or "").strip())[:_MAX_NAME]
    return name or f"{kind.value} (uppladdad)"


async def _csv(
    kind: SourceKind,
    request: Request,
    response: Response,
    ingest: IngestAccessDep,
    clinic: ClinicDep,
) -> IngestOut:
    media_type = _media_type(request)
    if media_type == CSV:
        body = io.BytesIO(await request.body())
        return await _run(body, kind, f"{kind.value} (API)", clinic, ingest, response)
    if media_type != MULTIPART:
        raise _unsupported(CSV, MULTIPART)
    async with request.form() as form:
        upload = form.get(UPLOAD_FIELD)
        if not isinstance(upload, UploadFile):
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                detail=f"Filen saknas: skicka den i fältet '{UPLOAD_FIELD}'.",
            )
        name = _upload_name(upload, kind)
        return await _run(upload.file, kind, name, clinic, ingest, response)


_CSV_SUMMARIES = {
    SourceKind.EVENTS: "Läs in registrerade åtgärder (KVÅ och lokala koder), CSV",
    SourceKind.DISCHARGES: "Läs in utskrivningsmeddelanden (utskrivningsklar), CSV",
    SourceKind.PREA60: "Läs in en Prea60-lista (riskprediktion), CSV-uppladdning",
}


def _csv_route(kind: SourceKind) -> Callable[..., Awaitable[IngestOut]]:
    async def route(
        request: Request, response: Response, ingest: IngestAccessDep, clinic: ClinicDep
    ) -> IngestOut:
        return await _csv(kind, request, response, ingest, clinic)

    route.__name__ = f"ingest_{kind.value}"
    return route


for _kind, _summary in _CSV_SUMMARIES.items():
    router.add_api_route(
        f"/{_kind.value}",
        _csv_route(_kind),
        methods=["POST"],
        summary=_summary,
        openapi_extra=_CSV_BODY,
        responses=_ANSWERS,
    )
