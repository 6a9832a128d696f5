"""`sip-fhir serve`: the API service under uvicorn; `sip-fhir api-key`: a key for local use."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from adapter import logs
from adapter.api import create_app
from adapter.api.apikeys import ApiKeyEntry, ApiKeyError, add_entry, new_key
from adapter.api.principal import Role
from adapter.cli.app import app
from adapter.cli.units import hsa_ids
from adapter.scheduler import scheduler_service
from adapter.settings import get_settings


@app.command("serve")
def serve(
    host: Annotated[
        str | None,
        typer.Option("--host", help="Adress att lyssna på (standard: SIP_FHIR_API_HOST)."),
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", help="Port (standard: SIP_FHIR_API_PORT).")
    ] = None,
) -> None:
    """Starta API-tjänsten (FastAPI). API-beskrivningen finns på /docs."""
    settings = get_settings()
    logs.configure(settings.log_level, settings.log_json)
    try:
        api = create_app(settings, hooks=[scheduler_service])  # off: SIP_FHIR_SCHEDULER=off
    except (ApiKeyError, ValueError) as error:
        typer.echo(f"Kan inte starta: {error}", err=True)
        raise typer.Exit(2) from None
    # uvicorn's own access log prints raw request lines (query strings included) outside the
    # masking logger: the app logs each request itself instead.
    uvicorn.run(
        api,
        host=host or settings.api_host,
        port=port or settings.api_port,
        access_log=False,
        server_header=False,
    )


@app.command("api-key")
def api_key(
    name: Annotated[
        str, typer.Option("--name", help="Vem eller vad nyckeln är till, t.ex. prea60-import.")
    ],
    role: Annotated[Role, typer.Option("--role", help="Nyckelns roll.")],
    unit: Annotated[
        list[str] | None,
        typer.Option(
            "--unit",
            help="HSA-id för en enhet nyckeln gäller (kan upprepas). En integrationsnyckel "
            "utan --unit gäller hela regionen.",
            callback=hsa_ids,
        ),
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="Nyckelfilen (standard: SIP_FHIR_API_KEYS_FILE).")
    ] = None,
) -> None:
    """Skapa en API-nyckel. Nyckeln skrivs ut en gång; filen sparar bara dess sha256-summa."""
    path = file or get_settings().api_keys_file
    if path is None:
        typer.echo("Ange --file eller sätt SIP_FHIR_API_KEYS_FILE.", err=True)
        raise typer.Exit(2)
    problem = _unit_problem(role, unit or [])
    if problem:
        typer.echo(problem, err=True)
        raise typer.Exit(2)
    key = new_key()
    try:
        add_entry(path, key, ApiKeyEntry(name=name, role=role, units=unit or []))
    except ApiKeyError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from None
    typer.echo(key)
    typer.echo(
        f"Nyckeln '{name}' ({role}) är sparad som hash i {path}; den visas bara nu.", err=True
    )


def _unit_problem(role: Role, units: list[str]) -> str | None:
    """A key whose units would not mean what its maker thinks (Swedish), else None."""
    if role is Role.VARDSAMORDNARE and not units:
        return "En nyckel med rollen vardsamordnare behöver minst en --unit (enhetens HSA-id)."
    if role is Role.ADMIN and units:
        return "En admin-nyckel gäller alla enheter; ange inte --unit."
    return None
