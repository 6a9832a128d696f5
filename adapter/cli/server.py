"""`sip-fhir server ...`: look at the FHIR server the adapter writes to."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from adapter import logs
from adapter.cli.app import app
from adapter.fhirclient import FhirClient, FhirError
from adapter.settings import get_settings

server_app = typer.Typer(help="FHIR-servern som adaptern skriver till.", no_args_is_help=True)
app.add_typer(server_app, name="server")

# A check should answer within seconds, not spend the sync's whole retry budget on a dead server.
CHECK_RETRY_SECONDS = 15.0


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
) -> None:
    """Kontrollera att FHIR-servern svarar och talar FHIR R4."""
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
    out.print(table)
