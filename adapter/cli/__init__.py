"""Command line: `sip-fhir`. The command modules (`adapter/cli/*.py`) register their commands on
`app` when imported; `adapter.cli.app.COMMANDS` says which module holds which command, so only
the one that runs is loaded."""

from adapter.cli.app import app

__all__ = ["app"]
