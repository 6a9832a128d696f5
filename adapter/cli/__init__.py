"""Command line: `sip-fhir`. Each module below registers its commands on `app` when imported;
`adapter.cli.app.COMMANDS` says which module holds which command, so only the one run is loaded."""

from adapter.cli.app import app

__all__ = ["app"]
