"""Issue 10.4: a partial Prea60 upload must not wipe a unit's work. Replays the incident against
the real HAPI server: a unit's full run (25 rows, 22 in the risk group, 22 Tasks), then a 3-row
upload of the next week. The upload is stored unconfirmed (RiskAssessment.status preliminary,
valid against the profile), the next scan cancels nothing, and only a person with the right role
confirms it (CLI, API, worklist banner with CSRF) or rejects it; every decision is audited."""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from adapter.api.sessions import COOKIE
from adapter.audit import AuditKind
from adapter.cli import app
from adapter.domain import PersonId
from adapter.fhirclient import FhirClient
from adapter.followup.load import newest_run
from adapter.followup.reconcile import FollowupReport
from adapter.followup.service import FollowupService
from adapter.settings import get_settings
from tests.support.api import PREA60_HEADER, Service, make_service
from tests.support.people import fictional_person
from tests.support.profiles import errors

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("profiles_installed")]

FULL_RUN, PARTIAL_RUN = date(2024, 12, 9), date(2024, 12, 16)
AS_OF = date(2024, 12, 17)
Json = dict[str, Any]


@dataclass
class Unit:
    hsa_id: str
    people: list[PersonId]  # the first 22 in the risk group, the last 3 below it
    tmp: Path

    def csv(self, run: date, people: list[PersonId], name: str) -> Path:
        lines = [PREA60_HEADER]
        for i, p in enumerate(people):
            risk = "23,5" if i < 22 and p in self.people[:22] else "5,0"
            lines.append(
                f"{p.digits[:8]}-{p.digits[8:]};Test, Person;{risk};{run.isoformat()};"
                f"{self.hsa_id};Testenhetens vårdcentral;SE2321000057-P00000000021"
            )
        path = self.tmp / name
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path


def cli(monkeypatch: pytest.MonkeyPatch, service: Service, *args: str) -> Any:
    monkeypatch.setenv("SIP_FHIR_BASE_URL", service.settings.base_url)
    monkeypatch.setenv("SIP_FHIR_DATA_DIR", str(service.settings.data_dir))
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(app, list(args))
    finally:
        get_settings.cache_clear()


def statuses(client: FhirClient, unit: str, run: date) -> list[str]:
    params = [("unit", f"urn:oid:1.2.752.29.4.19|{unit}"), ("date", run.isoformat())]
    return sorted(r["status"] for r in client.search("RiskAssessment", params, post=True))


def open_tasks(client: FhirClient, unit: str) -> int:
    """The unit's open Tasks (a fictional person may also be listed elsewhere on the server)."""
    params = [("unit", f"urn:oid:1.2.752.29.4.19|{unit}"), ("status", "requested")]
    return len(list(client.search("Task", [*params, ("_count", "200")], post=True)))


@pytest.fixture
def unit(
    tmp_path: Path,
    hapi_base_url: str,
    fhir_client: FhirClient,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[Unit, Service]]:
    """A unit whose full run is imported (trusted: its first) and scanned: 22 open Tasks;
    then the 3-row upload of the next week, through `sip-fhir import`."""
    rng = random.Random(uuid.uuid4().int)
    hsa_id = f"SE2321000057-E{uuid.uuid4().hex[:12].upper()}"
    found = Unit(hsa_id, [fictional_person(rng) for _ in range(25)], tmp_path)
    service = make_service(tmp_path, hapi_base_url, hsa_id)
    full = found.csv(FULL_RUN, found.people, "prea60-full.csv")
    result = cli(monkeypatch, service, "import", str(full))
    assert result.exit_code == 0, result.output
    assert set(statuses(fhir_client, hsa_id, FULL_RUN)) == {"final"}
    scan_unit(service, hsa_id)
    assert open_tasks(fhir_client, hsa_id) == 22
    yield found, service


def scan_unit(service: Service, unit: str) -> FollowupReport:
    report = FollowupService(service.settings).run(units=[unit], as_of=AS_OF)
    assert report.errors == [], report.errors
    return report


