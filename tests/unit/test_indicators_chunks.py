"""Indicators read and counted in chunks, from a stand-in for the server's answers (issue
"Region scale" 5): one chunk of patients' facts alive at a time, and a person the server holds
as two Patients counted once, with both Patients' facts, as reading everyone at once would.

The benchmark measured the indicators' peak RSS growing with the patients in scope (0.042 MiB per
patient: every PatientState of the region was read before the first was counted). Now they are
read with `load.iter_states` and counted chunk by chunk into a `compute.IndicatorTally`, which
keeps a PersonId per counted item. The first test counts the patients' facts still alive while
facts are made and after the run: without the chunking, every patient made before is alive at
the last count, and all of them in what the run returns.
"""

from __future__ import annotations

import gc
import weakref
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
from tests.support.indicators import MAPPINGS
from tests.support.loader_server import LoaderServer, region
from tests.support.people import fictional_people
from tests.support.rules import RULES, UNIT

CHUNKS = 8
SAMPLE = 25  # patients between two counts of the facts alive (a count collects garbage)
PERIOD = Period(date(2024, 12, 9), date(2024, 12, 15))


class Tracked(list[Any]):
    """A patient's events that a weak reference can follow (PatientState has slots): alive as
    long as any version of the patient's state or facts is."""


class Alive:
    """The patients' facts made so far, followed by weak references to their events."""

    def __init__(self) -> None:
        self.refs: list[weakref.ref[Tracked]] = []
        self.at_makes: list[int] = []  # every SAMPLE-th patient's facts, before they are made

    def now(self) -> int:
        gc.collect()
        return sum(1 for ref in self.refs if ref() is not None)


@pytest.fixture
def alive(monkeypatch: pytest.MonkeyPatch) -> Alive:
    """Follows every patient's facts the loader makes."""
    found = Alive()
    real_facts = load.patient_facts

    def patient_facts(*args: Any) -> PatientFacts:
        if len(found.refs) % SAMPLE == 0:
            found.at_makes.append(found.now())
        facts = real_facts(*args)
        events = Tracked(facts.state.events)
        facts.state = replace(facts.state, events=events)  # type: ignore[arg-type]
        found.refs.append(weakref.ref(events))
        return facts

    monkeypatch.setattr(load, "patient_facts", patient_facts)
    return found


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Callable[[list[PersonId]], LoaderServer]:
    """`serve(people)`: a Patient of each (ids from 1), each with an AU124 by UNIT in the period;
    the region's scope is the server's Patients, in one unit whose newest run is the period's
    last day (no absent runs to ask for)."""

    def serve(people: list[PersonId]) -> LoaderServer:
        source = SourceRef("minnestest", 1)
        day = date(2024, 12, 10)
        server = region(
            [Event(p, day, EventCode.AU124, UNIT, source, "besök") for p in people], MAPPINGS
        )

        def scope(*_: Any, **__: Any) -> Scope:
            return Scope(refs=server.refs, newest_runs={UNIT: PERIOD.end})

        monkeypatch.setattr(store, "find_patients", scope)
        monkeypatch.setattr(store, "_procedure_refs", lambda *_: set())
        monkeypatch.setattr(store, "_notice_refs", lambda *_: set())
        return server

    return serve


def test_indicators_count_each_chunk_and_let_go_of_its_facts_before_reading_on(
    serve: Callable[[list[PersonId]], LoaderServer], alive: Alive
) -> None:
    server = serve(fictional_people(CHUNKS * load.CHUNK_SIZE, seed=14))
    results, references = store.indicators_from_server(
        server,  # type: ignore[arg-type]
        None,
        PERIOD,
        RULES,
        mappings=MAPPINGS,
    )
    patients = CHUNKS * load.CHUNK_SIZE
    # The chunk being made at most: unchunked, every patient made before (775 at the last count).
    assert max(alive.at_makes) < load.CHUNK_SIZE, alive.at_makes
    au124 = next(r for r in results if r.indicator is IndicatorCode.KVA_AU124)
    assert (au124.unit_hsa_id, au124.numerator) == (UNIT, patients)  # every chunk counted
    assert set(au124.numerator_subjects) == set(server.patients.values())
    assert len(references) == patients
    # The same searches as one load of the whole scope: a Patient and one per type per chunk.
    assert server.searches["Patient"] == server.searches["Procedure"] == CHUNKS
    del results
    assert alive.now() == 0  # what the run returns holds no state


def test_a_person_held_as_two_patients_at_a_chunk_boundary_counts_once_with_both(
    serve: Callable[[list[PersonId]], LoaderServer],
) -> None:
    """A server without the unique identifier rule (profiles/) may hold a person twice: the
    person's two Patients, ids far apart, are read in one chunk, the last of the first chunk,
    and merged; both AU124 count, the person once among the subjects, by the older Patient."""
    people = fictional_people(15, seed=14)
    server = serve(people)
    twice = people[6]  # the 7th in personnummer order: the first chunk's last
    (procedure,) = server.owned["Patient/7"]
    server.patients["900"] = twice
    server.owned["Patient/900"] = [
        {**procedure, "id": "other", "subject": {"reference": "Patient/900"}}
    ]
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
