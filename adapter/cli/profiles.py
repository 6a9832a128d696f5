"""`sip-fhir profiles install`: the project's profiles, code systems and value sets → server."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from adapter.cli.app import app
from adapter.cli.tables import counts_by_type
from adapter.conformance import ConformanceError, ConformanceResource, install_conformance
from adapter.fhirclient import FhirClient, FhirError
from adapter.settings import get_settings

EXIT_OK, EXIT_FAILED = 0, 1

profiles_app = typer.Typer(
    help="FHIR-profiler, kodverk och värdemängder (profiles/).", no_args_is_help=True
)
app.add_typer(profiles_app, name="profiles")


@profiles_app.command("install")
def install_command(
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="Katalog med profilerna (standard: SIP_FHIR_PROFILES_DIR)."),
    ] = None,
    version: Annotated[
        str | None,
        typer.Option(
            "--canonical-version",
            help="Installera under versionerade kanoniska URL:er och egna id "
            "(standard: SIP_FHIR_PROFILE_VERSION; i sandlådeläge package.json:s version).",
        ),
    ] = None,
) -> None:
    """Installera profilerna på FHIR-servern (SIP_FHIR_BASE_URL). Kan köras om: oförändrat
    innehåll ger ingen ny version."""
    settings = get_settings()
    out, err = Console(), Console(stderr=True)

    def progress(item: ConformanceResource) -> None:
        err.print(f"  {item.resource_type}/{item.id}", highlight=False)

    try:
        with FhirClient(settings.endpoint()) as client:
            client.capabilities()  # fail early, with a clear message, on a non-R4 server
            summary = install_conformance(
                client,
                directory or settings.profiles_dir,
                on_resource=progress,
                version=version or settings.profile_version,
            )
    except (ConformanceError, FhirError, OSError) as error:
        err.print(f"[bold red]Profilerna kunde inte installeras:[/] {error}")
        raise typer.Exit(EXIT_FAILED) from None
    headers = ("Nya", "Uppdaterade eller oförändrade")
    title = f"Profiler på {settings.base_url}"
    out.print(counts_by_type(title, headers, summary.created, summary.written))
    out.print(f"{summary.total} resurser installerade.")
    for resource_type, count in sorted(summary.reused.items()):
        out.print(f"{count} {resource_type} fanns redan på servern under samma URL och används.")
