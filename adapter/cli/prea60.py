"""`sip-fhir prea60 list|confirm|reject`: Prea60 runs stored unconfirmed (adapter/prea60/).

Exit codes: 0 done; 1 the server or settings failed; 2 no unconfirmed run of that unit and day.
"""

from __future__ import annotations

import getpass
from datetime import UTC, date, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from adapter.audit import AuditEvent, AuditKind, AuditLog
from adapter.cli.app import app
from adapter.fhirclient import FhirClient, FhirError
from adapter.followup.params import RULES_FILE, RuleParamsError, load_rule_params
from adapter.prea60.decide import Decision, decide_run, decided_text
from adapter.prea60.runs import RunNotFound, pending_runs
from adapter.readmodel.store import Touched
from adapter.readmodel.worklists import store_for
from adapter.settings import get_settings

EXIT_OK, EXIT_FAILED, EXIT_NOT_FOUND = 0, 1, 2

prea60_app = typer.Typer(
    help="Prea60-körningar som lagrats som obekräftade: visa, bekräfta eller avvisa.",
    no_args_is_help=True,
)
app.add_typer(prea60_app, name="prea60")

UnitOption = Annotated[str, typer.Option("--unit", help="Enhetens HSA-id.")]


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"ogiltigt datum {value!r}, ange ÅÅÅÅ-MM-DD") from None


RunOption = Annotated[
    date, typer.Option("--run", parser=_day, help="Körningens datum (Beräkningsdatum), ÅÅÅÅ-MM-DD.")
]


@prea60_app.command("list")
def list_runs(unit: UnitOption) -> None:
    """Visa enhetens obekräftade körningar och varför de hölls inne."""
    settings = get_settings()
    out, err = Console(), Console(stderr=True)
    try:
        params = load_rule_params(settings.mappings_dir / RULES_FILE)
        with FhirClient(settings.endpoint()) as client:
            runs = pending_runs(client, unit, params)
    except (FhirError, RuleParamsError) as error:
        err.print(f"[bold red]Körningarna kunde inte läsas:[/] {error}")
        raise typer.Exit(EXIT_FAILED) from None
    if not runs:
        out.print(f"Enheten {unit} har inga obekräftade Prea60-körningar.")
        return
    table = Table(title=f"Obekräftade Prea60-körningar för {unit}", title_justify="left")
    for column in ("Körning", "Rader", "Förra körningen", "Skäl"):
        table.add_column(column)
    for run in runs:
        previous = f"{run.previous.run_date} ({run.previous.rows} rader)" if run.previous else "–"
        reasons = "; ".join(run.reasons) or "inga längre (kan bekräftas)"
        table.add_row(run.run_date.isoformat(), str(run.rows), previous, reasons)
    out.print(table)


def _decide(unit: str, run: date, decision: Decision) -> None:
    settings = get_settings()
    out, err = Console(), Console(stderr=True)
    user = getpass.getuser()
    audit_log = AuditLog.for_settings(settings)

    def audit(detail: str) -> None:
        audit_log.record(
            [
                AuditEvent(
                    at=datetime.now(UTC),
                    kind=AuditKind.PREA60_RUN,
                    actor=user,
                    subject=f"cli:{user}",
                    resource="prea60-run",
                    route=f"sip-fhir prea60 {decision.value}",
                    request_id="-",
                    unit=unit,
                    detail=detail,
                )
            ]
        )

    try:
        with FhirClient(settings.endpoint()) as client:
            rows = decide_run(client, unit, run, decision, audit=audit)
        store_for(settings).record(Touched(units=frozenset({unit})))  # the worklist's banner
    except RunNotFound as error:
        err.print(f"[bold red]{error}[/]")
        raise typer.Exit(EXIT_NOT_FOUND) from None
    except FhirError as error:
        err.print(f"[bold red]Körningen kunde inte ändras:[/] {error}")
        raise typer.Exit(EXIT_FAILED) from None
    out.print(decided_text(unit, run, decision, rows))
    if decision is Decision.CONFIRM:
        out.print(f"Uppdatera uppgifterna nu: sip-fhir followups --unit {unit}")


@prea60_app.command("confirm")
def confirm(unit: UnitOption, run: RunOption) -> None:
    """Bekräfta en obekräftad körning: den blir enhetens körning (riskgruppen) från nästa
    genomgång."""
    _decide(unit, run, Decision.CONFIRM)


@prea60_app.command("reject")
def reject(unit: UnitOption, run: RunOption) -> None:
    """Avvisa en obekräftad körning: den används aldrig (status entered-in-error)."""
    _decide(unit, run, Decision.REJECT)
