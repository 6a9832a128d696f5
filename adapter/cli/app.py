"""The typer application; command groups register themselves from their own modules."""

from __future__ import annotations

import typer
from rich.console import Console

from adapter import logs
from adapter.settings import get_settings

app = typer.Typer(
    name="sip-fhir",
    help="sip-fhir: SIP, patientkontrakt och Prea60-uppföljning som FHIR R4.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold personnummer
)


@app.callback()
def main() -> None:
    """sip-fhir: SIP, patientkontrakt och Prea60-uppföljning som FHIR R4."""
    settings = get_settings()
    logs.configure(level=settings.log_level, json=settings.log_json)
    if settings.run_tag:
        Console(stderr=True).print(
            f"Körningens tagg: [bold]{settings.run_tag}[/] (allt som skrivs märks med den; "
            f"ta bort det med sip-fhir purge --tag {settings.run_tag})",
            highlight=False,
        )