def import_partial(monkeypatch: pytest.MonkeyPatch, found: Unit, service: Service) -> Any:
    partial = found.csv(PARTIAL_RUN, found.people[:3], "prea60-partial.csv")
    return cli(monkeypatch, service, "import", str(partial))


def test_a_partial_upload_is_stored_unconfirmed_and_cancels_nothing(
    unit: tuple[Unit, Service], fhir_client: FhirClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    found, service = unit
    result = import_partial(monkeypatch, found, service)
    assert result.exit_code == 4, result.output
    said = " ".join(result.output.split())  # as one line (rich wraps at the terminal width)
    assert "lagrad som obekräftad och används inte" in said
    assert "19 av 22 patienter i riskgruppen" in said
    assert "3 rader mot 25" in said
    assert f"sip-fhir prea60 confirm --unit {found.hsa_id} --run {PARTIAL_RUN}" in said
    assert statuses(fhir_client, found.hsa_id, PARTIAL_RUN) == ["preliminary"] * 3
    # Still a valid Prea60 RiskAssessment ($validate against the profile on the server).
    (one, *_) = fhir_client.search(
        "RiskAssessment",
        [("unit", f"urn:oid:1.2.752.29.4.19|{found.hsa_id}"), ("date", PARTIAL_RUN.isoformat())],
        post=True,
    )
    stored = {k: v for k, v in one.items() if k not in ("id", "meta")}
    outcome = fhir_client.validate(stored, one["meta"]["profile"][0])
    assert errors(outcome) == [], outcome
    # The unit's newest run is still the full one: the scan cancels nothing.
    assert newest_run(fhir_client, found.hsa_id, AS_OF) == FULL_RUN
    report = scan_unit(service, found.hsa_id)
    assert report.cancelled == [] and report.held == [] and report.changes == 0
    assert open_tasks(fhir_client, found.hsa_id) == 22
    # A re-import of the same upload changes nothing.
    again = import_partial(monkeypatch, found, service)
    assert again.exit_code == 4, again.output
    assert statuses(fhir_client, found.hsa_id, PARTIAL_RUN) == ["preliminary"] * 3

    listed = cli(monkeypatch, service, "prea60", "list", "--unit", found.hsa_id)
    assert listed.exit_code == 0 and PARTIAL_RUN.isoformat() in listed.output, listed.output


def test_the_cli_rejects_and_the_run_is_never_used(
    unit: tuple[Unit, Service], fhir_client: FhirClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    found, service = unit
    import_partial(monkeypatch, found, service)
    args = ("--unit", found.hsa_id, "--run", PARTIAL_RUN.isoformat())
    result = cli(monkeypatch, service, "prea60", "reject", *args)
    assert result.exit_code == 0, result.output
    assert "avvisad (3 rader)" in result.output
    assert statuses(fhir_client, found.hsa_id, PARTIAL_RUN) == ["entered-in-error"] * 3
    assert cli(monkeypatch, service, "prea60", "confirm", *args).exit_code == 2  # nothing left
    assert scan_unit(service, found.hsa_id).changes == 0
    (entry,) = [e for e in service.audit.search() if e.kind is AuditKind.PREA60_RUN]
    assert entry.unit == found.hsa_id and entry.detail == f"reject run={PARTIAL_RUN} rows=3"
    assert entry.subject.startswith("cli:")


def test_only_a_vardsamordnare_of_the_unit_or_an_admin_may_confirm(
    unit: tuple[Unit, Service], fhir_client: FhirClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    found, service = unit
    import_partial(monkeypatch, found, service)
    url = f"/units/{found.hsa_id}/prea60/{PARTIAL_RUN}/confirm"
    with service.client() as client:
        for key in (service.keys.integration, service.keys.other_unit):
            answer = client.post(url, headers={"X-API-Key": key})
            assert answer.status_code == 403, answer.text
        assert statuses(fhir_client, found.hsa_id, PARTIAL_RUN) == ["preliminary"] * 3

        auth = {"X-API-Key": service.keys.vardsamordnare}
        (pending,) = client.get(f"/units/{found.hsa_id}/prea60/unconfirmed", headers=auth).json()
        assert (pending["run"], pending["rows"], pending["dropped"]) == (str(PARTIAL_RUN), 3, 19)
        answer = client.post(url, headers=auth)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["rows"] == 3 and body["decision"] == "confirm"
    # Confirmed, the run is the unit's newest; the scan right after would cancel 19 Tasks at
    # once: more than the cap (10), so it keeps them open and says so.
    assert statuses(fhir_client, found.hsa_id, PARTIAL_RUN) == ["final"] * 3
    assert newest_run(fhir_client, found.hsa_id, AS_OF) == PARTIAL_RUN
    assert (body["held"], body["cancelled"]) == (19, 0)
    assert "--confirm-cancellations" in body["message"]
    (entry,) = [e for e in service.audit.search() if e.kind is AuditKind.PREA60_RUN]
    assert entry.actor == "Vera Vårdsamordnare" and entry.unit == found.hsa_id
    assert entry.detail == f"confirm run={PARTIAL_RUN} rows=3"


def _login(client: TestClient, key: str) -> str:
    answer = client.post(
        "/ui/login", data={"api_key": key, "purpose": "uppfoljning"}, follow_redirects=False
    )
    assert answer.status_code == 303 and client.cookies.get(COOKIE), answer.text
    return answer.text


def test_the_worklist_banner_confirms_with_the_csrf_token(
    unit: tuple[Unit, Service], fhir_client: FhirClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    found, service = unit
    import_partial(monkeypatch, found, service)
    with service.client() as client:
        _login(client, service.keys.vardsamordnare)
        page = client.get(f"/ui/units/{found.hsa_id}").text
        assert f"Obekräftad Prea60-körning {PARTIAL_RUN}" in page
        assert "19 av 22 patienter" in page
        action = f"/ui/units/{found.hsa_id}/prea60/{PARTIAL_RUN}/confirm"
        assert f'action="{action}"' in page
        # A forged form (no or a wrong token) changes nothing.
        assert client.post(action, data={"csrf": "fel"}).status_code == 403
        assert statuses(fhir_client, found.hsa_id, PARTIAL_RUN) == ["preliminary"] * 3
        token = re.search(r'name="csrf" value="([^"]+)"', page)
        assert token is not None
        answer = client.post(action, data={"csrf": token.group(1)}, follow_redirects=False)
        assert answer.status_code == 303, answer.text
        after = client.get(f"/ui/units/{found.hsa_id}").text
    assert "är bekräftad (3 rader)" in after  # the flash message
    assert "Obekräftad Prea60-körning" not in after  # the banner is gone
    assert statuses(fhir_client, found.hsa_id, PARTIAL_RUN) == ["final"] * 3


def test_the_ingest_api_says_the_run_is_unconfirmed_and_why(
    unit: tuple[Unit, Service], fhir_client: FhirClient
) -> None:
    found, service = unit
    body = found.csv(PARTIAL_RUN, found.people[:3], "prea60-api.csv").read_bytes()
    with service.client() as client:
        answer = client.post(
            "/ingest/prea60",
            files={"file": ("prea60-api.csv", body, "text/csv")},
            headers={"X-API-Key": service.keys.integration},
        )
        assert answer.status_code == 200, answer.text
        (said,) = answer.json()["unconfirmed_runs"]
        assert "lagrad som obekräftad" in said and "19 av 22 patienter" in said
        # The integration key that sent it cannot confirm it.
        url = f"/units/{found.hsa_id}/prea60/{PARTIAL_RUN}/confirm"
        assert client.post(url, headers={"X-API-Key": service.keys.integration}).status_code == 403
    assert statuses(fhir_client, found.hsa_id, PARTIAL_RUN) == ["preliminary"] * 3
