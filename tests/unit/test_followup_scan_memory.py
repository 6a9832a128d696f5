"""The region scan holds one chunk of patients' facts at a time (issue "Region scale" 5).

The benchmark measured the scan's peak RSS growing with the patients in scope (95 MiB at 68,
325 MiB at 919): every patient's facts were read before the first was planned. Now the scan reads,
plans, writes and lets go of one chunk of CHUNK_SIZE patients at a time (`load.iter_states`).
These tests count the patients' facts still alive at each write: without the chunking, every
patient in scope is alive at the first one.
"""

from __future__ import annotations

import gc
import weakref
from datetime import date
from typing import Any

import pytest

import adapter.followup.load as load
import adapter.followup.reconcile as reconcile
from adapter.followup.facts import PatientFacts
from adapter.followup.params import RULES_FILE
from adapter.followup.planning import PatientWork
from adapter.followup.reconcile import CancelPolicy, run_followups
from adapter.followup.rulesfile import load_rules
from adapter.mapping.codes import load_mappings
from adapter.settings import REPO_ROOT
from tests.support.people import fictional_people

CHUNKS = 8
RULES = load_rules(REPO_ROOT / "mappings" / RULES_FILE)
MAPPINGS = load_mappings(REPO_ROOT / "mappings")


class Tracked(list[Any]):
    """A patient's Task list that a weak reference can follow (PatientFacts has slots)."""


class Server:
    """The FhirClient of the scan, as far as the writes go: counts the facts alive at each."""

    def __init__(self, alive: list[weakref.ref[Tracked]]) -> None:
        self.alive = alive
        self.at_writes: list[int] = []

    def transaction(self, bundle: dict[str, Any]) -> dict[str, Any]:
        gc.collect()
        self.at_writes.append(sum(1 for ref in self.alive if ref() is not None))
        return {"resourceType": "Bundle", "entry": []}


@pytest.fixture
def scan(monkeypatch: pytest.MonkeyPatch) -> Server:
    """A scope of CHUNKS chunks of patients with nothing on the server but themselves; every
    patient's plan has one Task to write (so the scan writes as it goes)."""
    persons = fictional_people(CHUNKS * load.CHUNK_SIZE, seed=5)
    by_person = {p: [f"Patient/{n}"] for n, p in enumerate(persons, start=1)}
    alive: list[weakref.ref[Tracked]] = []
    real_facts, real_plan = load.patient_facts, reconcile.plan_patient

    def patient_facts(*args: Any) -> PatientFacts:
        facts = real_facts(*args)
        facts.tasks = Tracked(facts.tasks)
        alive.append(weakref.ref(facts.tasks))
        return facts

    def plan_patient(patient: Any, *args: Any, **options: Any) -> PatientWork:
        work = real_plan(patient, *args, **options)
        url = f"Task?identifier=x|{patient.reference}"
        work.entries.append({"resource": {}, "request": {"method": "PUT", "url": url}})
        return work

    monkeypatch.setattr(load, "_scope", lambda *_: (set(), set(), {}))
    monkeypatch.setattr(load, "_persons", lambda *_: (by_person, 0))
    monkeypatch.setattr(load, "_owned", lambda *_: [])
    monkeypatch.setattr(load, "patient_facts", patient_facts)
    monkeypatch.setattr(reconcile, "plan_patient", plan_patient)
    return Server(alive)


def run(server: Server, cancellations: CancelPolicy) -> reconcile.FollowupReport:
    return run_followups(
        server,  # type: ignore[arg-type]
        RULES,
        date(2024, 12, 31),
        mappings=MAPPINGS,
        batch_size=50,
        cancellations=cancellations,
    )


def test_a_scan_writes_each_chunk_and_lets_go_of_its_facts_before_reading_on(
    scan: Server,
) -> None:
    report = run(scan, CancelPolicy.ALLOW)
    assert report.patients == CHUNKS * load.CHUNK_SIZE
    assert report.bundles == len(scan.at_writes) == CHUNKS * load.CHUNK_SIZE // 50
    # One chunk (and the one being handed over) at most; unchunked: every patient, 800.
    assert max(scan.at_writes) <= 2 * load.CHUNK_SIZE, scan.at_writes


def test_a_scan_that_counts_cancellations_first_keeps_the_work_not_the_facts(
    scan: Server,
) -> None:
    # HOLD (the scheduler's) waits for the count before writing: the planned work waits, the
    # facts it was planned from are gone by the first write.
    report = run(scan, CancelPolicy.HOLD)
    assert report.patients == CHUNKS * load.CHUNK_SIZE
    assert len(scan.at_writes) == CHUNKS * load.CHUNK_SIZE // 50
    assert max(scan.at_writes) <= load.CHUNK_SIZE, scan.at_writes
