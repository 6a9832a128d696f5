"""Unconfirmed Prea60 runs of a unit (adapter/prea60/): list, confirm, reject; JSON and the
worklist banner's buttons.

- `GET /units/{hsa_id}/prea60/unconfirmed`: the runs held back, with the guard's reasons;
- `POST /units/{hsa_id}/prea60/{run}/confirm` and `/reject`: a person's decision;
- `POST /ui/units/{hsa_id}/prea60/{run}/confirm` and `/reject`: the same from the worklist
  banner (a form with the session's CSRF token), answered by a redirect to the worklist.

Who: a vårdsamordnare of the unit or an admin. Never an integration key: the hands that sent a
run in must not wave it through (403). Every decision is audit-logged (kind `prea60_run`, the
unit, the run and the rows changed). A confirmed run takes effect at once: the unit is scanned
(the follow-up engine) right after, and a scan that would cancel more Tasks than the rules allow
keeps them open and says so (`held`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Request, status
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from adapter.api.access import AuditTrail, audit_trail
from adapter.api.clinic import Clinic
from adapter.api.deps import ClinicDep, UnitPath, fhir_errors
from adapter.api.principal import Principal, Role
from adapter.api.security import ensure_unit_access, require_role
from adapter.api.sessions import csrf_ok
from adapter.api.ui.render import PREFIX
from adapter.api.ui.session import PageError, SessionDep
from adapter.audit import AuditKind
from adapter.prea60.decide import Decision, decide_run, decided_text
from adapter.prea60.guard import RunCheck
from adapter.prea60.runs import RunNotFound
from adapter.readmodel.store import Touched

# Who may confirm or reject a run (see the module docstring).
RUN_DECIDERS = (Role.VARDSAMORDNARE, Role.ADMIN)

router = APIRouter(prefix="/units", tags=["prea60"])
pages = APIRouter(prefix=PREFIX, include_in_schema=False)

RunPath = Annotated[date, Path(description="Körningens datum (Beräkningsdatum), ÅÅÅÅ-MM-DD")]
Decider = Annotated[Principal, Depends(require_role(*RUN_DECIDERS))]


class UnconfirmedRunOut(BaseModel):
    run: date
    rows: int
    previous_run: date | None
    previous_rows: int | None
    dropped: int = Field(description="Patienter i förra körningens riskgrupp som faller bort")
    reasons: list[str] = Field(description="Varför körningen hölls inne (tom: kan bekräftas)")
    message: str

    @classmethod
    def of(cls, check: RunCheck) -> UnconfirmedRunOut:
        previous = check.previous
        return cls(
            run=check.run_date,
            rows=check.rows,
            previous_run=previous.run_date if previous else None,
            previous_rows=previous.rows if previous else None,
            dropped=check.dropped,
            reasons=list(check.reasons),
            message=check.describe(),
        )


class RunDecisionOut(BaseModel):
    run: date
    decision: Decision
    rows: int = Field(description="Rader (RiskAssessment) som ändrades")
    message: str
    cancelled: int = Field(description="Uppgifter som genomgången efteråt makulerade")
    held: int = Field(description="Makuleringar som hölls inne: fler än gränsen på en gång")


def _decide(
    clinic: Clinic, trail: AuditTrail, unit_hsa_id: str, run: date, decision: Decision
) -> RunDecisionOut:
    def audit(detail: str) -> None:
        trail.write(AuditKind.PREA60_RUN, "prea60-run", unit=unit_hsa_id, detail=detail)

    try:
        with clinic.client() as client:
            rows = decide_run(client, unit_hsa_id, run, decision, audit=audit)
        clinic.followups.worklists.written(Touched(units=frozenset({unit_hsa_id})))
    except RunNotFound as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(error)) from None
    cancelled = held = 0
    if decision is Decision.CONFIRM:
        report = clinic.followups.run(units=[unit_hsa_id], as_of=clinic.today())
        cancelled, held = len(report.cancelled), len(report.held)
    message = decided_text(unit_hsa_id, run, decision, rows)
    if held:
        message += (
            f" {held} uppgifter skulle makuleras på en gång och hölls kvar; en administratör "
            f"kör `sip-fhir followups --unit {unit_hsa_id} --confirm-cancellations`."
        )
    return RunDecisionOut(
        run=run, decision=decision, rows=rows, message=message, cancelled=cancelled, held=held
    )


@router.get(
    "/{hsa_id}/prea60/unconfirmed",
    summary="Enhetens obekräftade Prea60-körningar",
    response_model=list[UnconfirmedRunOut],
)
def list_unconfirmed(
    hsa_id: UnitPath, principal: Decider, clinic: ClinicDep
) -> list[UnconfirmedRunOut]:
    ensure_unit_access(principal, hsa_id)
    with fhir_errors():
        return [UnconfirmedRunOut.of(check) for check in clinic.unconfirmed_runs(hsa_id)]


def _json_route(decision: Decision) -> Callable[..., RunDecisionOut]:
    def route(
        request: Request, hsa_id: UnitPath, run: RunPath, principal: Decider, clinic: ClinicDep
    ) -> RunDecisionOut:
        ensure_unit_access(principal, hsa_id)
        with fhir_errors():
            return _decide(clinic, audit_trail(request, principal), hsa_id, run, decision)

    return route


for _decision, _summary in (
    (Decision.CONFIRM, "Bekräfta en obekräftad Prea60-körning"),
    (Decision.REJECT, "Avvisa en obekräftad Prea60-körning"),
):
    router.add_api_route(
        f"/{{hsa_id}}/prea60/{{run}}/{_decision.value}",
        _json_route(_decision),
        methods=["POST"],
        summary=_summary,
        response_model=RunDecisionOut,
    )


def _page_route(decision: Decision) -> Callable[..., Awaitable[RedirectResponse]]:
    async def route(
        request: Request,
        hsa_id: UnitPath,
        run: RunPath,
        clinic: ClinicDep,
        session: SessionDep,
        csrf: Annotated[str, Form(max_length=100)] = "",
    ) -> RedirectResponse:
        if not csrf_ok(session, csrf):
            raise PageError(
                status.HTTP_403_FORBIDDEN,
                "Formuläret har gått ut; ladda om sidan och försök igen.",
            )
        principal = session.principal
        if not principal.has_role(*RUN_DECIDERS) or not principal.can_read_unit(hsa_id):
            raise PageError(status.HTTP_403_FORBIDDEN, f"Behörighet saknas till enheten {hsa_id}.")
        trail = audit_trail(request, principal)
        try:
            with fhir_errors():
                done = await run_in_threadpool(_decide, clinic, trail, hsa_id, run, decision)
            session.flash.append(done.message)
        except HTTPException as error:
            session.flash.append(f"Körningen kunde inte ändras: {error.detail}")
        return RedirectResponse(f"{PREFIX}/units/{hsa_id}", status_code=status.HTTP_303_SEE_OTHER)

    return route


for _decision in Decision:
    pages.add_api_route(
        f"/units/{{hsa_id}}/prea60/{{run}}/{_decision.value}",
        _page_route(_decision),
        methods=["POST"],
    )
