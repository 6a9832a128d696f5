"""Min plan: CarePlan (+ Goals, CareTeam) as mapped and as the server returns them → the
patient's sections, the page's and the PDF's words; no personnummer in the PDF."""

from __future__ import annotations

import io
import json
from datetime import date
from typing import Any

import pytest
from pypdf import PdfReader

from adapter.canonical import INERA_FAST_KONTAKT
from adapter.domain import Plan
from adapter.mapping import load_mappings
from adapter.mapping.plans import map_plan
from adapter.minplan import min_plan
from adapter.minplan.pdf import render_pdf
from adapter.minplan.sections import sections
from adapter.settings import REPO_ROOT
from adapter.sources.plans import read_plan_lines

PNR = "19310214-9824"  # test personnummer (födelsenummer 982), as in deploy/examples
SIP: dict[str, Any] = {
    "source_system": "cosmic",
    "plan_id": "SIP-9",
    "version": 2,
    "kind": "sip",
    "patient": PNR,
    "status": "active",
    "title": "SIP efter utskrivning",
    "created": "2025-01-10",
    "updated": "2025-02-20",
    "unit_hsa_id": "SE2321000057-E00000000101",
    "valid_until": "2025-08-20",
    "what_matters": "Att kunna gå till affären själv",
    "kva": "AU125",
    "overall_responsibility": "kommun",
    "goals": [
        {"id": "g1", "text": "Gå till affären två gånger i veckan", "expressed_by": "patient"},
        {"id": "g2", "text": "Inga fall i hemmet", "expressed_by": "care"},
    ],
    "actions": [
        {"text": "Öva balans med gåstolen", "responsible": "patient", "goal": "g1"},
        {"text": "Läkemedelsgenomgång", "responsible": "region", "role": "fast-lakarkontakt"},
        {"text": "Hemtjänst morgon och kväll", "responsible": "kommun", "role": "hemtjanst"},
        {"text": "Sonen handlar på fredagar", "responsible": "narstaende"},
    ],
    "participants": [
        {
            "role": "fast-lakarkontakt",
            "name": "Sara Lund",
            "organization": "Ekeby vårdcentral",
            "huvudman": "region",
        },
        {
            "role": "fast-vardkontakt",
            "name": "Maria Holm",
            "organization": "Ekeby vårdcentral",
            "huvudman": "region",
        },
        {"role": "hemtjanst", "name": "Hemtjänsten Norr", "huvudman": "kommun"},
        {
            "role": "samordningsansvarig",
            "name": "Petra Ahl",
            "organization": "Ekeby kommun",
            "huvudman": "kommun",
        },
    ],
    "next_follow_up": "2025-04-15",
    "agreed_appointments": [{"date": "2025-03-01", "with": "arbetsterapeut"}],
}


def _plan(raw: dict[str, Any]) -> Plan:
    records = list(read_plan_lines([json.dumps(raw)], name="t.jsonl"))
    assert len(records) == 1 and isinstance(records[0], Plan), records
    return records[0]


