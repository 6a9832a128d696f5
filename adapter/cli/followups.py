"""`sip-fhir followups`: reconcile the follow-up Tasks; `sip-fhir subscriptions ...`: the FHIR
server's notifications to the adapter; `sip-fhir scheduler ...`: the scans on a clock.

Exit codes of `followups`: 0 done; 2 some patients' Tasks could not be written (the rest were);
1 the run failed (server unreachable, the `unit` search parameter missing, bad settings);
3 stopped before writing: it would cancel more Tasks than `scan.max_cancellations` (rules.json)
at once; check the list, then run again with `--confirm-cancellations`.

Exit codes of `subscriptions register`: 0 registered and active; 2 registered, but the server did
not activate them within `--wait` seconds (it most likely does not deliver rest-hooks: the
scheduled scans still do the work, later), so a deployment script notices and may accept it;
1 not registered.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache
from typing import Annotated

import typer
from apscheduler.triggers.cron import CronTrigger
from rich.console import Console
from rich.table import Table

from adapter.canonical import CS_TASK_BUSINESS_STATUS, CS_TASK_TYPE
from adapter.cli.app import app
from adapter.cli.units import hsa_ids
from adapter.conformance import load_conformance
from adapter.fhirclient import FhirError
from adapter.followup import subscriptions
from adapter.followup.params import RuleParamsError
from adapter.followup.planning import CancelledTask, TaskRow
from adapter.followup.reconcile import CancelPolicy, FollowupReport, RequestCounter
from adapter.followup.rules import ActionKind, OwnerKind
from adapter.followup.scope import ScopeError
from adapter.followup.service import FollowupService
from adapter.mapping import MappingsError
from adapter.scheduler import JOBS, run_blocking, time_zone
from adapter.settings import get_settings

EXIT_OK, EXIT_FAILED, EXIT_PARTLY, EXIT_ASK = 0, 1, 2, 3
_ACTION_TEXT = {
    ActionKind.CREATE: "Skapade",
    ActionKind.UPDATE: "Uppdaterade",
    ActionKind.COMPLETE: "Klarmarkerade",
    ActionKind.CANCEL: "Makulerade",
}


def _n(value: float, decimals: int = 0) -> str:
    return f"{value:,.{decimals}f}".replace(",", " ").replace(".", ",")


def _date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"ogiltigt datum {value!r}, ange ÅÅÅÅ-MM-DD") from None


@lru_cache(maxsize=1)
def _displays() -> dict[tuple[str, str], str]:
    """Swedish names of the Task codes, from their CodeSystems in profiles/ (codes if absent)."""
    try:
        items = load_conformance(get_settings().profiles_dir)
    except (OSError, ValueError):
        return {}
    return {
        (str(item.url), c["code"]): c["display"]
        for item in items
        if item.resource_type == "CodeSystem"
        and item.url in (CS_TASK_TYPE, CS_TASK_BUSINESS_STATUS)
        for c in item.resource.get("concept", ())
    }


def _label(system: str, code: str | None) -> str:
    return _displays().get((system, code or ""), code or "–")


def _owner(row: TaskRow) -> str:
    if row.owner is None:
        return "–"
    if row.owner.kind is OwnerKind.ORGANIZATION:
        return f"enheten {row.owner.hsa_id}"
    return f"{row.owner_name} ({row.owner.hsa_id})" if row.owner_name else row.owner.hsa_id


def _summary(console: Console, report: FollowupReport, counter: RequestCounter) -> None:
    what = "skulle göras (torrkörning, inget skrevs)" if report.dry_run else "gjordes"
    console.print(
        f"[bold]Uppföljning per {report.as_of.isoformat()}[/]: {_n(report.patients)} patienter "
        f"prövade; detta {what}:"
    )
    console.print(
        "  "
        + "   ".join(f"{text}: {_n(report.count(kind))}" for kind, text in _ACTION_TEXT.items())
    )
    by_type = Table(title="Öppna uppgifter per typ", title_justify="left")
    by_type.add_column("Typ")
    by_type.add_column("Öppna", justify="right")
    by_type.add_column("Försenade", justify="right")
    opened, overdue = report.open_by_type(), report.overdue_by_type()
    for task_type in sorted(opened, key=lambda t: t.value):
        by_type.add_row(
            _label(CS_TASK_TYPE, task_type.value), _n(opened[task_type]), _n(overdue[task_type])
        )
    by_type.add_row("[bold]Totalt[/]", _n(sum(opened.values())), _n(sum(overdue.values())))
    console.print(by_type)
    seconds = report.load_seconds + report.write_seconds
    console.print(
        f"Anrop till FHIR-servern: {_n(counter.count)}, varav {_n(report.bundles)} "
        f"skrivtransaktioner. Tid: {_n(seconds, 1)} s (läsa och pröva "
        f"{_n(report.load_seconds, 1)} s, skriva {_n(report.write_seconds, 1)} s)."
    )
    if report.without_owner:
        console.print(
            f"[yellow]{_n(report.without_owner)} uppgifter kunde inte skapas: varken enhet eller "
            "plan anger någon ägare.[/]"
        )


def _cancel_table(console: Console, title: str, cancelled: list[CancelledTask]) -> None:
    if not cancelled:
        return
    table = Table(title=title, title_justify="left")
    for column in ("Uppgift", "Personnummer", "Typ", "Skäl"):
        table.add_column(column, no_wrap=column != "Skäl")
    for item in cancelled:
        table.add_row(
            f"Task/{item.task_id}",
            item.person.masked,
            _label(CS_TASK_TYPE, item.task_type.value),
            item.reason,
        )
    console.print(table)


def _stopped(console: Console, report: FollowupReport) -> None:
    console.print(
        f"[bold red]Uppföljningen stoppades innan något skrevs:[/] den skulle makulera "
        f"{_n(len(report.held))} uppgifter på en gång (gränsen är {report.max_cancellations}, "
        "scan.max_cancellations i rules.json). Det kan bero på en ofullständig Prea60-körning. "
        "Kontrollera listan och kör igen med --confirm-cancellations om makuleringarna stämmer."
    )
    _cancel_table(console, "Uppgifter som skulle makuleras", report.held)


def _task_table(console: Console, rows: list[TaskRow], limit: int) -> None:
    if limit <= 0 or not rows:
        return
    table = Table(title="Öppna uppgifter (förfallodag först)", title_justify="left")
    table.add_column("Personnummer", no_wrap=True, min_width=13)
    table.add_column("Typ")
    table.add_column("Förfaller", no_wrap=True, min_width=10)
    for column in ("Läge", "Status", "Ägare"):
        table.add_column(column)
    ordered = sorted(rows, key=lambda r: (r.due or date.max, r.task_type.value, r.person.digits))
    for row in ordered[:limit]:
        table.add_row(
            row.person.masked,
            _label(CS_TASK_TYPE, row.task_type.value),
            row.due.isoformat() if row.due else "–",
            _label(CS_TASK_BUSINESS_STATUS, row.business_status),
            row.status,
            _owner(row),
        )
    console.print(table)
    if len(rows) > limit:
        console.print(f"… och {_n(len(rows) - limit)} till (visa fler med --rows).")


@app.command("followups")
def followups(
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Pröva som denna dag, ÅÅÅÅ-MM-DD (standard: i dag)."),
    ] = None,
    unit: Annotated[
        list[str] | None,
        typer.Option(
            "--unit",
            help="Bara denna enhet (HSA-id); kan upprepas. Standard: regionen.",
            callback=hsa_ids,
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Visa vad som skulle göras; skriv inget.")
    ] = False,
    quick: Annotated[
        bool,
        typer.Option(
            "--quick",
            help="Förfallokontroll: bara patienter med öppna uppgifter (och, för regionen, "
            "nya utskrivningsmeddelanden).",
        ),
    ] = False,
    rows: Annotated[
        int, typer.Option("--rows", help="Visa så många öppna uppgifter i tabellen (0: ingen).")
    ] = 20,
    confirm_cancellations: Annotated[
        bool,
        typer.Option(
            "--confirm-cancellations",
            help="Makulera även när fler uppgifter än scan.max_cancellations (rules.json) "
            "skulle makuleras på en gång.",
        ),
    ] = False,
) -> None:
    """Skapa, uppdatera, klarmarkera och makulera uppföljningsuppgifter (Task) utifrån vad
    FHIR-servern vet. Kan köras om: utan ändringar skrivs inget."""
    settings = get_settings()
    out, err = Console(), Console(stderr=True)
    counter = RequestCounter()
    service = FollowupService(settings)
    try:
        report = service.run(
            as_of=_date(as_of),
            units=unit or None,
            quick=quick,
            dry_run=dry_run,
            counter=counter,
            cancellations=CancelPolicy.ALLOW if confirm_cancellations else CancelPolicy.ASK,
        )
    except (FhirError, ScopeError, RuleParamsError, MappingsError, OSError) as error:
        err.print(f"[bold red]Uppföljningen kunde inte köras:[/] {error}")
        raise typer.Exit(EXIT_FAILED) from None
    if report.stopped:
        _stopped(err, report)
        raise typer.Exit(EXIT_ASK)
    _summary(out, report, counter)
    _cancel_table(out, "Makulerade uppgifter", report.cancelled)
    _task_table(out, report.open_tasks, rows)
    for problem in report.errors:
        err.print(f"[red]Fel:[/] {problem}")
    raise typer.Exit(EXIT_PARTLY if report.errors else EXIT_OK)


# --- subscriptions ---

subscriptions_app = typer.Typer(
    help="Prenumerationer: FHIR-servern meddelar adaptern när något som rör en uppgift skrivs.",
    no_args_is_help=True,
)
app.add_typer(subscriptions_app, name="subscriptions")


@subscriptions_app.command("register")
def subscriptions_register(
    endpoint: Annotated[
        str,
        typer.Option(
            "--endpoint",
            help="Adapterns bas-URL som FHIR-servern når, t.ex. https://sip-fhir.region.se "
            f"(notifieringarna går till {subscriptions.HOOK_PATH}).",
        ),
    ],
    wait: Annotated[
        float,
        typer.Option(
            "--wait",
            min=0,
            help="Vänta så många sekunder på att servern aktiverar dem (0: vänta inte).",
        ),
    ] = subscriptions.WAIT_SECONDS,
) -> None:
    """Registrera prenumerationerna (en per resurstyp) och vänta tills servern aktiverat dem.
    Kan köras om: oförändrade skrivs inte."""
    settings = get_settings()
    out, err = Console(), Console(stderr=True)
    if settings.hook_secret is None:
        err.print("Sätt SIP_FHIR_HOOK_SECRET (samma värde i API-tjänsten) först.")
        raise typer.Exit(EXIT_FAILED)
    try:
        with FollowupService(settings).client() as client:
            results = subscriptions.register(
                client, endpoint, settings.hook_secret.get_secret_value()
            )
            now = (
                subscriptions.wait_for_active(client, [r.id for r in results], wait)
                if wait > 0
                else {}
            )
    except FhirError as error:
        err.print(f"[bold red]Prenumerationerna kunde inte registreras:[/] {error}")
        raise typer.Exit(EXIT_FAILED) from None
    states = {r.id: (now.get(r.id) or {}).get("status", r.status) for r in results}
    table = Table(title=f"Prenumerationer → {subscriptions.hook_url(endpoint)}")
    for column in ("Resurstyp", "Id", "Utfall", "Status"):
        table.add_column(column)
    for item in results:
        table.add_row(item.resource_type, item.id, item.outcome.value, states[item.id] or "–")
    out.print(table)
    inactive = sorted({str(s) for s in states.values() if s != subscriptions.ACTIVE})
    if wait > 0 and inactive:
        err.print(
            f"[bold yellow]Varning:[/] FHIR-servern har inte aktiverat prenumerationerna inom "
            f"{_n(wait)} s (status: {', '.join(inactive)}). {subscriptions.INACTIVE_HINT}"
        )
        raise typer.Exit(EXIT_PARTLY)


@subscriptions_app.command("list")
def subscriptions_list() -> None:
    """Visa adapterns prenumerationer på FHIR-servern."""
    with FollowupService(get_settings()).client() as client:
        found = subscriptions.registered(client)
    table = Table(title="Adapterns prenumerationer")
    for column in ("Id", "Kriterium", "Mottagare", "Status"):
        table.add_column(column)
    for item in found:
        channel = item.get("channel") or {}
        table.add_row(
            str(item.get("id")),
            str(item.get("criteria")),
            str(channel.get("endpoint")),
            str(item.get("status")),
        )
    Console().print(table)


@subscriptions_app.command("remove")
def subscriptions_remove() -> None:
    """Ta bort adapterns prenumerationer (de schemalagda genomgångarna gör då jobbet)."""
    with FollowupService(get_settings()).client() as client:
        removed = subscriptions.remove(client)
    Console().print(f"{removed} prenumerationer borttagna.")


# --- scheduler ---

scheduler_app = typer.Typer(
    help="Schemaläggaren: full genomgång varje måndag, förfallokontroll varje dag.",
    no_args_is_help=True,
)
app.add_typer(scheduler_app, name="scheduler")


@scheduler_app.command("run")
def scheduler_run() -> None:
    """Kör schemaläggaren i förgrunden (en egen tjänst; sätt SIP_FHIR_SCHEDULER=off i API:t)."""
    try:
        run_blocking(get_settings())
    except RuntimeError as error:
        Console(stderr=True).print(f"[bold red]{error}[/]")
        raise typer.Exit(EXIT_FAILED) from None
    except KeyboardInterrupt:
        raise typer.Exit(EXIT_OK) from None


@scheduler_app.command("jobs")
def scheduler_jobs() -> None:
    """Visa jobben och när de körs nästa gång (startar inget)."""
    zone = time_zone(get_settings())
    now = datetime.now(zone)
    table = Table(title=f"Schemalagda jobb ({zone.key})")
    for column in ("Id", "Vad", "Nästa körning"):
        table.add_column(column)
    for job in JOBS:
        upcoming = CronTrigger(timezone=zone, **job.cron).get_next_fire_time(None, now)
        table.add_row(job.id, job.name, upcoming.isoformat() if upcoming else "–")
    Console().print(table)
