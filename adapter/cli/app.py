"""The typer application; command groups register themselves from their own modules."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="sip-fhir",
    help="sip-fhir: SIP, patientkontrakt och Prea60-uppföljning som FHIR R4.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold personnummer
)
