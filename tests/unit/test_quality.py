"""Plan quality: each criterion's rule, the score, the criteria file, and a hand-scored set."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from adapter import canonical as c
from adapter.domain import (
    Appointment,
    Consent,
    ExpressedBy,
    Huvudman,
    Participant,
    PersonId,
    Plan,
    PlanAction,
    PlanGoal,
    PlanKind,
    PlanStatus,
    Responsible,
    SourceRef,
)
from adapter.mapping import MappingsError, load_mappings, map_record
from adapter.mapping.readback import plan_quality
from adapter.quality import (
    CRITERIA_FILE,
    CriteriaError,
    load_criteria,
    parse_criteria,
    score_plan,
)
from adapter.quality.criteria import RULES
from adapter.settings import REPO_ROOT
from adapter.sources.plans import read_plan_lines, read_plans

MAPPINGS_DIR = REPO_ROOT / "mappings"
CRITERIA = load_criteria(MAPPINGS_DIR / CRITERIA_FILE)
HELD_OUT = REPO_ROOT / "tests" / "data" / "quality" / "plans.jsonl"
UNIT = "SE2321000057-E00000000101"
PATIENT = PersonId("194001019811")  # födelsenummer 981: no real person


def _plan(kind: PlanKind = PlanKind.SIP, **changes: Any) -> Plan:
    """A plan that meets every criterion of its kind; tests take one thing away."""
    sip = kind is PlanKind.SIP
    full = Plan(
        source_system="test",
        plan_id="Q-1",
        version=1,
        kind=kind,
        patient=PATIENT,
        status=PlanStatus.ACTIVE,
        title="Testplan",
        created=date(2025, 1, 10),
        updated=date(2025, 1, 10),
        unit_hsa_id=UNIT,
        source=SourceRef("test.jsonl", 1),
        kva="AU124" if sip else None,
        what_matters="Att bo kvar hemma",
        overall_responsibility=Huvudman.REGION if sip else None,
        goals=(PlanGoal("g1", "Gå till affären", ExpressedBy.PATIENT),),
        actions=(
            PlanAction("Läkemedelsgenomgång", Responsible.REGION, goal="g1"),
            PlanAction("Hemtjänst", Responsible.KOMMUN, goal="g1"),
            PlanAction("Promenera varje dag", Responsible.PATIENT, goal="g1"),
        ),
        participants=(Participant("fast-vardkontakt", "Maria Holm"), Participant("patient")),
        next_follow_up=date(2025, 4, 10),
        agreed_appointments=(Appointment(date(2025, 2, 10), "distriktssköterska"),),
        consent=Consent.JA,
    )
    return replace(full, **changes)


def _actions(*responsible: Responsible, goal: str | None = "g1") -> tuple[PlanAction, ...]:
    return tuple(PlanAction(f"Insats {i}", r, goal=goal) for i, r in enumerate(responsible))


R = Responsible
# rule id → (a change that breaks the criterion, a change that still meets it), per rule.
CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "has-actions": ({"actions": ()}, {"actions": _actions(R.KOMMUN)}),
    "actions-of-both-huvudman": (
        {"actions": _actions(R.KOMMUN, R.PATIENT)},
        {"actions": _actions(R.REGION, R.KOMMUN)},
    ),
    "actions-of-others": (
        {"actions": _actions(R.REGION, R.KOMMUN)},
        {"actions": _actions(R.NARSTAENDE)},
    ),
    "overall-responsibility": (
        {"overall_responsibility": None},
        {"overall_responsibility": Huvudman.KOMMUN},
    ),
    "named-fast-vardkontakt": (
        {"participants": (Participant("fast-vardkontakt"), Participant("fast-lakarkontakt", "X"))},
        {"participants": (Participant("fast-vardkontakt", hsa_id="SE2321000057-P00000000211"),)},
    ),
    "actions-of-care-and-patient": (
        {"actions": _actions(R.REGION, R.KOMMUN)},
        {"actions": _actions(R.KOMMUN, R.NARSTAENDE)},
    ),
    "agreed-appointment": ({"agreed_appointments": ()}, {}),
    "actions-serve-goals": (
        {"actions": (*_actions(R.REGION), *_actions(R.PATIENT, goal=None))},
        {"actions": _actions(R.REGION, R.PATIENT)},
    ),
    "what-matters": ({"what_matters": None}, {"what_matters": "Katten"}),
    "goal-by-patient": (
        {"goals": (PlanGoal("g1", "Stabilt blodsocker", ExpressedBy.CARE),)},
        {
            "goals": (
                PlanGoal("g2", "x", ExpressedBy.CARE),
                PlanGoal("g1", "y", ExpressedBy.PATIENT),
            )
        },
    ),
    "patient-took-part": (
        {"participants": (Participant("fast-vardkontakt", "Maria Holm"),)},
        {"participants": (Participant("fast-vardkontakt", "M"), Participant("narstaende", "Bo"))},
    ),
    "consent-registered": ({"consent": Consent.OKANT}, {"consent": Consent.JA}),
    "follow-up-date": ({"next_follow_up": None}, {"next_follow_up": date(2025, 5, 1)}),
}


def test_every_rule_has_a_case() -> None:
    assert set(CASES) == set(RULES)


@pytest.mark.parametrize("rule_id", sorted(RULES))
@pytest.mark.parametrize("kind", list(PlanKind))
def test_each_rule_tells_met_from_unmet(rule_id: str, kind: PlanKind) -> None:
    rule = RULES[rule_id]
    broken, kept = CASES[rule_id]
    full = _plan(kind, overall_responsibility=Huvudman.REGION)  # the rule, not the file, here
    assert rule(full) is True
    assert rule(replace(full, **broken)) is False
    assert rule(replace(full, **kept)) is True


@pytest.mark.parametrize("consent", [None, Consent.NEJ, Consent.OKANT])
def test_consent_counts_only_when_the_patient_said_yes(consent: Consent | None) -> None:
    assert RULES["consent-registered"](_plan(consent=consent)) is False


def test_what_matters_of_blanks_is_not_what_matters() -> None:
    assert RULES["what-matters"](_plan(what_matters="   ")) is False


@pytest.mark.parametrize("kind", list(PlanKind))
def test_a_complete_plan_scores_one(kind: PlanKind) -> None:
    quality = score_plan(_plan(kind), CRITERIA)
    assert quality.score == Decimal("1.00")
    assert quality.unmet == ()
    assert quality.version == CRITERIA.version


def test_each_criterion_costs_its_weight_of_the_kinds_total() -> None:
    for kind in PlanKind:
        applicable = CRITERIA.for_kind(kind)
        total = sum(x.weight for x in applicable)
        for criterion in applicable:
            broken, _ = CASES[next(k for k, v in RULES.items() if v is criterion.rule)]
            quality = score_plan(_plan(kind, **broken), CRITERIA)
            assert criterion.id in [u.id for u in quality.unmet]
            # A break can cost more than one criterion (no actions: no insatser of anyone).
            assert quality.score <= ((total - criterion.weight) / total).quantize(Decimal("0.01"))


def test_unmet_criteria_are_named_in_swedish_from_the_file() -> None:
    quality = score_plan(_plan(PlanKind.PATIENTKONTRAKT, agreed_appointments=()), CRITERIA)
    assert [(u.id, u.label) for u in quality.unmet] == [
        ("agreed-appointment", "Överenskommen tid saknas")
    ]
    assert quality.score == Decimal("0.83")  # 10 of 12


def test_a_criterion_of_the_other_kind_does_not_count() -> None:
    sip = _plan(PlanKind.SIP, agreed_appointments=(), participants=(Participant("patient"),))
    assert score_plan(sip, CRITERIA).score == Decimal("1.00")  # SKR's items are not SIP's


# --- the hand-scored set (held-out style: expectations written by hand in the file) ---


def _held_out() -> list[tuple[Plan, dict[str, Any]]]:
    expected = {
        json.loads(line)["plan_id"]: json.loads(line)["$expected"]
        for line in HELD_OUT.read_text(encoding="utf-8").splitlines()
    }
    plans = [r for r in read_plans(HELD_OUT) if isinstance(r, Plan)]
    assert len(plans) == len(expected) == 10
    return [(plan, expected[plan.plan_id]) for plan in plans]


@pytest.mark.parametrize("plan_id", [f"H{i}" for i in range(1, 11)])
def test_hand_scored_plans_match(plan_id: str) -> None:
    plan, expected = next((p, e) for p, e in _held_out() if p.plan_id == plan_id)
    quality = score_plan(plan, CRITERIA)
    assert quality.score == Decimal(expected["score"]), expected["hand"]
    assert [u.id for u in quality.unmet] == expected["unmet"]


def test_hand_scored_set_spans_the_scale() -> None:
    scores = {score_plan(p, CRITERIA).score for p, _ in _held_out()}
    assert min(scores) == Decimal("0.00") and max(scores) == Decimal("1.00")
    assert len(scores) >= 7


# --- the criteria file ---


def _document() -> dict[str, Any]:
    return json.loads((MAPPINGS_DIR / CRITERIA_FILE).read_text(encoding="utf-8"))


def test_a_region_edits_weights_and_the_score_follows() -> None:
    document = _document()
    for item in document["criteria"]:
        if item["id"] == "consent-registered":
            item["weight"] = 7  # SIP total 18: without consent 11/18
    edited = parse_criteria(document, "plan-quality.json")
    assert score_plan(_plan(consent=None), edited).score == Decimal("0.61")
    assert score_plan(_plan(consent=None), CRITERIA).score == Decimal("0.92")


def test_a_region_can_drop_a_criterion() -> None:
    document = _document()
    document["criteria"] = [i for i in document["criteria"] if i["id"] != "consent-registered"]
    edited = parse_criteria(document, "plan-quality.json")
    assert score_plan(_plan(consent=None), edited).score == Decimal("1.00")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["criteria"][0].update(rule="magi"),
            r"criteria\[0\]\.rule: okänd regel 'magi'",
        ),
        (lambda d: d["criteria"][1].update(weight=0), r"criteria\[1\]\.weight: ska vara ett tal"),
        (lambda d: d["criteria"][1].update(weight="två"), r"criteria\[1\]\.weight"),
        (lambda d: d["criteria"][1].update(weight=True), r"criteria\[1\]\.weight"),
        (lambda d: d["criteria"][2].update(applies_to=["vp"]), r"criteria\[2\]\.applies_to"),
        (lambda d: d["criteria"][2].update(applies_to=[]), r"criteria\[2\]\.applies_to"),
        (lambda d: d["criteria"][3].update(label_sv=" "), r"criteria\[3\]\.label_sv"),
        (lambda d: d["criteria"][4].update(id=d["criteria"][0]["id"]), r"criteria\[4\]\.id: "),
        (lambda d: d.update(criteria=[]), "criteria ska vara en lista"),
        (lambda d: d.pop("version"), r"version: ska vara en text"),
        (
            lambda d: d.update(criteria=[i for i in d["criteria"] if i["applies_to"] == ["sip"]]),
            "inget kriterium gäller patientkontrakt",
        ),
    ],
)
def test_a_wrong_criteria_file_is_a_clear_error(change: Any, message: str) -> None:
    document = _document()
    change(document)
    with pytest.raises(CriteriaError, match=f"plan-quality.json: {message}"):
        parse_criteria(document, "plan-quality.json")


def test_a_missing_or_broken_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / CRITERIA_FILE
    with pytest.raises(CriteriaError, match=r"plan-quality\.json: filen saknas"):
        load_criteria(path)
    path.write_text('{"criteria": [', encoding="utf-8")
    with pytest.raises(CriteriaError, match=r"plan-quality\.json: ogiltig JSON"):
        load_criteria(path)


def test_the_code_system_lists_every_criterion() -> None:
    code_system = json.loads(
        (REPO_ROOT / "profiles" / "CodeSystem-plan-quality-criterion.json").read_text("utf-8")
    )
    codes = {concept["code"]: concept["display"] for concept in code_system["concept"]}
    assert codes == {item.id: item.label for item in CRITERIA.items}
    assert code_system["count"] == len(codes)


# --- stored on the CarePlan ---


def _care_plan(plan: Plan) -> dict[str, Any]:
    mapped = map_record(plan, load_mappings(MAPPINGS_DIR))
    return next(m.resource for m in mapped if m.resource_type == "CarePlan")


def test_the_care_plan_carries_the_score_and_the_unmet_criteria() -> None:
    plan = _plan(PlanKind.PATIENTKONTRAKT, agreed_appointments=(), consent=Consent.NEJ)
    care_plan = _care_plan(plan)
    (quality,) = [e for e in care_plan["extension"] if e["url"] == c.EXT_PLAN_QUALITY]
    assert quality["extension"] == [
        {"url": "score", "valueDecimal": 0.75},
        {"url": "version", "valueString": CRITERIA.version},
        {
            "url": "unmet",
            "valueCoding": {
                "system": c.CS_PLAN_QUALITY_CRITERION,
                "code": "agreed-appointment",
                "display": "Överenskommen tid saknas",
            },
        },
        {
            "url": "unmet",
            "valueCoding": {
                "system": c.CS_PLAN_QUALITY_CRITERION,
                "code": "consent-registered",
                "display": "Samtycke är inte registrerat",
            },
        },
    ]
    (consent,) = [e for e in care_plan["extension"] if e["url"] == c.EXT_SIP_CONSENT]
    assert consent["valueCoding"]["code"] == "nej"
    read = plan_quality(care_plan)
    assert read is not None
    assert read == score_plan(plan, CRITERIA)


def test_the_same_plan_maps_to_the_same_score_extension() -> None:
    assert _care_plan(_plan()) == _care_plan(_plan())  # a re-import changes nothing


def test_a_care_plan_without_a_score_reads_as_none() -> None:
    care_plan = _care_plan(_plan())
    care_plan["extension"] = [e for e in care_plan["extension"] if e["url"] != c.EXT_PLAN_QUALITY]
    assert plan_quality(care_plan) is None
    broken = _care_plan(_plan())
    for e in broken["extension"]:
        if e["url"] == c.EXT_PLAN_QUALITY:
            e["extension"][0] = {"url": "score", "valueDecimal": "x"}
    assert plan_quality(broken) is None


def test_consent_in_the_plans_format_is_read_and_a_wrong_value_named() -> None:
    line = json.loads(HELD_OUT.read_text(encoding="utf-8").splitlines()[0])
    good = [r for r in read_plans_lines([json.dumps(line)]) if isinstance(r, Plan)]
    assert [p.consent for p in good] == [Consent.JA]
    line["consent"] = "kanske"
    (error,) = list(read_plans_lines([json.dumps(line)]))
    assert not isinstance(error, Plan)
    assert (error.line, error.column, error.value) == (1, "consent", "kanske")
    assert "ja" in error.reason and "nej" in error.reason


def read_plans_lines(lines: list[str]) -> list[Any]:
    return list(read_plan_lines(lines, name="plans-consent.jsonl"))


def test_a_mappings_directory_without_criteria_gets_the_projects(tmp_path: Path) -> None:
    """A region's mappings from before plan quality: the defaults, not a stop."""
    shutil.copytree(MAPPINGS_DIR / "conceptmaps", tmp_path / "conceptmaps")
    assert load_mappings(tmp_path).plan_quality == CRITERIA
    (tmp_path / CRITERIA_FILE).write_text('{"version": "9", "criteria": []}', encoding="utf-8")
    with pytest.raises(MappingsError, match=r"plan-quality\.json: criteria ska vara en lista"):
        load_mappings(tmp_path)