def as_stored(raw: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """The mapped resources as the server gives them back: ids, literal references."""
    mapped = map_plan(_plan(raw), load_mappings(REPO_ROOT / "mappings"))
    ids = {}
    for n, resource in enumerate(mapped):
        resource.resource["id"] = f"{resource.resource_type.lower()}-{n}"
        ids[resource.match_url] = f"{resource.resource_type}/{resource.resource['id']}"
    text = json.dumps([m.resource for m in mapped])
    for match_url, literal in ids.items():
        text = text.replace(json.dumps(match_url), json.dumps(literal))
    resources = json.loads(text)
    care_plan = next(r for r in resources if r["resourceType"] == "CarePlan")
    goals = [r for r in resources if r["resourceType"] == "Goal"]
    team = next(r for r in resources if r["resourceType"] == "CareTeam")
    return care_plan, goals, team


def test_sections_in_plain_swedish_from_the_care_plan() -> None:
    care_plan, goals, team = as_stored(SIP)
    plan = min_plan(care_plan, goals, team, date(2025, 2, 25), patient_name="Greta Test")
    assert plan.heading == "Min SIP" and plan.is_sip
    assert plan.unit_hsa_id == "SE2321000057-E00000000101"
    assert plan.what_matters == "Att kunna gå till affären själv"
    assert plan.my_goals == ("Gå till affären två gånger i veckan",)
    assert plan.shared_goals == ("Inga fall i hemmet",)
    assert [d.text for d in plan.i_do] == ["Öva balans med gåstolen"]
    assert [d.text for d in plan.care_does] == ["Läkemedelsgenomgång"]
    assert plan.care_does[0].who == "Sara Lund"
    assert [d.text for d in plan.municipality_does] == ["Hemtjänst morgon och kväll"]
    assert [d.text for d in plan.relatives_do] == ["Sonen handlar på fredagar"]
    # fast vårdkontakt first although listed second
    names = [c.name for c in plan.contacts]
    assert names[0] == "Maria Holm" and plan.contacts[0].role == "fast vårdkontakt"
    assert "Sara Lund" in names and "Hemtjänsten Norr" not in names  # no fast kontakt
    assert plan.contacts[0].organization == "Ekeby vårdcentral"
    assert plan.next_visit is not None and plan.next_visit.day == date(2025, 3, 1)
    assert [v.day for v in plan.later_visits] == [date(2025, 4, 15)]
    assert plan.overall_responsibility == "Kommunen"
    assert plan.updated == date(2025, 2, 20) and plan.valid_until == date(2025, 8, 20)
    lines = {s.heading: s.lines for s in sections(plan)}
    assert lines["Vad jag gör"] == ("Öva balans med gåstolen",)  # no "Patienten" under "jag"
    assert lines["Vad vården gör"] == ("Läkemedelsgenomgång – Sara Lund",)
    assert lines["Vad mina närstående gör"] == ("Sonen handlar på fredagar",)
    headings = [s.heading for s in sections(plan)]
    assert headings == [
        "Det här är viktigt för mig",
        "Mina mål",
        "Vad jag gör",
        "Vad vården gör",
        "Vad kommunen gör",
        "Vad mina närstående gör",
        "Min fasta vårdkontakt",
        "Nästa tid",
    ]


def test_past_visits_are_not_next_and_a_patientkontrakt_is_no_sip() -> None:
    raw = SIP | {"kind": "patientkontrakt", "plan_id": "PK-9"}
    raw = {k: v for k, v in raw.items() if k not in ("kva", "overall_responsibility")}
    care_plan, goals, team = as_stored(raw)
    plan = min_plan(care_plan, goals, team, date(2025, 5, 1))
    assert plan.heading == "Mitt patientkontrakt" and not plan.is_sip
    assert plan.next_visit is None
    assert "Ingen ny tid är bokad" in sections(plan)[-1].lines[0]


def test_empty_sections_say_so_and_no_contact_tells_whom_to_ask() -> None:
    raw = SIP | {"actions": [], "participants": [], "goals": []}
    care_plan, goals, team = as_stored(raw)
    plan = min_plan(care_plan, goals, team, date(2025, 2, 25))
    by_heading = {s.heading: s.lines for s in sections(plan)}
    assert by_heading["Vad kommunen gör"] == ("Inget planerat här.",)
    assert "Fråga din vårdcentral" in by_heading["Min fasta vårdkontakt"][0]
    assert "Mina mål" not in by_heading


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def test_pdf_has_every_section_with_swedish_letters_and_no_personnummer() -> None:
    care_plan, goals, team = as_stored(SIP)
    plan = min_plan(care_plan, goals, team, date(2025, 2, 25), patient_name="Greta Åström")
    data = render_pdf(plan, ("ABCDE-FGHJK", "https://vc.example.se/enkat"))
    assert data.startswith(b"%PDF")
    text = pdf_text(data)
    for section in sections(plan):
        assert section.heading in text
    for words in (
        "Greta Åström",
        "Öva balans med gåstolen",
        "Maria Holm",
        "ABCDE-FGHJK",
        "https://vc.example.se/enkat",
        "Vad jag gör",
    ):
        assert words in text
    assert "19310214" not in text and "9824" not in text
    assert "310214" not in text.replace("-", "")


@pytest.mark.parametrize("char", ["–", "’"])  # noqa: RUF001 - the point of the test
def test_pdf_takes_typographic_characters_outside_latin1(char: str) -> None:
    care_plan, goals, team = as_stored(SIP | {"what_matters": f"Hemma {char} i lugn och ro"})
    text = pdf_text(render_pdf(min_plan(care_plan, goals, team, date(2025, 2, 25))))
    assert "Hemma" in text and "i lugn och ro" in text


def test_contacts_in_ineras_order_and_only_fasta_kontakter() -> None:
    def member(code: str, name: str) -> dict[str, Any]:
        coding = {"system": INERA_FAST_KONTAKT, "code": code, "display": f"kod {code}"}
        return {"role": [{"coding": [coding]}], "member": {"display": name}}

    other = {"role": [{"text": "hemtjänst"}], "member": {"display": "Hemtjänsten"}}
    team = {
        "resourceType": "CareTeam",
        "participant": [
            member("2", "Läkaren"),
            member("9", "Okänd fast kontakt"),
            other,
            member("4", "Samordnaren"),
            member("1", "Vårdkontakten"),
        ],
    }
    care_plan = {"resourceType": "CarePlan", "id": "1"}
    plan = min_plan(care_plan, [], team, date(2025, 1, 1))
    assert [c.name for c in plan.contacts] == [
        "Vårdkontakten",
        "Samordnaren",
        "Läkaren",
        "Okänd fast kontakt",
    ]


def test_a_plan_withheld_from_the_patient_is_marked() -> None:
    care_plan, goals, team = as_stored(SIP | {"approved_for_patient": False})
    assert min_plan(care_plan, goals, team, date(2025, 2, 25)).not_for_patient
    care_plan, goals, team = as_stored(SIP | {"approved_for_patient": True})
    assert not min_plan(care_plan, goals, team, date(2025, 2, 25)).not_for_patient


def test_a_cancelled_visit_is_not_shown_and_an_untitled_one_is_a_planned_time() -> None:
    care_plan, goals, team = as_stored(SIP)
    visits = {
        a["detail"]["scheduledPeriod"]["start"][:10]: a["detail"]
        for a in care_plan["activity"]
        if a["detail"].get("kind") == "Appointment"
    }
    assert sorted(visits) == ["2025-03-01", "2025-04-15"]
    visits["2025-03-01"]["status"] = "cancelled"
    del visits["2025-04-15"]["description"]
    plan = min_plan(care_plan, goals, team, date(2025, 2, 25))
    assert plan.next_visit is not None
    assert (plan.next_visit.day, plan.next_visit.text) == (date(2025, 4, 15), "Planerad tid")
    assert plan.later_visits == ()
