"""The subscription hook (/fhir-hook) and the notification worker, without a FHIR server: who may
call, what is accepted, and how notifications for many patients are coalesced into runs. The
delivery from a real HAPI server is tested in tests/integration/test_subscription.py."""

from __future__ import annotations

import json
import threading
import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapter.api import create_app
from adapter.followup import subscriptions
from adapter.followup.reconcile import FollowupReport
from adapter.followup.service import FollowupService
from adapter.followup.subscriptions import HOOK_HEADER, HOOK_PATH
from adapter.settings import Settings

SECRET = "s3cret-for-tests"
PROCEDURE = {"resourceType": "Procedure", "id": "12", "subject": {"reference": "Patient/7"}}


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recorded = Recorder()

    def notified(self: FollowupService, kind: str, rid: str, resource: Any) -> None:
        recorded.calls.append((kind, rid, resource))

    monkeypatch.setattr(FollowupService, "notified", notified)
    return recorded


def client_for(tmp_path: Path, secret: str | None = SECRET) -> TestClient:
    settings = Settings(data_dir=tmp_path, hook_secret=secret, scheduler=False)
    return TestClient(create_app(settings, readiness_checks={}))


def put(client: TestClient, path: str, body: Any = PROCEDURE, **headers: str) -> Any:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.put(f"{HOOK_PATH}{path}", content=content, headers=headers)


def test_a_notification_with_the_secret_queues_the_resource(
    tmp_path: Path, recorder: Recorder
) -> None:
    answer = put(client_for(tmp_path), "/Procedure/12", **{HOOK_HEADER: SECRET})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/fhir+json")
    assert answer.json()["resourceType"] == "OperationOutcome"
    assert recorder.calls == [("Procedure", "12", PROCEDURE)]


def test_an_empty_body_is_read_from_the_server_later(tmp_path: Path, recorder: Recorder) -> None:
    client = client_for(tmp_path)
    answer = client.post(f"{HOOK_PATH}/Encounter/5", headers={HOOK_HEADER: SECRET})
    assert answer.status_code == 200
    assert recorder.calls == [("Encounter", "5", None)]
    ping = client.post(HOOK_PATH, headers={HOOK_HEADER: SECRET})
    assert ping.status_code == 200 and len(recorder.calls) == 1


@pytest.mark.parametrize("headers", [{}, {HOOK_HEADER: "wrong"}, {HOOK_HEADER: SECRET + "x"}])
def test_without_the_secret_nothing_happens(
    tmp_path: Path, recorder: Recorder, headers: dict[str, str]
) -> None:
    assert put(client_for(tmp_path), "/Procedure/12", **headers).status_code == 401
    assert recorder.calls == []


def test_without_a_configured_secret_the_hook_is_off(tmp_path: Path, recorder: Recorder) -> None:
    answer = put(client_for(tmp_path, secret=None), "/Procedure/12", **{HOOK_HEADER: ""})
    assert answer.status_code == 503
    assert "SIP_FHIR_HOOK_SECRET" in answer.json()["detail"]
    assert recorder.calls == []


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/Patient/12", PROCEDURE, 404),  # not a watched type
        ("/Procedure/a%20b", PROCEDURE, 404),  # not an id
        ("/Procedure/12", {"resourceType": "Encounter"}, 400),
        ("/Procedure/12", b"{not json", 400),
        ("/Procedure/12", [1, 2], 400),
    ],
)
def test_what_is_not_a_watched_resource_is_refused(
    tmp_path: Path, recorder: Recorder, path: str, body: Any, status: int
) -> None:
    assert put(client_for(tmp_path), path, body, **{HOOK_HEADER: SECRET}).status_code == status
    assert recorder.calls == []


def test_the_hook_is_open_to_no_user_login_and_listed_in_the_api(tmp_path: Path) -> None:
    spec = client_for(tmp_path).get("/openapi.json").json()
    assert f"{HOOK_PATH}/{{resource_type}}/{{resource_id}}" in spec["paths"]


# --- the notification worker ---


def test_notifications_are_coalesced_per_round(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs: list[list[str]] = []
    first_started, release = threading.Event(), threading.Event()

    def run(self: FollowupService, **kwargs: Any) -> FollowupReport:
        runs.append(list(kwargs["patient_refs"]))
        first_started.set()
        release.wait(5)  # the first round is busy while more notifications arrive
        return FollowupReport(date(2024, 12, 10), dry_run=False)

    monkeypatch.setattr(FollowupService, "run", run)
    service = FollowupService(Settings(data_dir=tmp_path))
    service.notified("Procedure", "1", PROCEDURE)
    assert first_started.wait(5)
    for n, patient in enumerate(("Patient/8", "Patient/9", "Patient/8", "Patient/7")):
        resource = {"resourceType": "CarePlan", "subject": {"reference": patient}}
        service.notified("CarePlan", str(n), resource)
    release.set()
    deadline = time.monotonic() + 5
    while service.notified_runs < 2:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert runs == [["Patient/7"], ["Patient/7", "Patient/8", "Patient/9"]]


def test_a_resource_without_a_patient_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(FollowupService, "run", lambda self, **kw: pytest.fail("ran"))
    service = FollowupService(Settings(data_dir=tmp_path))
    service.notified("Encounter", "1", {"resourceType": "Encounter", "subject": {"display": "x"}})
    assert service._worker is None


def test_subscriptions_say_where_and_how_to_call() -> None:
    made = subscriptions.subscription("Procedure", "https://sip-fhir.example.se/", SECRET)
    assert made["id"] == "sip-fhir-followup-procedure"
    assert made["channel"] == {
        "type": "rest-hook",
        "endpoint": f"https://sip-fhir.example.se{HOOK_PATH}",
        "payload": "application/fhir+json",
        "header": [f"{HOOK_HEADER}: {SECRET}"],
    }
    assert made["criteria"].startswith("Procedure?")
    assert subscriptions.hook_url(f"https://x{HOOK_PATH}") == f"https://x{HOOK_PATH}"
    with pytest.raises(ValueError, match="hemlighet"):
        subscriptions.register(None, "https://x", "")  # type: ignore[arg-type]
