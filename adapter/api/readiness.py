"""Readiness: can the service do its work? Each check is a function that raises when not.

Defaults: the FHIR server answers its CapabilityStatement (R4), the outbox can be queried, and
the audit log can be written (a rolled-back write: reading alone passes on a read-only file).
`create_app(readiness_checks=...)` replaces them (tests, other deployments);
`app.state.readiness_checks` can be extended before the service starts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from adapter.audit import AuditLog
from adapter.logs import get_logger
from adapter.settings import Settings

ReadinessCheck = Callable[[], object]

_log = get_logger("adapter.api.readiness")


def _lazy(build: Callable[[], Callable[[], object]]) -> ReadinessCheck:
    """A check whose dependency is built on first use (and again after a failed build)."""
    built: list[Callable[[], object]] = []

    def check() -> object:
        if not built:
            built.append(build())
        return built[0]()

    return check


def fhir_server_check(settings: Settings) -> ReadinessCheck:
    def build() -> Callable[[], Any]:
        from adapter.fhirclient import FhirClient  # imported on use: the API starts without it

        # One quick attempt: a probe must answer within the orchestrator's timeout.
        endpoint = settings.endpoint().model_copy(
            update={"max_attempts": 1, "connect_timeout": 2.0, "read_timeout": 5.0}
        )
        return FhirClient(endpoint).capabilities

    return _lazy(build)


def outbox_check(settings: Settings) -> ReadinessCheck:
    def build() -> Callable[[], Any]:
        from adapter.sync.outbox import Outbox, outbox_url

        return Outbox(outbox_url(settings)).open_count

    return _lazy(build)


def default_checks(settings: Settings, audit_log: AuditLog) -> dict[str, ReadinessCheck]:
    return {
        "fhir": fhir_server_check(settings),
        "outbox": outbox_check(settings),
        "audit": audit_log.check,
    }


def run_checks(checks: Mapping[str, ReadinessCheck]) -> dict[str, bool]:
    """Each check's outcome; failures are logged (masked), not returned: they may name hosts."""
    results: dict[str, bool] = {}
    for name, check in checks.items():
        try:
            check()
            results[name] = True
        except Exception as error:
            _log.warning("not ready", check=name, error=str(error))
            results[name] = False
    return results
