"""The answer page without a FHIR server: a server that does not take the answer leaves the
code unused (the patient can try again), a form error costs no code, and the page tells
nothing about anyone."""

from __future__ import annotations

import re
import socket
from datetime import date
from pathlib import Path

from fastapi.testclient import TestClient

from adapter.api import create_app
from adapter.settings import Settings

UNIT = "SE2321000057-E00000000101"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # closed again when the block ends


def app_without_server(tmp_path: Path) -> TestClient:
    settings = Settings(
        base_url=f"http://127.0.0.1:{closed_port()}/fhir",
        data_dir=tmp_path,
        scheduler=False,
        max_attempts=1,
    )
    return TestClient(create_app(settings, readiness_checks={}), raise_server_exceptions=False)


def post(client: TestClient, form: dict[str, str]) -> object:
    page = client.get("/enkat")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token
    return client.post("/enkat", data=form | {"csrf": token[1]})


def test_a_lost_answer_leaves_the_code_usable_and_a_form_error_costs_nothing(
    tmp_path: Path,
) -> None:
    client = app_without_server(tmp_path)
    state = client.app.state.survey  # type: ignore[attr-defined]
    code = state.codes.issue(UNIT, date(2025, 2, 20), "careplan-1", "patient-1")
    answers = {q.link_id: "ja-helt" for q in state.survey.questions}

    incomplete = post(client, {"code": code} | dict(list(answers.items())[:-1]))
    assert incomplete.status_code == 400  # type: ignore[attr-defined]
    assert state.survey.questions[-1].text in incomplete.text  # type: ignore[attr-defined]
    assert not state.codes.lookup(code).answered

    lost = post(client, {"code": code} | answers)
    assert lost.status_code == 503  # type: ignore[attr-defined]
    assert "koden gäller fortfarande" in lost.text  # type: ignore[attr-defined]
    assert not state.codes.lookup(code).answered

    page = client.get("/enkat")
    assert page.headers["cache-control"] == "no-store"
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert UNIT not in page.text  # the page knows no unit before a code is typed
