"""Min plan and the survey's answer page in headless Chromium (Debian's, driven by Playwright),
checked with axe-core for WCAG 2.1 A and AA (every violation fails the test), with screenshots
in .data/test-artifacts/minplan-e2e/ (screen and print media).

axe-core is pinned in tests/axe/package-lock.json; deploy/setup.sh installs it (`npm ci`)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from adapter.settings import REPO_ROOT
from adapter.survey.questionnaire import SURVEY_FILE, install_survey, load_survey
from tests.support.api import Clinic, Service, ingest, make_service, running, today
from tests.support.net import free_port

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("profiles_installed")]

AXE = REPO_ROOT / "tests" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = REPO_ROOT / ".data" / "test-artifacts" / "minplan-e2e"
WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
SURVEY = load_survey(REPO_ROOT / "mappings" / SURVEY_FILE)


@pytest.fixture
def served(
    tmp_path: Path,
    hapi_base_url: str,
    fhir_client: Any,
    profiles_installed: None,
) -> Iterator[tuple[str, Service, Clinic]]:
    clinic = Clinic.new()
    service = make_service(tmp_path, hapi_base_url, clinic.unit)
    install_survey(fhir_client, SURVEY)
    with service.client() as client:
        ingest(client, service.keys.integration, clinic)
    with running(service.app, free_port()) as base_url:
        yield base_url, service, clinic


def shot(p: Page, name: str, *, media: str = "screen") -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    p.emulate_media(media=media)  # type: ignore[arg-type]
    p.screenshot(path=str(path), full_page=True)
    p.emulate_media(media="screen")
    print(f"skärmbild: {path}")
    return path


def axe_violations(p: Page) -> list[dict[str, Any]]:
    if not AXE.exists():
        pytest.fail(f"{AXE} saknas: kör deploy/setup.sh (npm ci --prefix tests/axe)")
    # Through DevTools, not a <script> tag: the page's CSP (no inline script) stays on.
    p.evaluate(AXE.read_text(encoding="utf-8") + "\n;undefined")
    result = p.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG_21_AA
    )
    assert len(result["passes"]) >= 5, result  # axe ran the WCAG rules on the page
    return [
        {"id": v["id"], "help": v["help"], "nodes": [n["html"] for n in v["nodes"]][:3]}
        for v in result["violations"]
    ]


def test_min_plan_reads_well_prints_and_passes_axe_and_the_patient_answers(
    served: tuple[str, Service, Clinic],
    page: Page,
) -> None:
    base_url, service, clinic = served
    p = page
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    p.goto(f"{base_url}/ui/login")
    p.get_by_label("API-nyckel").fill(service.keys.vardsamordnare)
    p.get_by_label("Syfte").select_option("vard")
    p.get_by_role("button", name="Logga in").click()
    expect(p).to_have_url(f"{base_url}/ui/units/{clinic.unit}")
    p.get_by_role("link", name=clinic.sip.name).click()

    # From the patient page to the patient's own plan.
    p.get_by_role("link", name=re.compile("Min plan för patienten")).click()
    expect(p.get_by_role("heading", level=1)).to_have_text("Min SIP")
    for heading in (
        "Det här är viktigt för mig",
        "Vad jag gör",
        "Vad vården gör",
        "Vad kommunen gör",
        "Min fasta vårdkontakt",
        "Nästa tid",
    ):
        expect(p.get_by_role("heading", level=2, name=heading)).to_be_visible()
    expect(p.locator("article.minplan")).to_contain_text("Karin Ek")
    expect(p.locator("body")).not_to_contain_text(clinic.sip.pnr)
    font_size = p.locator("article.minplan li").first.evaluate(
        "e => parseFloat(getComputedStyle(e).fontSize)"
    )
    assert font_size >= 20, font_size  # large text (1.3rem)
    assert axe_violations(p) == []
    shot(p, "1-min-plan")

    # A survey code for the SIP meeting, printed on the plan; print media hides the staff bar.
    p.get_by_role("button", name="Skapa enkätkod för SIP-mötet").click()
    code = p.locator(".survey-code .code").inner_text()
    assert re.fullmatch(r"[A-Z2-9]{5}-[A-Z2-9]{5}", code), code
    assert axe_violations(p) == []
    shot(p, "2-min-plan-med-kod")
    p.emulate_media(media="print")
    expect(p.locator(".staff-bar")).to_be_hidden()
    expect(p.locator("header.top")).to_be_hidden()
    expect(p.locator(".survey-code")).to_be_visible()
    shot(p, "3-utskrift", media="print")

    # The patient, without login, in a browser context of their own.
    anonymous = p.context.browser.new_context(locale="sv-SE")  # type: ignore[union-attr]
    q = anonymous.new_page()
    q.goto(f"{base_url}/enkat")
    expect(q.get_by_role("heading", level=1)).to_have_text(SURVEY.title)
    assert axe_violations(q) == []
    q.get_by_label("Kod").fill(code.lower().replace("-", " "))
    for question in SURVEY.questions:
        group = q.get_by_role("group", name=re.compile(re.escape(question.text)))
        group.get_by_label("Ja, helt").check()
    shot(q, "4-enkat")
    q.get_by_role("button", name="Skicka svaret").click()
    expect(q.get_by_role("heading", level=1)).to_have_text("Tack för ditt svar!")
    assert axe_violations(q) == []
    shot(q, "5-tack")
    anonymous.close()

    # Staff see the code handed out and answered.
    p.goto(f"{base_url}/ui/units/{clinic.unit}")
    expect(p.get_by_role("table")).to_contain_text("enkät: kod utlämnad, besvarad")
    # The quarter's indicator page (tab "Enkät om SIP-mötet"), accessible too.
    p.get_by_role("link", name="Enkät om SIP-mötet").click()
    expect(p.get_by_role("heading", level=1)).to_have_text("Patientens omdöme om SIP-mötet")
    assert axe_violations(p) == []
    shot(p, "6-enkat-indikator")
    assert (
        service.app.state.survey.codes.issued_count(
            clinic.unit, today() - timedelta(days=400), today()
        )
        == 1
    )
