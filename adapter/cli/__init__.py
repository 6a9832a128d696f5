"""Command line: `sip-fhir`. Each module below registers one command group on `app`."""

from adapter.cli import (
    followups,  # noqa: F401  (registers `sip-fhir followups`, `subscriptions`, `scheduler`)
    indicators,  # noqa: F401  (registers `sip-fhir indicators`)
    map,  # noqa: F401, A004  (registers `sip-fhir map`)
    prea60,  # noqa: F401  (registers `sip-fhir prea60 list|confirm|reject`)
    profiles,  # noqa: F401  (registers `sip-fhir profiles install`)
    purge,  # noqa: F401  (registers `sip-fhir purge`)
    report,  # noqa: F401  (registers `sip-fhir report`)
    serve,  # noqa: F401  (registers `sip-fhir serve`, `sip-fhir api-key`)
    server,  # noqa: F401  (registers `sip-fhir server`)
    survey,  # noqa: F401  (registers `sip-fhir survey install|issue|answer|report`)
    sync,  # noqa: F401  (registers `sip-fhir import`, `sip-fhir sync`)
    synth,  # noqa: F401  (registers `sip-fhir synth`)
)
from adapter.cli.app import app

__all__ = ["app"]
