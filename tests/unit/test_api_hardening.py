"""The small API hardening items of issue 10.8 that need no FHIR server: login CSRF (a foreign
Origin), X-Request-ID in the audit log, /readyz on an audit log that cannot be written, the
demo's key file. The others (personnummer in URLs, /healthz under load, every row rejected)
run on the real server: tests/integration/test_api_hardening.py."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from adapter.api import create_app
from adapter.api.apikeys import ApiKeyEntry, ApiKeyStore, add_entry, new_key
from adapter.api.principal import Role
from adapter.api.readiness import default_checks
from adapter.api.sessions import COOKIE
from adapter.audit import AuditKind, AuditLog
from adapter.settings import REPO_ROOT, Settings
from tests.support.app import OWN_UNIT, PURPOSE, VARDSAMORDNARE, Service
from tests.support.pages import Service as PagesService
from tests.support.pages import login, make_pages_service
from tests.support.records import UNIT
from tests.support.stderr import logging_to_current_stderr
from tests.support.worklist import LATE, NO_PLAN


@pytest.fixture(autouse=True)
def _logging() -> Iterator[None]:
    with logging_to_current_stderr():
        yield


# --- login CSRF ---


@pytest.fixture
def pages_service(tmp_path: Path) -> PagesService:
    return make_pages_service(tmp_path)


@pytest.fixture
def pages(tmp_path: Path) -> tuple[TestClient, str]:
    keys = tmp_path / "keys.json"
    key = new_key()
    add_entry(keys, key, ApiKeyEntry(name="vera", role=Role.VARDSAMORDNARE, units=[OWN_UNIT]))
    settings = Settings(
        data_dir=tmp_path / "data",
        api_keys_file=keys,
        scheduler=False,
        ui_origins=["https://arbetslista.region.example"],
    )
    app = create_app(settings, audit_log=AuditLog(tmp_path / "audit.sqlite"), readiness_checks={})
    return TestClient(app, base_url="http://sip.local:8000"), key


def post_login(client: TestClient, key: str, headers: dict[str, str]) -> Response:
    """The log-in form posted with the care purpose and `headers` (Origin, Referer)."""
    return client.post(
        "/ui/login",
        data={"api_key": key, "purpose": "vard"},
        headers=headers,
        follow_redirects=False,
    )


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},  # a page that hides where it is
        {"Origin": "http://sip.local:8001"},  # another port is another origin
        {"Referer": "https://evil.example/login-csrf.html"},
    ],
)
def test_a_login_posted_from_another_site_is_refused(
    pages: tuple[TestClient, str], headers: dict[str, str]
) -> None:
    client, key = pages
    answer = post_login(client, key, headers)
    assert answer.status_code == 403 and "annan webbplats" in answer.text
    assert COOKIE not in answer.headers.get("set-cookie", "")
    assert len(client.app.state.page_sessions) == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://sip.local:8000"},
        {"Referer": "http://sip.local:8000/ui/login"},
        {"Origin": "https://arbetslista.region.example"},  # SIP_FHIR_UI_ORIGINS (a proxy)
        {},  # no browser
    ],
)
def test_a_login_from_the_services_own_page_is_accepted(
    pages: tuple[TestClient, str], headers: dict[str, str]
) -> None:
    client, key = pages
    answer = post_login(client, key, headers)
    assert answer.status_code == 303, answer.text
    assert COOKIE in answer.headers["set-cookie"]


# --- the worklist page ---


def test_the_worklist_page_carries_no_full_personnummer(
    pages_service: PagesService,
) -> None:
    page = login(pages_service, Role.VARDSAMORDNARE).get(f"/ui/units/{UNIT}")
    assert page.status_code == 200
    for person in (LATE, NO_PLAN):
        digits = person.digits
        assert digits not in page.text and f"{digits[:8]}-{digits[8:]}" not in page.text
        assert f"{digits[:8]}-****" in page.text  # the row, masked
    # the text filter (on the server) takes the birth date; the full number is never echoed
    found = login(pages_service, Role.VARDSAMORDNARE).get(
        f"/ui/units/{UNIT}", params={"q": LATE.digits[:8]}
    )
    assert f"{LATE.digits[:8]}-****" in found.text and NO_PLAN.digits[:8] not in found.text


# --- X-Request-ID ---


@pytest.mark.parametrize(
    "incoming",
    [
        "19400402-9973",  # a personnummer, stored and echoed as the request's id
        "SE194004029973",
        "<script>alert(1)</script>",
        "x" * 65,
        "id\nforged audit line",
    ],
)
def test_an_unsafe_request_id_is_replaced_before_the_audit_log(
    tmp_path: Path, incoming: str
) -> None:
    service = Service(tmp_path)
    client = service.login(VARDSAMORDNARE)
    answer = client.get(
        f"/units/{OWN_UNIT}/patients", headers={**PURPOSE, "X-Request-ID": incoming}
    )
    assert answer.status_code == 200
    stored = {e.request_id for e in service.events(AuditKind.PATIENT_READ)}
    assert stored == {answer.headers["X-Request-ID"]}
    assert incoming not in stored and len(stored.pop()) == 32  # a new uuid4 hex


def test_a_safe_request_id_of_a_proxy_is_kept_in_the_audit_log(tmp_path: Path) -> None:
    service = Service(tmp_path)
    client = service.login(VARDSAMORDNARE)
    answer = client.get(
        f"/units/{OWN_UNIT}/patients", headers={**PURPOSE, "X-Request-ID": "lb-7f3a.91_x"}
    )
    assert {e.request_id for e in service.events(AuditKind.PATIENT_READ)} == {"lb-7f3a.91_x"}
    assert answer.headers["X-Request-ID"] == "lb-7f3a.91_x"


# --- /readyz and the audit log ---


def readyz(tmp_path: Path, audit: AuditLog) -> tuple[int, dict[str, str]]:
    checks = default_checks(Settings(data_dir=tmp_path), audit)
    checks = {"audit": checks["audit"]}  # the FHIR server and the outbox are not the point
    app = create_app(Settings(data_dir=tmp_path), audit_log=audit, readiness_checks=checks)
    answer = TestClient(app).get("/readyz")
    return answer.status_code, answer.json()["checks"]


def test_readyz_is_ok_when_the_audit_log_can_be_written(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit.sqlite")
    assert readyz(tmp_path, audit) == (200, {"audit": "ok"})
    assert audit.search() == []  # the test write was rolled back


def test_readyz_is_not_ready_while_the_audit_log_cannot_be_written(tmp_path: Path) -> None:
    """Another writer holds the lock (a stuck process): reads still work, writes do not."""
    audit = AuditLog(tmp_path / "audit.sqlite")
    with closing(sqlite3.connect(audit.path, isolation_level=None)) as other:
        other.execute("BEGIN EXCLUSIVE")
        audit.search()  # reading alone passes: what /readyz checked before
        assert readyz(tmp_path, audit) == (503, {"audit": "fel"})
        other.execute("ROLLBACK")
    assert readyz(tmp_path, audit) == (200, {"audit": "ok"})


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes read-only files")
def test_readyz_is_not_ready_when_the_audit_file_is_read_only(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit.sqlite")
    audit.path.chmod(0o400)
    try:
        assert readyz(tmp_path, audit) == (503, {"audit": "fel"})
    finally:
        audit.path.chmod(0o600)


# --- the demo's API key ---


def test_the_demo_writes_its_api_key_readable_by_the_owner_only(tmp_path: Path) -> None:
    keys_file = tmp_path / "api-keys.json"
    key_file = tmp_path / "demo-api-key.txt"
    env = {
        **os.environ,
        "SIP_FHIR_CLI": str(Path(sys.executable).with_name("sip-fhir")),
        "SIP_FHIR_API_KEYS_FILE": str(keys_file),
        "PYTHONPATH": str(REPO_ROOT),
    }
    script = REPO_ROOT / "deploy" / "demo-key.sh"

    def demo_key() -> subprocess.CompletedProcess[str]:
        command = ["bash", str(script), str(key_file), OWN_UNIT]
        return subprocess.run(command, env=env, capture_output=True, text=True, check=True)

    old_umask = os.umask(0o022)  # as a default shell has it
    try:
        first = demo_key()
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        key = first.stdout.strip()
        assert key == key_file.read_text().strip()
        assert ApiKeyStore.load(keys_file).principal_for(key) is not None
        key_file.chmod(0o644)  # a key file an older demo left world-readable
        again = demo_key()
    finally:
        os.umask(old_umask)
    assert again.stdout.strip() == key  # the same key shown again, not a new one
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
