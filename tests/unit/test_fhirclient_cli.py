"""`sip-fhir server check` without a server: what the user reads when it fails or succeeds."""

from __future__ import annotations

import responses
from typer.testing import CliRunner

from adapter.cli import app

BASE = "https://fhir.test/fhir"


@responses.activate
def test_check_prints_software_version_and_resource_types() -> None:
    responses.get(
        f"{BASE}/metadata",
        json={
            "resourceType": "CapabilityStatement",
            "fhirVersion": "4.0.1",
            "software": {"name": "Testservern", "version": "9.9"},
            "rest": [{"mode": "server", "resource": [{"type": "Patient"}, {"type": "Task"}]}],
        },
    )

    responses.get(f"{BASE}/SearchParameter", json={"resourceType": "Bundle", "type": "searchset"})

    result = CliRunner().invoke(app, ["server", "check", "--base-url", BASE, "--hook-wait", "0"])
    assert result.exit_code == 0, result.output
    assert "Testservern 9.9" in result.output
    assert "4.0.1" in result.output
    assert "Resurstyper" in result.output and "2" in result.output
    # no unique-identifier rule on this server: said, with what to do
    text = " ".join(result.output.split())  # rich wraps long lines
    assert "Unika affärsidentifierare" in text and "nej" in text
    assert "Kör `sip-fhir profiles install`" in text
    assert [call.request.method for call in responses.calls] == ["GET", "GET"]  # nothing written


@responses.activate
def test_check_fails_with_the_servers_reason() -> None:
    responses.get(
        f"{BASE}/metadata",
        status=403,
        json={
            "resourceType": "OperationOutcome",
            "issue": [
                {"severity": "error", "code": "forbidden", "diagnostics": "Saknar behörighet"}
            ],
        },
    )

    result = CliRunner().invoke(app, ["server", "check", "--base-url", BASE, "--hook-wait", "0"])
    assert result.exit_code == 1
    assert "Saknar behörighet" in result.output


@responses.activate
def test_check_refuses_a_server_that_is_not_r4() -> None:
    responses.get(
        f"{BASE}/metadata", json={"resourceType": "CapabilityStatement", "fhirVersion": "5.0.0"}
    )

    result = CliRunner().invoke(app, ["server", "check", "--base-url", BASE, "--hook-wait", "0"])
    assert result.exit_code == 1
    assert "R4" in result.output
