"""`sip-fhir server check` against the local HAPI server."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from adapter.cli import app

pytestmark = pytest.mark.integration


def test_check_reports_the_local_hapi_server(hapi_base_url: str) -> None:
    result = CliRunner().invoke(app, ["server", "check", "--base-url", hapi_base_url])
    assert result.exit_code == 0, result.output
    assert "HAPI" in result.output
    assert "4.0.1" in result.output
