"""Schemathesis against the OpenAPI description: generated requests to every operation of the
API, which runs against the real local HAPI server, never answer 5xx.

Logged in with an admin API key (the one role that reaches every operation) and a valid
`X-Purpose`, so the generated values reach the routes' own logic instead of stopping at the
login; nothing is stubbed. Bounded: a few examples per operation, derandomized, so a run takes
well under two minutes and the same cases run each time.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from adapter.api import create_app
from adapter.settings import Settings
from tests.support.api import Service, make_service

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("profiles_installed")]

UNIT = "SE2321000057-E00000000001"


@pytest.fixture(scope="module")
def fuzzed_service(
    tmp_path_factory: pytest.TempPathFactory,
    hapi_base_url: str,
    profiles_installed: None,
) -> Iterator[Service]:
    yield make_service(Path(tmp_path_factory.mktemp("schemathesis")), hapi_base_url, UNIT)


def openapi() -> dict[str, Any]:
    """The OpenAPI description, which does not depend on the settings: taken from an app of
    its own at collection time (schemathesis' lazy fixture loader does not run on this pytest),
    while the cases are sent to the service on the real server (`call(app=...)`)."""
    with tempfile.TemporaryDirectory() as scratch:
        app = create_app(Settings(data_dir=Path(scratch)), readiness_checks={})
        return app.openapi()


schema = schemathesis.openapi.from_dict(openapi())
# A JSON Lines body is text, sent as it is generated (as for text/plain).
schemathesis.serializer.alias("application/x-ndjson", "text/plain")


@schema.parametrize()
@settings(
    max_examples=5,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_no_operation_answers_5xx(case: schemathesis.Case, fuzzed_service: Service) -> None:
    headers = {"X-API-Key": fuzzed_service.keys.admin, "X-Purpose": "kvalitet"}
    if case.headers:  # a generated bearer token beside the key would only ever answer 401
        case.headers.pop("Authorization", None)
    case.call_and_validate(app=fuzzed_service.app, headers=headers, checks=[not_a_server_error])
