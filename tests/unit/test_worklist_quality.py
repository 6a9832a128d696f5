"""The plan's quality on the worklist and the patient page, within inner confidentiality: a unit
sees the score and the unmet criteria of its own plans only (another unit's plan stays a summary
without them)."""

from __future__ import annotations

from dataclasses import fields
from decimal import Decimal

from adapter.domain import PlanKind
from adapter.followup.state import states_from_records
from adapter.quality import score_plan
from adapter.worklist.patient import PlanElsewhere
from adapter.worklist.rows import unit_plan_quality
from adapter.worklist.scope import UnitScope, scoped_view
from tests.support.confidentiality import OTHER, OWN, SHARED, full_view, records, secret_sip
from tests.support.worklist import AS_OF, MAPPINGS, loaded_patients

CRITERIA = MAPPINGS.plan_quality


def test_the_patient_view_reads_each_plans_score_from_its_care_plan() -> None:
    (patient,) = loaded_patients(records())
    view = full_view(patient)
    by_unit = {p.unit_hsa_id: p.quality for p in view.plans}
    assert by_unit[OTHER] == score_plan(secret_sip(SHARED), CRITERIA)
    own = by_unit[OWN]
    assert own is not None and own.score < Decimal("1")
    assert own.unmet  # the fixture's patientkontrakt lacks consent and a participating patient


def test_another_units_plan_shows_no_score_and_nothing_it_lacks() -> None:
    (patient,) = loaded_patients(records())
    view = full_view(patient)
    secret = next(p.quality for p in view.plans if p.unit_hsa_id == OTHER)
    assert secret is not None and secret.unmet
    seen = scoped_view(view, UnitScope(frozenset({OWN})))
    assert "quality" not in {f.name for f in fields(PlanElsewhere)}
    assert [p.unit_hsa_id for p in seen.plans] == [OWN]
    own_labels = {u.label for p in seen.plans if p.quality for u in p.quality.unmet}
    # What only the other unit's SIP lacks is nowhere in what the own unit sees.
    only_secret = {u.label for u in secret.unmet} - own_labels
    assert only_secret
    assert not any(label in repr(seen) for label in only_secret)


def test_the_worklist_row_scores_the_units_own_active_plan() -> None:
    state = states_from_records(records(), CRITERIA)[SHARED]
    assert {p.kind for p in state.active_plans(AS_OF)} == {PlanKind.SIP, PlanKind.PATIENTKONTRAKT}
    own = unit_plan_quality(state, OWN, AS_OF)
    other = unit_plan_quality(state, OTHER, AS_OF)
    assert own is not None and other is not None
    # OWN's row has the patientkontrakt's score, not the other unit's SIP (which a row prefers).
    own_plan = next(p for p in state.plans if p.unit_hsa_id == OWN)
    assert own == own_plan.quality and own != other
    assert unit_plan_quality(state, "SE2321000057-E00000000999", AS_OF) is None


def test_without_criteria_the_local_state_has_no_scores() -> None:
    state = states_from_records(records())[SHARED]
    assert all(p.quality is None for p in state.plans)
