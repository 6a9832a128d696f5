"""`sip-fhir server ...`: look at the FHIR server the adapter writes to."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from adapter import logs
from adapter.cli.app import app
from adapter.fhirclient import FhirClient, FhirError
from adapter.followup import subscriptions
from adapter.settings import get_settings
from adapter.sync.versionguard import UniqueRule

server_app = typer.Typer(help="FHIR-servern som adaptern skriver till.", no_args_is_help=True)
app.add_typer(server_app, name="server")

# A check should answer within seconds, not spend the sync's whole retry budget on a dead server.
CHECK_RETRY_SECONDS = 15.0
NO_UNIQUE_RULE = (
    "Servern saknar unikhetsregeln för adapterns affärsidentifierare, så två samtidiga "
    "skrivningar kan ge dubbletter (HAPI med PostgreSQL). Kör `sip-fhir profiles install`."
)


def _resource_types(statement: dict[str, Any]) -> list[str]:
    return sorted(
        {
            resource["type"]
            for rest in statement.get("rest", [])
            if rest.get("mode", "server") == "server"
            for resource in rest.get("resource", [])
            if "type" in resource
        }
    )


@server_app.command("check")
def check(
    base_url: Annotated[
        str | None,
        typer.Option("--base-url", help="FHIR-serverns bas-URL (standard: SIP_FHIR_BASE_URL)."),
    ] = None,
    hook_wait: Annotated[
        float,
        typer.Option(
            "--hook-wait",
            min=0,
            help="Pröva rest-hook med en tillfällig prenumeration och vänta så många sekunder på "
            "att servern aktiverar den (0: pröva inte; inget skrivs då till servern).",
        ),
    ] = subscriptions.WAIT_SECONDS,
) -> None:
    """Kontrollera att FHIR-servern svarar, talar FHIR R4 och kan leverera rest-hook-
    notifieringar (prenumerationerna som stänger uppgifter inom sekunder)."""
    settings = get_settings()
    logs.configure(settings.log_level, settings.log_json)
    endpoint = settings.endpoint().model_copy(
        update={
            "base_url": base_url or settings.base_url,
            "max_retry_seconds": min(settings.max_retry_seconds, CHECK_RETRY_SECONDS),
        }
    )
    out, err = Console(), Console(stderr=True)
    try:
        with FhirClient(endpoint) as client:
            statement = client.capabilities()
            unique = UniqueRule(client).active()
            hooks = _hook_row(client, hook_wait)
    except (FhirError, ValueError) as exc:
        err.print(f"[bold red]FHIR-servern {endpoint.base_url} fungerar inte:[/] {exc}")
        raise typer.Exit(1) from None

    software = statement.get("software") or {}
    table = Table(title=f"FHIR-servern {endpoint.base_url} svarar", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    name = software.get("name") or "okänd"
    table.add_row("Programvara", f"{name} {software.get('version', '')}".strip())
    table.add_row("FHIR-version", str(statement.get("fhirVersion")))
    table.add_row("Resurstyper", str(len(_resource_types(statement))))
    table.add_row("Unika affärsidentifierare", "ja" if unique else "nej")
    if hooks is not None:
        table.add_row("Rest-hook", hooks[0])
    out.print(table)
    if not unique:
        err.print(f"[bold yellow]Varning:[/] {NO_UNIQUE_RULE}")
    if hooks is not None and hooks[1]:
        err.print(f"[bold yellow]Varning:[/] {hooks[1]}")


def _hook_row(client: FhirClient, wait: float) -> tuple[str, str | None] | None:
    """What the rest-hook probe found, and a warning when delivery looks impossible."""
    if wait <= 0:
        return None
    try:
        probe = subscriptions.probe_rest_hook(client, wait)
    except FhirError as exc:  # e.g. no right to write Subscriptions: the check itself still holds
        return "okänt", f"Kunde inte pröva rest-hook med en tillfällig prenumeration: {exc}"
    seconds = f"{probe.seconds:.0f}"
    if probe.active:
        return f"ja (en tillfällig prenumeration blev aktiv på {seconds} s)", None
    reason = f": {probe.error}" if probe.error else ""
    return (
        f"nej (status {probe.status or 'okänd'} efter {seconds} s{reason})",
        f"En tillfällig rest-hook-prenumeration blev inte aktiv inom {seconds} s. "
        + subscriptions.INACTIVE_HINT,
    )
