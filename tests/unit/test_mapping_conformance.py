"""Conformance with what Inera and R4 say (issue 11): the fast-kontakt code system by its canonical
URL (and OID-coded data still read), the SIP's samordningsansvarig as a project code (not Inera's
code 4), the Task owner, and `onBehalfOf` only for a person."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

from adapter import canonical as c
from adapter.domain import Huvudman, Participant
from adapter.followup.facts import Translations, participants
from adapter.followup.rules import OwnerKind, decide
from adapter.mapping import load_mappings, map_record
from adapter.mapping.readback import fast_vardkontakt
from adapter.settings import REPO_ROOT
from tests.support.records import KARIN_EK, codes, one, sip
from tests.support.rules import FVK, RULES, UNIT, entry, plan, run, state

MAPPINGS = load_mappings(REPO_ROOT / "mappings")
OID = "urn:oid:1.2.752.129.5.1.69"
INERA_URL = (
    "https://terminologitjansten.inera.se/inera-kodverksforvaltning/kodverk/kv_typ_av_fast_kontakt"
)


def _team() -> dict[str, Any]:
    return one(map_record(sip(), MAPPINGS), "CareTeam")


def _by_role(team: dict[str, Any], code: str) -> dict[str, Any]:
    (found,) = [p for p in team["participant"] if code in {k for _, k in codes(p["role"][0])}]
    return found


def test_fast_kontakt_roles_use_the_canonical_url_of_the_code_system() -> None:
    assert c.INERA_FAST_KONTAKT == INERA_URL
    text = json.dumps([r.resource for r in map_record(sip(), MAPPINGS)])
    assert OID not in text and "1.2.752.129.5.1.69" not in text
    assert codes(_by_role(_team(), "1")["role"][0]) == {(INERA_URL, "1")}


def test_profiles_and_conceptmap_name_the_url_not_the_oid() -> None:
    value_set = json.loads((REPO_ROOT / "profiles/ValueSet-participant-role.json").read_text())
    systems = [include["system"] for include in value_set["compose"]["include"]]
    assert systems == [INERA_URL, c.CS_PARTICIPANT_ROLE]
    concept_map = json.loads((REPO_ROOT / "mappings/conceptmaps/participant-role.json").read_text())
    assert [g["target"] for g in concept_map["group"]] == [INERA_URL, c.CS_PARTICIPANT_ROLE]


def test_a_regions_older_conceptmap_with_the_oid_still_writes_the_url(tmp_path: Path) -> None:
    source = REPO_ROOT / "mappings" / "conceptmaps"
    (tmp_path / "conceptmaps").mkdir()
    for path in source.glob("*.json"):
        text = path.read_text(encoding="utf-8")
        (tmp_path / "conceptmaps" / path.name).write_text(text.replace(INERA_URL, OID))
    old = load_mappings(tmp_path)
    assert old.participant_role.codings("fast-vardkontakt")[0]["system"] == INERA_URL


def _as_written_with_the_oid(team: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(team).replace(INERA_URL, OID))


def test_care_teams_written_with_the_oid_are_still_read() -> None:
    old = _as_written_with_the_oid(_team())
    assert OID in json.dumps(old)
    owner = fast_vardkontakt(old)
    assert owner is not None and owner["identifier"]["value"] == KARIN_EK.hsa_id
    roles = {p.role for p in participants(old, Translations.from_mappings(MAPPINGS))}
    assert roles == {p.role for p in participants(_team(), Translations.from_mappings(MAPPINGS))}
    assert {"fast-vardkontakt", "samordningsansvarig", "bistandshandlaggare"} <= roles


def test_samordningsansvarig_is_a_project_code_not_ineras_code_4() -> None:
    petra = _by_role(_team(), "samordningsansvarig")
    assert codes(petra["role"][0]) == {(c.CS_PARTICIPANT_ROLE, "samordningsansvarig")}
    all_codes = {k for p in _team()["participant"] for _, k in codes(p["role"][0])}
    assert "4" not in all_codes
    # The ConceptMap says so explicitly: the target 4 is disjoint (and so never written).
    concept_map = json.loads((REPO_ROOT / "mappings/conceptmaps/participant-role.json").read_text())
    inera = {e["code"]: e["target"] for e in concept_map["group"][0]["element"]}
    assert [t["equivalence"] for t in inera["samordningsansvarig"]] == ["disjoint"]


def test_inera_code_4_is_neither_the_fast_vardkontakt_nor_our_coordinator() -> None:
    """Data written before mapped the SIP's samordningsansvarig (often the kommun's) to 4."""
    coordinator = {
        "role": [{"coding": [{"system": OID, "code": "4"}]}],
        "member": {"type": "Practitioner", "display": "Petra Ahl"},
    }
    team = {"participant": [coordinator]}
    assert fast_vardkontakt(team) is None
    assert participants(team, Translations.from_mappings(MAPPINGS)) == ()
    fvk = {
        "role": [{"coding": [{"system": INERA_URL, "code": "1"}]}],
        "member": {"type": "Practitioner", "display": "Karin Ek"},
    }
    assert fast_vardkontakt({"participant": [coordinator, fvk]}) == fvk["member"]


def test_task_owner_is_the_fast_vardkontakt_else_the_unit_never_the_sip_coordinator() -> None:
    coordinator = Participant("samordningsansvarig", "Petra Ahl", "SE2321000057-P00000000099")
    kontrakt = plan(created="2024-09-02", fast_vardkontakt=FVK)
    base = state(
        entries=(entry("2024-12-02"), entry("2024-12-09")),
        runs=(run("2024-12-02"), run("2024-12-09")),
        plans=(kontrakt,),
    )

    def owners(participants: tuple[Participant, ...]) -> set[tuple[OwnerKind, str]]:
        s = replace(base, plans=(replace(kontrakt, participants=participants),))
        return {
            (t.owner.kind, t.owner.hsa_id) for t in decide(s, date(2024, 12, 10), RULES) if t.owner
        }

    assert owners((coordinator, *kontrakt.participants)) == {(OwnerKind.PRACTITIONER, FVK)}
    assert owners((coordinator,)) == {(OwnerKind.ORGANIZATION, UNIT)}


def test_on_behalf_of_only_for_a_person_member() -> None:
    team = _team()
    karin = _by_role(team, "1")
    assert karin["member"]["type"] == "Practitioner"
    assert karin["onBehalfOf"] == {"display": "Aneby vårdcentral"}
    petra = _by_role(team, "samordningsansvarig")  # named, no HSA-id: a person still
    assert petra["onBehalfOf"] == {"display": "Aneby kommun"}
    organisation = _by_role(team, "hemsjukvard")
    assert organisation["member"] == {"type": "Organization", "display": "Hemsjukvården Aneby"}
    assert "onBehalfOf" not in organisation
    patient = _by_role(team, "patient")
    assert "onBehalfOf" not in patient
    lone = replace(sip(), participants=(Participant("patient", organization="x", huvudman=None),))
    assert "onBehalfOf" not in one(map_record(lone, MAPPINGS), "CareTeam")["participant"][0]
    assert Huvudman.KOMMUN  # the kommun members keep their huvudman extension (mapped above)
