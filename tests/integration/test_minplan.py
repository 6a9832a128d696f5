"""Min plan and the SIP meeting survey against the real HAPI server, through the service.

The unit's Prea60 list and plans go in through the ingest API, its SIP meetings (AU124, AU125)
as events; the vårdsamordnare logs in to the pages, opens Min plan (page and PDF), hands out a
survey code; the patient answers on /enkat without login. Attacks replayed: another unit's plan,
a second answer with the same code, guessing codes (rate limit), a forged form (CSRF)."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader

from adapter.canonical import HSA_ID, ID_PLAN
from adapter.fhirclient import FhirClient
from adapter.mapping import load_mappings, transaction_bundle
from adapter.mapping.plans import map_plan
from adapter.settings import REPO_ROOT
from adapter.sources.plans import read_plan_lines
from adapter.survey.codes import normalize
from adapter.survey.indicators import quarter_of, read_responses, sips_held, survey_result
from adapter.survey.questionnaire import SURVEY_FILE, install_survey, load_survey
from adapter.survey.ratelimit import RateLimit
from tests.support.api import RULES, Clinic, Service, ingest, make_service, today

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("profiles_installed")]

SURVEY = load_survey(REPO_ROOT / "mappings" / SURVEY_FILE)
OTHER_UNIT = "SE2321000057-E99999999998"
SECRET = "Det här får bara den andra enheten läsa"
WITHHELD = "Det här ska patienten inte läsa"
CODE_RE = re.compile(r'class="code">([A-Z2-9]{5}-[A-Z2-9]{5})<')


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory,
    hapi_base_url: str,
    fhir_client: FhirClient,
    profiles_installed: None,
) -> Iterator[tuple[Service, Clinic]]:
    clinic = Clinic.new()
    service = make_service(tmp_path_factory.mktemp("minplan"), hapi_base_url, clinic.unit)
    install_survey(fhir_client, SURVEY)
    meeting = today() - timedelta(days=30)  # the SIP's created/updated day (Clinic.plans)
    with service.client() as client:
        ingest(client, service.keys.integration, clinic)
        events = "Personnummer;Datum;Åtgärdskod;Utförande enhet HSA-id;Kontakttyp;Plan-id\n"
        events += f"{clinic.sip.pnr};{meeting};AU124;{clinic.unit};besök;\n"
        events += f"{clinic.late.pnr};{meeting};AU125;{clinic.unit};besök;\n"
        answer = client.post(
            "/ingest/events",
            files={"file": ("events.csv", events.encode(), "text/csv")},
            headers={"X-API-Key": service.keys.integration},
        )
        assert answer.status_code == 200 and answer.json()["accepted"] == 2, answer.text
    # The same patient has a SIP at another unit too (written as the import would).
    other = clinic.plan(clinic.sip, "sip", meeting, "SIP-OTHER") | {
        "unit_hsa_id": OTHER_UNIT,
        "what_matters": SECRET,
    }
    write_plan(fhir_client, other)
    # And one of the own unit's plans that the source withholds from the patient (NOPAT).
    nopat = clinic.plan(clinic.late, "sip", meeting, "SIP-NOPAT") | {
        "approved_for_patient": False,
        "what_matters": WITHHELD,
    }
    write_plan(fhir_client, nopat)
    yield service, clinic


def write_plan(fhir_client: FhirClient, raw: dict[str, Any]) -> None:
    """A plan written as the import writes it."""
    plan = next(iter(read_plan_lines([json.dumps(raw)], name="plan.jsonl")))
    mapped = map_plan(plan, load_mappings(REPO_ROOT / "mappings"))  # type: ignore[arg-type]
    fhir_client.transaction(transaction_bundle(mapped))


def login(service: Service, key: str) -> TestClient:
    client = service.client()
    answer = client.post(
        "/ui/login", data={"api_key": key, "purpose": "vard"}, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text
    return client


def patient_id_of(client: TestClient, clinic: Clinic) -> str:
    page = client.get(f"/ui/units/{clinic.unit}").text
    match = re.search(r'href="/ui/patients/([^"]+)">' + re.escape(clinic.sip.name), page)
    assert match, page
    return match[1]


def min_plan_url(client: TestClient, patient_id: str) -> str:
    page = client.get(f"/ui/patients/{patient_id}").text
    links = re.findall(r'href="(/ui/patients/[^"]+/plans/[^"]+/min-plan)"', page)
    assert len(links) == 1, page  # only the own unit's plan has one
    return links[0]


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html
    return match[1]


def pdf_text(data: bytes) -> str:
    return "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages)


def care_plan_id(fhir_client: FhirClient, key: str) -> str:
    found = list(fhir_client.search("CarePlan", [("identifier", f"{ID_PLAN}|{key}")]))
    assert len(found) == 1, found
    return str(found[0]["id"])


def issue(client: TestClient, url: str) -> str:
    page = client.get(url).text
    answer = client.post(url.replace("/min-plan", "/survey-code"), data={"csrf": csrf_of(page)})
    assert answer.status_code == 200, answer.text
    match = CODE_RE.search(answer.text)
    assert match, answer.text
    return match[1]


def answer_form(code: str, choice: str = "ja-helt") -> dict[str, str]:
    return {"code": code} | {q.link_id: choice for q in SURVEY.questions}


def post_answer(anonymous: TestClient, form: dict[str, str]) -> Any:
    page = anonymous.get("/enkat")
    assert page.status_code == 200
    return anonymous.post("/enkat", data=form | {"csrf": csrf_of(page.text)})


def test_min_plan_page_and_pdf_from_the_care_plan_audited_without_personnummer(
    world: tuple[Service, Clinic],
) -> None:
    service, clinic = world
    client = login(service, service.keys.vardsamordnare)
    url = min_plan_url(client, patient_id_of(client, clinic))
    page = client.get(url)
    assert page.status_code == 200
    for words in (
        "Min SIP",
        clinic.sip.name,
        "Vad jag gör",
        "Väga mig varje måndag",
        "Vad vården gör",
        "Läkemedelsgenomgång var tredje månad",
        "Vad kommunen gör",
        "Hemtjänst morgon och kväll",
        "Min fasta vårdkontakt",
        "Karin Ek, fast vårdkontakt",
        "Testenhetens vårdcentral",
        "Nästa tid",
        "Det här är viktigt för mig",
        "Att kunna bo kvar hemma",
    ):
        assert words in page.text, words
    assert clinic.sip.pnr not in page.text and clinic.sip.digits not in page.text
    pdf = client.get(f"{url}.pdf")
    assert pdf.headers["content-type"] == "application/pdf"
    text = pdf_text(pdf.content)
    assert "Min SIP" in text and "Väga mig varje måndag" in text and "Karin Ek" in text
    assert clinic.sip.digits[:8] not in text and clinic.sip.digits[8:] not in text
    reads = [e for e in service.audit.search(limit=1000) if "min-plan" in e.route]
    assert {e.patient for e in reads} == {clinic.sip.digits}
    assert {e.purpose for e in reads} == {"vard"} and len(reads) == 2


def test_another_units_plan_is_refused_and_never_read(
    world: tuple[Service, Clinic], fhir_client: FhirClient
) -> None:
    service, clinic = world
    client = login(service, service.keys.vardsamordnare)
    patient_id = patient_id_of(client, clinic)
    other = care_plan_id(fhir_client, f"{clinic.source_system}:SIP-OTHER")
    for url in (
        f"/ui/patients/{patient_id}/plans/{other}/min-plan",
        f"/ui/patients/{patient_id}/plans/{other}/min-plan.pdf",
    ):
        answer = client.get(url)
        assert answer.status_code == 404, url
        assert SECRET not in answer.text
    # and someone of another unit does not see the patient at all
    outsider = login(service, service.keys.other_unit)
    own = care_plan_id(fhir_client, f"{clinic.source_system}:SIP-1")
    answer = outsider.get(f"/ui/patients/{patient_id}/plans/{own}/min-plan")
    assert answer.status_code == 404 and "Karin Ek" not in answer.text


def test_code_answered_once_anonymously_valid_and_counted(
    world: tuple[Service, Clinic], fhir_client: FhirClient
) -> None:
    service, clinic = world
    client = login(service, service.keys.vardsamordnare)
    patient_id = patient_id_of(client, clinic)
    url = min_plan_url(client, patient_id)
    code = issue(client, url)
    store = service.app.state.survey.codes
    assert store.lookup(code) is not None and not store.lookup(code).answered

    # the PDF with the code, only for the plan it was issued for
    page = client.get(url).text
    pdf = client.post(f"{url}.pdf", data={"csrf": csrf_of(page), "code": code})
    assert pdf.status_code == 200 and code in pdf_text(pdf.content)
    forged = client.post(f"{url}.pdf", data={"csrf": csrf_of(page), "code": "ABCDE-FGHJK"})
    assert forged.status_code == 400

    before = read_responses(fhir_client, clinic.unit, quarter_of(today() - timedelta(days=30)))
    anonymous = TestClient(service.app)
    first = post_answer(anonymous, answer_form(code.lower()))  # typed in lower case
    assert first.status_code == 201, first.text
    second = post_answer(anonymous, answer_form(code, "nej-inte-alls"))
    assert second.status_code == 409 and "redan använd" in second.text

    period = quarter_of(today() - timedelta(days=30))
    after = read_responses(fhir_client, clinic.unit, period)
    assert len(after) == len(before) + 1
    stored = next(r for r in after if r["id"] not in {b["id"] for b in before})
    for field in ("subject", "author", "source", "identifier"):
        assert field not in stored
    assert stored["authored"] == period.start.isoformat()  # the quarter only
    assert code not in str(stored) and normalize(code) not in str(stored)
    outcome = fhir_client.validate(stored)
    errors = [i for i in outcome.get("issue", ()) if i["severity"] in ("error", "fatal")]
    assert errors == []

    # staff see it handed out and answered
    assert "kod utlämnad, besvarad" in client.get(f"/ui/patients/{patient_id}").text
    assert "enkät: kod utlämnad, besvarad" in client.get(f"/ui/units/{clinic.unit}").text

    # the quarter's indicator: answers against the unit's AU124 + AU125, positive per question
    held = sips_held(
        fhir_client, clinic.unit, period, RULES, mappings=load_mappings(REPO_ROOT / "mappings")
    )
    assert held == 2
    result = survey_result(SURVEY, clinic.unit, period, after, sips_held=held, codes_issued=1)
    assert result.answers == 1
    assert all(q.answered == 1 and q.positive == 1 for q in result.questions)


def test_guessing_codes_is_rate_limited_and_a_forged_form_refused(
    world: tuple[Service, Clinic], tmp_path: Path
) -> None:
    service, clinic = world
    client = login(service, service.keys.vardsamordnare)
    code = issue(client, min_plan_url(client, patient_id_of(client, clinic)))
    state = service.app.state.survey
    service.app.state.survey = replace(
        state, limit=RateLimit(tmp_path / "attempts.sqlite", limit=3)
    )
    try:
        anonymous = TestClient(service.app)
        no_cookie = TestClient(service.app).post("/enkat", data=answer_form(code) | {"csrf": "x"})
        assert no_cookie.status_code == 403
        for guess in ("AAAAA-AAAAA", "BBBBB-BBBBB"):
            assert post_answer(anonymous, answer_form(guess)).status_code == 400
        assert post_answer(anonymous, answer_form(code)).status_code == 429  # even the right one
        assert not state.codes.lookup(code).answered
    finally:
        service.app.state.survey = state


def test_the_cli_types_in_a_paper_answer_and_reports_the_quarter(
    world: tuple[Service, Clinic], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from adapter.cli import app
    from adapter.settings import get_settings

    service, clinic = world
    client = login(service, service.keys.vardsamordnare)
    code = issue(client, min_plan_url(client, patient_id_of(client, clinic)))
    monkeypatch.setenv("SIP_FHIR_BASE_URL", service.settings.base_url)
    monkeypatch.setenv("SIP_FHIR_DATA_DIR", str(service.settings.data_dir))
    get_settings.cache_clear()
    try:
        answers = [f"--answer={q.link_id}=nej-knappast" for q in SURVEY.questions]
        runner = CliRunner()
        done = runner.invoke(app, ["survey", "answer", "--code", code, *answers])
        assert done.exit_code == 0, done.output
        again = runner.invoke(app, ["survey", "answer", "--code", code, *answers])
        assert again.exit_code == 2 and "redan använd" in again.output
        period = quarter_of(today() - timedelta(days=30))
        quarter_text = f"{period.start.year}Q{(period.start.month - 1) // 3 + 1}"
        report = runner.invoke(
            app,
            [
                "survey",
                "report",
                "--unit",
                clinic.unit,
                "--quarter",
                quarter_text,
                "--format",
                "json",
            ],
        )
        assert report.exit_code == 0, report.output
    finally:
        get_settings.cache_clear()
    data = json.loads(report.output[report.output.index("{") :])
    assert data["indicator"] == "sip-survey" and data["sips_held"] == 2
    answered = len(read_responses(FhirClient(service.settings.endpoint()), clinic.unit, period))
    assert data["answers"] == answered and data["codes_issued"] >= 2
    assert HSA_ID  # the unit tag's system


def test_the_quarter_through_the_api_and_the_page_for_the_unit_only(
    world: tuple[Service, Clinic], fhir_client: FhirClient
) -> None:
    service, clinic = world
    client = login(service, service.keys.vardsamordnare)
    code = issue(client, min_plan_url(client, patient_id_of(client, clinic)))
    assert post_answer(TestClient(service.app), answer_form(code, "vet-inte")).status_code == 201
    period = quarter_of(today() - timedelta(days=30))
    quarter_text = f"{period.start.year}Q{(period.start.month - 1) // 3 + 1}"
    responses = read_responses(fhir_client, clinic.unit, period)
    api = service.client()
    answer = api.get(
        f"/units/{clinic.unit}/survey",
        params={"quarter": quarter_text},
        headers={"X-API-Key": service.keys.vardsamordnare},
    )
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["indicator"] == "sip-survey" and data["sips_held"] == 2
    assert data["answers"] == len(responses) >= 1
    positives = sum(
        1 for r in responses if r["item"][0]["answer"][0]["valueCoding"]["code"] == "ja-helt"
    )
    assert data["questions"][0]["positive"] == positives  # "Vet inte" is not positive
    other = api.get(f"/units/{clinic.unit}/survey", headers={"X-API-Key": service.keys.other_unit})
    assert other.status_code == 403
    bad = api.get(
        f"/units/{clinic.unit}/survey",
        params={"quarter": "2025Q9"},
        headers={"X-API-Key": service.keys.vardsamordnare},
    )
    assert bad.status_code == 422
    page = client.get(f"/ui/units/{clinic.unit}/survey", params={"quarter": quarter_text})
    assert page.status_code == 200 and "Hållna SIP (AU124 + AU125)" in page.text
    assert SURVEY.questions[0].text in page.text


def test_a_plan_withheld_from_the_patient_is_not_printed(
    world: tuple[Service, Clinic], fhir_client: FhirClient
) -> None:
    service, clinic = world
    client = login(service, service.keys.vardsamordnare)
    page = client.get(f"/ui/units/{clinic.unit}").text
    match = re.search(r'href="/ui/patients/([^"]+)">' + re.escape(clinic.late.name), page)
    assert match, page
    plan_id = care_plan_id(fhir_client, f"{clinic.source_system}:SIP-NOPAT")
    url = f"/ui/patients/{match[1]}/plans/{plan_id}/min-plan"
    for answer in (client.get(url), client.get(f"{url}.pdf")):
        assert answer.status_code == 403 and "NOPAT" in answer.text
        assert WITHHELD not in answer.text
    code = client.post(url.replace("/min-plan", "/survey-code"), data={"csrf": csrf_of(page)})
    assert code.status_code == 403 and WITHHELD not in code.text
