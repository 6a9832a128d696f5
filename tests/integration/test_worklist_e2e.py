"""End to end in headless Chromium (Debian's package, driven by Playwright): the vårdsamordnare
logs in, sees the unit's worklist, sorts and filters it (on the server) with the keyboard,
marks a follow-up done, sees the Task leave the list, opens the patient and the indicators.

The service runs under uvicorn on a free loopback port against the real local HAPI server, with
the data imported through the ingest API and the Tasks made by the follow-up engine. Screenshots
are kept in .data/test-artifacts/worklist-e2e/ (the paths are printed). Never `playwright
install`: the browser is /usr/bin/chromium (deploy/setup.sh installs it).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from adapter.fhirclient import FhirClient
from adapter.indicators.store import store_snapshot
from adapter.settings import REPO_ROOT
from tests.support.api import MAPPINGS, RULES, Clinic, Service, ingest, make_service, running, today
from tests.support.net import free_port

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("profiles_installed")]

ARTIFACTS = REPO_ROOT / ".data" / "test-artifacts" / "worklist-e2e"


@pytest.fixture
def served(
    tmp_path: Path,
    hapi_base_url: str,
    profiles_installed: None,
) -> Iterator[tuple[str, Service, Clinic]]:
    clinic = Clinic.new()
    service = make_service(tmp_path, hapi_base_url, clinic.unit)
    with service.client() as client:
        ingest(client, service.keys.integration, clinic)
    service.followups(clinic.unit)
    with running(service.app, free_port()) as base_url:
        yield base_url, service, clinic


def shot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"skärmbild: {path}")  # the artefact's path, for whoever reads the log
    return path


def test_login_worklist_mark_done_and_the_task_leaves_the_list(
    served: tuple[str, Service, Clinic], page: Page
) -> None:
    base_url, service, clinic = served
    p = page
    requests: list[str] = []
    p.on("request", lambda request: requests.append(request.url))
    shutil.rmtree(ARTIFACTS, ignore_errors=True)

    # Login: the worklist is behind it.
    p.goto(f"{base_url}/ui/units/{clinic.unit}")
    expect(p).to_have_url(f"{base_url}/ui/login")
    p.get_by_label("API-nyckel").fill(service.keys.vardsamordnare)
    p.get_by_label("Syfte").select_option("uppfoljning")
    shot(p, "1-inloggning")
    p.get_by_role("button", name="Logga in").click()

    # One unit granted: straight to its list, overdue first.
    expect(p).to_have_url(f"{base_url}/ui/units/{clinic.unit}")
    table = p.get_by_role("table")
    rows = table.locator("tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text(clinic.late.name)
    expect(rows.first).to_contain_text("Försenad")
    expect(rows.first).to_have_class("overdue")
    expect(table).not_to_contain_text(clinic.low.name)  # under the threshold
    shot(p, "2-arbetslista")

    # Sort by risk with the keyboard: the header is a link, the server sorts the whole list.
    p.get_by_role("link", name="Risk", exact=True).focus()
    p.keyboard.press("Enter")
    expect(table.locator("thead th").nth(1)).to_have_attribute("aria-sort", "ascending")
    expect(rows.first).to_contain_text(clinic.sip.name)  # 17,0 %
    p.get_by_role("link", name="Risk", exact=True).focus()
    p.keyboard.press("Enter")
    expect(table.locator("thead th").nth(1)).to_have_attribute("aria-sort", "descending")
    expect(rows.first).to_contain_text(clinic.no_plan.name)  # 31,0 %

    # Filter: only the overdue (the script applies a changed filter at once).
    p.get_by_label("Bara försenade").check()
    expect(rows).to_have_count(1)
    expect(p.get_by_role("status").last).to_contain_text("Visar 1–1 av 1 patienter")
    expect(p.get_by_role("status").last).to_contain_text("filtrerat ur 3")
    expect(table.locator("thead th").nth(1)).to_have_attribute("aria-sort", "descending")
    # a personnummer typed in is sent as its birth date only
    p.get_by_label("Bara försenade").uncheck()
    expect(rows).to_have_count(3)
    p.get_by_label("Sök namn eller födelsedatum").fill(clinic.late.pnr)
    p.keyboard.press("Enter")
    expect(rows).to_have_count(1)
    late = clinic.late
    assert f"q={late.digits[:8]}&" in p.url and late.pnr not in p.url, p.url
    assert late.digits not in p.url, p.url
    p.get_by_label("Sök namn eller födelsedatum").fill("")
    p.keyboard.press("Enter")
    expect(rows).to_have_count(3)

    # Mark the overdue follow-up done: an UPPF is recorded and the Task leaves the list.
    button = p.get_by_role("button", name=f"Markera som klar: Följ upp planen, {clinic.late.name}")
    button.focus()
    p.keyboard.press("Enter")
    # the event goes through the import pipeline, then the follow-up engine: give it time
    expect(p.locator(".flash")).to_contain_text("Klart: UPPF registrerad", timeout=60_000)
    late_row = rows.filter(has_text=clinic.late.name)
    expect(late_row).not_to_contain_text("Markera som klar")
    expect(late_row).not_to_contain_text("Försenad")
    expect(late_row).to_contain_text("UPPF")  # the latest follow-up is today's
    expect(rows.filter(has_text=clinic.no_plan.name)).to_contain_text("stängs när planen")
    shot(p, "3-efter-markera-klar")

    # The patient: the plan's goals and who does what.
    late_row.get_by_role("link", name=clinic.late.name).click()
    expect(p.get_by_role("heading", level=1)).to_contain_text(clinic.late.pnr)
    expect(p.get_by_role("heading", name="Vem gör vad")).to_be_visible()
    for who in ("Patienten", "Regionen", "Kommunen", "Närstående"):
        expect(p.locator("table").first).to_contain_text(who)
    expect(p.locator("body")).to_contain_text("patientens eget mål")
    expect(p.locator("body")).to_contain_text("Patientkontrakt uppföljt")
    shot(p, "4-patient")

    # The indicators with their targets, and the trend of the weekly snapshot (taken now).
    with FhirClient(service.settings.endpoint()) as client:
        store_snapshot(client, [clinic.unit], today(), rules=RULES, mappings=MAPPINGS)
    p.goto(f"{base_url}/ui/units/{clinic.unit}/indicators")
    expect(p.get_by_role("table").first).to_contain_text("66,67 %")
    expect(p.get_by_role("img", name="Trenddiagram")).to_be_visible()
    shot(p, "5-indikatorer")

    # Everything came from the service itself: no CDN, nothing else on the network.
    assert requests and all(url.startswith(base_url) for url in requests), requests
    cookie = next(c for c in p.context.cookies() if c["name"] == "sip_fhir_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    # The pages were audited with the purpose chosen at login.
    reads = [e for e in service.audit.search(limit=1000) if e.route.startswith("/ui/")]
    assert {e.purpose for e in reads} == {"uppfoljning"}
    assert clinic.late.digits in {e.patient for e in reads}
