"""The cancellation cap's pure part: a patient's work with the rules' cancellations held back
(kept open, listed) or written (listed with Task id, masked personnummer and reason)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from adapter.domain import PersonId
from adapter.followup.facts import FocusIndex, PatientFacts
from adapter.followup.load import LoadedPatient
from adapter.followup.reconcile import plan_patient
from adapter.followup.rules import decide
from adapter.followup.rulesfile import load_rules
from adapter.followup.state import PatientState, UnitRun
from adapter.followup.tasks import new_task, read_task
from adapter.settings import REPO_ROOT
from tests.support.records import UNIT, prea60_row

RULES = load_rules(REPO_ROOT / "mappings" / "rules.json")
PERSON = PersonId("193102149824")
RUN, NEXT_RUN = date(2024, 12, 9), date(2024, 12, 16)
LEFT = "Patienten ingår inte längre i riskgruppen (senaste Prea60-körningen)"


def dropped_patient() -> LoadedPatient:
    """In the group at RUN with an establish-plan Task; absent from NEXT_RUN."""
    state = PatientState.from_records(PERSON, [prea60_row(PERSON, run=RUN)])
    (decision,) = decide(state, RUN, RULES)
    resource = new_task(
        decision, patient_reference="Patient/1", focus_reference="RiskAssessment/1", authored_on=RUN
    )
    task = read_task(resource | {"id": "t1", "meta": {"versionId": "1"}})
    assert task is not None
    later = replace(state, unit_runs=(UnitRun(UNIT, RUN), UnitRun(UNIT, NEXT_RUN)))
    return LoadedPatient("Patient/1", PatientFacts(later, [task], FocusIndex()))


def test_held_cancellations_write_nothing_and_stay_open() -> None:
    work = plan_patient(dropped_patient(), NEXT_RUN, RULES, hold_cancellations=True)
    assert work.entries == [] and work.cancelled == []
    assert [(h.task_id, h.reason) for h in work.held] == [("t1", LEFT)]
    assert len(work.rows) == 1  # still open after the run


def test_written_cancellations_are_listed_with_the_personnummer_masked() -> None:
    work = plan_patient(dropped_patient(), NEXT_RUN, RULES)
    assert len(work.entries) == 1 and work.rule_cancellations() == 1
    (cancelled,) = work.cancelled
    assert cancelled.describe() == f"Task/t1 19310214-**** establish-plan: {LEFT}"
    assert work.rows == []
