"""Indicators read and counted in chunks, from a stand-in for the server's answers (issue
"Region scale" 5): one chunk of patients' facts alive at a time, and a person the server holds
as two Patients counted once, with both Patients' facts, as reading everyone at once would.

The benchmark measured the indicators' peak RSS growing with the patients in scope (0.042 MiB per
patient: every PatientState of the region was read before the first was counted). Now they are
read with `load.iter_states` and counted chunk by chunk into a `compute.Tally`, which keeps a
PersonId per counted item. The first test counts the patients' facts still alive while facts are
made and after the run: without the chunking, every patient made before is alive at the last
count, and all of them in what the run returns.
"""

from __future__ import annotations

import gc
import random
import threading
import weakref
from collections import Counter
from collections.abc import Callable
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
from adapter.indicators.store import compute_units
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
    """The FhirClient of the loader: `patients` by Patient id, each with one AU124 by UNIT in the
    period. Counts the searches made, and the facts alive every SAMPLE-th patient's facts."""

    def __init__(self, patients: dict[str, PersonId]) -> None:
        self.alive: list[weakref.ref[Tracked]] = []
        self.at_makes: list[int] = []  # every SAMPLE-th patient's facts, before they are made
        self.searches: Counter[str] = Counter()
        self._lock = threading.Lock()  # the loader searches from several threads
        self.patients = patients
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


def persons(count: int) -> list[PersonId]:
    rng = random.Random(14)
    found: set[PersonId] = set()
    while len(found) < count:
        found.add(fictional_person(rng))
    return sorted(found, key=lambda p: p.digits)


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, PersonId]], Server]:
    """`serve(patients)`: the scope of the region is those Patients, in one unit whose newest run
    is the period's last day (no absent runs to ask for)."""

    def serve(patients: dict[str, PersonId]) -> Server:
        fake = Server(patients)
        real_facts = load.patient_facts

        def patient_facts(*args: Any) -> PatientFacts:
            if len(fake.alive) % SAMPLE == 0:
                fake.at_makes.append(fake.alive_now())
            facts = real_facts(*args)
            events = Tracked(facts.state.events)
            facts.state = replace(facts.state, events=events)  # type: ignore[arg-type]
            fake.alive.append(weakref.ref(events))
            return facts

        scope = Scope(refs=set(fake.procedures), newest_runs={UNIT: PERIOD.end})
        monkeypatch.setattr(store, "find_patients", lambda *_, **__: scope)
        monkeypatch.setattr(store, "_procedure_refs", lambda *_: set())
        monkeypatch.setattr(store, "_notice_refs", lambda *_: set())
        monkeypatch.setattr(load, "patient_facts", patient_facts)
        return fake

    return serve


def test_indicators_count_each_chunk_and_let_go_of_its_facts_before_reading_on(
    serve: Callable[[dict[str, PersonId]], Server],
) -> None:
    server = serve({str(n): p for n, p in enumerate(persons(CHUNKS * load.CHUNK_SIZE), start=1)})
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


def test_a_person_held_as_two_patients_at_a_chunk_boundary_counts_once_with_both(
    serve: Callable[[dict[str, PersonId]], Server],
) -> None:
    """A server without the unique identifier rule (profiles/) may hold a person twice: the
    person's two Patients, ids far apart, are read in one chunk, the last of the first chunk,
    and merged; both AU124 count, the person once among the subjects, by the older Patient."""
    people = persons(15)
    patients = {str(n): p for n, p in enumerate(people, start=1)}
    twice = people[6]  # the 7th in personnummer order: the first chunk's last
    patients["900"] = twice
    server = serve(patients)
    refs, chosen = store.indicator_scope(server, None, PERIOD, RULES)  # type: ignore[arg-type]
    loaded = load.load_states(
        server,  # type: ignore[arg-type]
        as_of=PERIOD.end,
        rules=RULES,
        patient_refs=refs,
        mappings=MAPPINGS,
    )
    expected = compute_units(list(loaded.states().values()), chosen, PERIOD, RULES)
    results, references = store.indicators_from_server(
        server,  # type: ignore[arg-type]
        None,
        PERIOD,
        RULES,
        mappings=MAPPINGS,
        chunk_size=7,
    )
    assert results == expected
    au124 = next(r for r in results if r.indicator is IndicatorCode.KVA_AU124)
    assert au124.numerator == 16 and au124.numerator_items.count(twice) == 2
    assert au124.numerator_subjects == tuple(people)
    assert references[twice] == "Patient/7" == loaded.patients[twice].reference
