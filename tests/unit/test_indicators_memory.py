"""Indicators hold one chunk of patients' facts at a time (issue "Region scale" 5).

The benchmark measured the indicators' peak RSS growing with the patients in scope (0.042 MiB per
patient: every PatientState of the region was read before the first was counted). Now they are
read with `load.iter_states` and counted chunk by chunk into a `compute.Tally`, which keeps a
PersonId per counted item. This test counts the patients' facts still alive while facts are made
and after the run: without the chunking, every patient made before is alive at the last count,
and all of them in what the run returns.
"""

from __future__ import annotations

import gc
import random
import threading
import weakref
from collections import Counter
from dataclasses import replace
from datetime import date
from typing import Any

import pytest

import adapter.followup.load as load
import adapter.indicators.store as store
from adapter.canonical import IndicatorCode
from adapter.domain import Event, EventCode, PersonId, SourceRef
from adapter.followup.facts import PatientFacts
from adapter.followup.scope import Scope
from adapter.indicators.compute import Period
from adapter.mapping import map_record
from adapter.mapping.fhir import Json
from tests.support.indicators import MAPPINGS
from tests.support.people import fictional_person
from tests.support.rules import RULES, UNIT

CHUNKS = 8
SAMPLE = 25  # patients between two counts of the facts alive (a count collects garbage)
PERIOD = Period(date(2024, 12, 9), date(2024, 12, 15))
PNR = "http://electronichealth.se/identifier/personnummer"


class Tracked(list[Any]):
    """A patient's events that a weak reference can follow (PatientState has slots): alive as
    long as any version of the patient's state or facts is."""


class Server:
    """The FhirClient of the loader: each Patient a Patient resource and one AU124 by UNIT in the
    period. Counts the searches made."""

    def __init__(self, persons: list[PersonId], alive: list[weakref.ref[Tracked]]) -> None:
        self.alive = alive
        self.at_makes: list[int] = []  # every SAMPLE-th patient's facts, before they are made
        self.searches: Counter[str] = Counter()
        self._lock = threading.Lock()  # the loader searches from several threads
        self.patients = {str(n): person for n, person in enumerate(persons, start=1)}
        source = SourceRef("minnestest", 1)
        self.procedures: dict[str, Json] = {}
        for key, person in self.patients.items():
            event = Event(person, date(2024, 12, 10), EventCode.AU124, UNIT, source, "besök")
            (procedure,) = (
                m.resource for m in map_record(event, MAPPINGS) if m.resource_type == "Procedure"
            )
            self.procedures[f"Patient/{key}"] = {
                **procedure,
                "subject": {"reference": f"Patient/{key}"},
            }

    def alive_now(self) -> int:
        gc.collect()
        return sum(1 for ref in self.alive if ref() is not None)

    def search(
        self, resource_type: str, params: list[tuple[str, str]], post: bool = False
    ) -> list[Json]:
        with self._lock:
            self.searches[resource_type] += 1
        values = dict(params)
        if resource_type == "Patient":
            return [
                {
                    "resourceType": "Patient",
                    "id": key,
                    "identifier": [{"system": PNR, "value": self.patients[key].digits}],
                }
                for key in values["_id"].split(",")
            ]
        if resource_type == "Procedure":
            return [self.procedures[ref] for ref in values["subject"].split(",")]
        return []


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Server:
    """A region of CHUNKS chunks of patients, one unit whose newest run is the period's last day
    (no absent runs to ask for)."""
    rng = random.Random(14)
    found: set[PersonId] = set()
    while len(found) < CHUNKS * load.CHUNK_SIZE:
        found.add(fictional_person(rng))
    persons = sorted(found, key=lambda p: p.digits)
    alive: list[weakref.ref[Tracked]] = []
    fake = Server(persons, alive)
    real_facts = load.patient_facts

    def patient_facts(*args: Any) -> PatientFacts:
        if len(alive) % SAMPLE == 0:
            fake.at_makes.append(fake.alive_now())
        facts = real_facts(*args)
        events = Tracked(facts.state.events)
        facts.state = replace(facts.state, events=events)  # type: ignore[arg-type]
        alive.append(weakref.ref(events))
        return facts

    scope = Scope(refs=set(fake.procedures), newest_runs={UNIT: PERIOD.end})
    monkeypatch.setattr(store, "find_patients", lambda *_, **__: scope)
    monkeypatch.setattr(store, "_procedure_refs", lambda *_: set())
    monkeypatch.setattr(store, "_notice_refs", lambda *_: set())
    monkeypatch.setattr(load, "patient_facts", patient_facts)
    return fake


def test_indicators_count_each_chunk_and_let_go_of_its_facts_before_reading_on(
    server: Server,
) -> None:
    results, references = store.indicators_from_server(
        server,  # type: ignore[arg-type]
        None,
        PERIOD,
        RULES,
        mappings=MAPPINGS,
    )
    patients = CHUNKS * load.CHUNK_SIZE
    # The chunk being made at most: unchunked, every patient made before (775 at the last count).
    assert max(server.at_makes) < load.CHUNK_SIZE, server.at_makes
    au124 = next(r for r in results if r.indicator is IndicatorCode.KVA_AU124)
    assert (au124.unit_hsa_id, au124.numerator) == (UNIT, patients)  # every chunk counted
    assert set(au124.numerator_subjects) == set(server.patients.values())
    assert len(references) == patients
    # The same searches as one load of the whole scope: a Patient and one per type per chunk.
    assert server.searches["Patient"] == server.searches["Procedure"] == CHUNKS
    del results
    assert server.alive_now() == 0  # what the run returns holds no state
