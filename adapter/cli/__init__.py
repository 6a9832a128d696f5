"""Command line: `sip-fhir`. Each module below registers one command group on `app`."""

from adapter.cli import (
    serve,  # noqa: F401  (registers `sip-fhir serve`, `sip-fhir api-key`)
    server,  # noqa: F401  (registers `sip-fhir server`)
    synth,  # noqa: F401  (registers `sip-fhir synth`)
)
from adapter.cli.app import app

__all__ = ["app"]
