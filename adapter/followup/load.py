"""The follow-up state of many patients, read from the FHIR server in bulk.

The server is the truth (other systems write to it too), so the rules and the indicators read
their input from it, not from local files. The API:

    m = load_mappings(mappings_dir)                      # the ConceptMaps the facts translate by
    loaded = load_states(client, as_of=day, rules=rules, mappings=m, units=[unit]) # a unit
    loaded = load_states(client, as_of=day, rules=rules, mappings=m)               # the region
    loaded = load_states(client, as_of=day, rules=rules, mappings=m, patients=[person])
    loaded = load_states(client, as_of=day, rules=rules, mappings=m, patient_refs=["Patient/123"])
    for person, patient in loaded.patients.items():
        patient.state            # PatientState: what the rules and the indicators read
        patient.open_tasks()     # the adapter's open Tasks as OpenTask, one per key
        patient.closed_keys()    # keys of its completed/cancelled Tasks
        patient.reference        # "Patient/<id>" on this server
    loaded.states()              # {PersonId: PatientState}

Who is read, unless patients are named, is the scope of the scan: `adapter.followup.scope`.
What is returned: `adapter.followup.loaded` (pure; the read models import it from there).

How, in round-trips: after the scope's few searches per unit, per chunk of CHUNK_SIZE patients
one search per type — Patient (`_id=a,b,c`), RiskAssessment, CarePlan, CareTeam, Procedure,
Encounter, Task (`subject=Patient/a,Patient/b,...`) — chunks in parallel. One search per type
rather than Patient + `_revinclude`: HAPI caps the resources it includes per page (1000 by
default) and a year of weekly Prea60 runs gives a patient 50 RiskAssessments. Last, the runs of
each unit the patients' risk-group streaks need (see `_absent_runs`): one batch Bundle of small
searches, usually a single round-trip.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from datetime import date
from itertools import pairwise
from urllib.parse import urlencode

from adapter.domain import PersonId
from adapter.fhirclient import FhirClient
from adapter.followup.facts import (
    PatientFacts,
    Translations,
    merged,
    patient_facts,
    person_of,
    subject_of,
    with_unit_runs,
)
from adapter.followup.loaded import LoadedPatient, LoadedStates
from adapter.followup.rules import RuleSet
from adapter.followup.scope import (
    CHUNK_SIZE,
    PAGE_SIZE,
    PREA60_METHOD,
    UNIT_PARAM,
    Params,
    Scope,
    ScopeError,
    find_patients,
    missing_search_params,
    newest_run,
    patient_refs_of,
    risk_group_refs,
    run_dates,
    search_post,
    unit_token,
)
from adapter.logs import get_logger
from adapter.mapping import Mappings
from adapter.mapping.fhir import Json
from adapter.mapping.prea60 import CONFIRMED_RUN

WORKERS = 4  # chunks read at the same time
PER_PATIENT_TYPES = ("RiskAssessment", "CarePlan", "CareTeam", "Procedure", "Encounter", "Task")

_log = get_logger("adapter.followup.load")


def _chunk_resources(client: FhirClient, refs: Sequence[str]) -> tuple[list[Json], list[Json]]:
    """The Patients `refs` and every resource of PER_PATIENT_TYPES about them."""
    ids = ",".join(ref.split("/", 1)[1] for ref in refs)
    patients = list(search_post(client, "Patient", [("_id", ids)]))
    subjects = ",".join(refs)
    owned = [r for t in PER_PATIENT_TYPES for r in search_post(client, t, [("subject", subjects)])]
    return patients, owned


def _facts_of_chunk(
    patients: list[Json],
    owned: list[Json],
    translations: Translations,
    rules: RuleSet,
) -> tuple[list[tuple[PersonId, str, PatientFacts]], int]:
    """Facts per patient of a chunk, and how many Patients had no personnummer."""
    by_subject: dict[str, list[Json]] = defaultdict(list)
    for resource in owned:
        ref = subject_of(resource)
        if ref:
            by_subject[ref].append(resource)
    found = []
    anonymous = 0
    for patient in patients:
        person = person_of(patient)
        ref = f"Patient/{patient['id']}"
        if person is None:
            anonymous += 1
            continue
        facts = patient_facts(person, by_subject[ref], translations, rules.calendar)
        found.append((person, ref, facts))
    return found, anonymous


def _query_url(resource_type: str, params: Params) -> str:
    return f"{resource_type}?{urlencode(params)}"


def _absent_runs(
    client: FhirClient,
    known: Mapping[str, Collection[date]],
    as_of: date,
    asked: dict[str, set[date]] | None = None,
) -> dict[str, set[date]]:
    """Runs of each unit that no loaded patient is in, as far as their streaks need them.

    A risk-group streak runs from the unit's newest run back to the first run the patient is not
    in (or below the threshold). The runs the loaded patients are in are known; between two known
    runs, and after the newest up to `as_of`, a run nobody loaded is in would end every loaded
    patient's streak there, so the newest run in each such gap is all that is needed: one small
    search per gap, all of them in batch Bundles (usually one round-trip, and every answer empty).
    `asked` (query URL -> answer) is filled and consulted: a chunked scan asks each gap once.
    """
    queries: list[tuple[str, str]] = []  # (unit, url)
    for unit, dates in sorted(known.items()):
        days = sorted({d for d in dates if d <= as_of}, reverse=True)
        if not days:
            continue
        bounds = [(f"gt{days[0].isoformat()}", f"le{as_of.isoformat()}")] if days[0] < as_of else []
        bounds += [
            (f"gt{older.isoformat()}", f"lt{newer.isoformat()}")
            for newer, older in pairwise(days)
            if (newer - older).days > 1
        ]
        for low, high in bounds:
            params = [
                (UNIT_PARAM, unit_token(unit)),
                PREA60_METHOD,
                *CONFIRMED_RUN,
                ("date", low),
                ("date", high),
                ("_sort", "-date"),
                ("_elements", "occurrence"),
                ("_count", "1"),
            ]
            queries.append((unit, _query_url("RiskAssessment", params)))
    answers = {} if asked is None else asked
    new = list(dict.fromkeys(url for _, url in queries if url not in answers))
    if new:
        for url, searchset in zip(new, client.batch_reads(new), strict=True):
            answers[url] = run_dates(searchset)
    found: dict[str, set[date]] = defaultdict(set)
    for unit, url in queries:
        found[unit] |= answers[url]
    return dict(found)


def _age(ref: str) -> tuple[int, str]:
    """Sorts `Patient/<id>` oldest first (HAPI's ids are numbers, in order of creation)."""
    return (len(ref), ref)


def _scope(
    client: FhirClient,
    as_of: date,
    rules: RuleSet,
    units: Sequence[str] | None,
    patients: Iterable[PersonId] | None,
    patient_refs: Iterable[str] | None,
    quick: bool,
) -> tuple[set[str], set[str], dict[str, date]]:
    """The Patients to read, those of them read only as notice candidates, the newest runs."""
    if patients is None and patient_refs is None:
        scope = find_patients(
            client,
            as_of=as_of,
            threshold=rules.params.risk_group.threshold_percent,
            units=units,
            quick=quick,
        )
        refs = scope.refs | scope.home_candidates
        return refs, scope.home_candidates - scope.refs, scope.newest_runs
    return set(patient_refs or ()) | patient_refs_of(client, patients or ()), set(), {}


def load_states(
    client: FhirClient,
    *,
    as_of: date,
    rules: RuleSet,
    units: Sequence[str] | None = None,
    patients: Iterable[PersonId] | None = None,
    patient_refs: Iterable[str] | None = None,
    quick: bool = False,
    mappings: Mappings,
    on_chunk: Callable[[int, int], None] | None = None,
) -> LoadedStates:
    """Read the follow-up state of the patients in scope (see the module docstring).

    Named `patients` / `patient_refs` are read whatever their unit; otherwise the scope of
    `units` (None: the region), narrowed to open Tasks (and recent notices) by `quick`.
    `on_chunk(done, total)` reports progress in chunks. The states are exact for `as_of`.
    """
    translations = Translations.from_mappings(mappings)
    loaded = LoadedStates(as_of)
    refs, candidates, loaded.newest_runs = _scope(
        client, as_of, rules, units, patients, patient_refs, quick
    )
    ordered = sorted(refs, key=_age)  # oldest Patient first
    chunks = [ordered[i : i + CHUNK_SIZE] for i in range(0, len(ordered), CHUNK_SIZE)]
    facts: dict[PersonId, tuple[str, PatientFacts]] = {}
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        # No name holds the futures: as_completed lets go of each one it yields, so a chunk's
        # raw JSON (held by its done future) is freed once its facts are made, not at the end.
        jobs = as_completed([pool.submit(_chunk_resources, client, chunk) for chunk in chunks])
        for done, job in enumerate(jobs, start=1):
            found, anonymous = _facts_of_chunk(*job.result(), translations, rules)
            del job
            loaded.without_person += anonymous
            for person, ref, patient in found:
                if person in facts:
                    _log.warning("patient held twice", patient=str(person), refs=[ref])
                    first_ref, first = facts[person]
                    keep = min(first_ref, ref, key=_age)
                    facts[person] = (keep, merged(first, patient))
                else:
                    facts[person] = (ref, patient)
            if on_chunk:
                on_chunk(done, len(chunks))

    known = _runs_known(loaded.newest_runs, (patient for _, patient in facts.values()))
    loaded.unit_runs = _unit_runs(client, known, as_of)
    _finish(loaded, facts, candidates, set(units or ()))
    return loaded


def _runs_known(
    newest_runs: Mapping[str, date],
    facts: Iterable[PatientFacts],
    known: dict[str, set[date]] | None = None,
) -> dict[str, set[date]]:
    """Runs known to exist, per unit: the newest of each scanned unit and the patients' own."""
    known = defaultdict(set) if known is None else known
    for unit, run in newest_runs.items():
        known[unit].add(run)
    for patient in facts:
        for entry in patient.state.risk_entries:
            known[entry.unit_hsa_id].add(entry.run_date)
    return known


def _unit_runs(
    client: FhirClient,
    known: Mapping[str, set[date]],
    as_of: date,
    asked: dict[str, set[date]] | None = None,
) -> dict[str, tuple[date, ...]]:
    runs = {unit: set(days) for unit, days in known.items()}
    for unit, extra in _absent_runs(client, known, as_of, asked).items():
        runs[unit] |= extra
    return {unit: tuple(sorted(days)) for unit, days in sorted(runs.items())}


def _finish(
    loaded: LoadedStates,
    facts: Mapping[PersonId, tuple[str, PatientFacts]],
    candidates: Collection[str],
    homes: Collection[str],
) -> None:
    """The facts, with their units' runs, into `loaded.patients`, in personnummer order."""
    for person, (ref, patient) in sorted(facts.items(), key=lambda item: item[0].digits):
        patient.state = with_unit_runs(patient.state, loaded.unit_runs)
        if ref in candidates and patient.state.home_unit(loaded.as_of) not in homes:
            continue  # a notice patient of another unit: theirs to scan
        loaded.patients[person] = LoadedPatient(ref, patient)


def _persons(client: FhirClient, refs: Sequence[str]) -> tuple[dict[PersonId, list[str]], int]:
    """The Patients `refs` by personnummer (each person's refs oldest first), and how many
    carry none: a Patient search per CHUNK_SIZE refs, identifiers only, in parallel."""
    chunks = [refs[i : i + CHUNK_SIZE] for i in range(0, len(refs), CHUNK_SIZE)]

    def identifiers(chunk: Sequence[str]) -> list[tuple[PersonId | None, str]]:
        ids = ",".join(ref.split("/", 1)[1] for ref in chunk)
        found = search_post(client, "Patient", [("_id", ids), ("_elements", "identifier")])
        return [(person_of(patient), f"Patient/{patient['id']}") for patient in found]

    by_person: dict[PersonId, list[str]] = defaultdict(list)
    anonymous = 0
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        for found in pool.map(identifiers, chunks):
            for person, ref in found:
                if person is None:
                    anonymous += 1
                else:
                    by_person[person].append(ref)
    for person_refs in by_person.values():
        person_refs.sort(key=_age)
    return by_person, anonymous


def _owned(client: FhirClient, refs: Sequence[str]) -> list[Json]:
    """Every resource of PER_PATIENT_TYPES about the Patients `refs`."""
    subjects = ",".join(refs)
    return [r for t in PER_PATIENT_TYPES for r in search_post(client, t, [("subject", subjects)])]


def iter_states(
    client: FhirClient,
    *,
    as_of: date,
    rules: RuleSet,
    units: Sequence[str] | None = None,
    patients: Iterable[PersonId] | None = None,
    patient_refs: Iterable[str] | None = None,
    quick: bool = False,
    mappings: Mappings,
    chunk_size: int = CHUNK_SIZE,
) -> Iterator[LoadedStates]:
    """`load_states` in chunks of up to `chunk_size` persons, in personnummer order: one chunk is
    read and handed out before the next is asked for, so a caller that plans, writes and lets go
    of each chunk holds one chunk's facts (plus WORKERS chunks read ahead), whatever the scope.

    The same patients with the same decisions as `load_states`: a person's Patients (duplicates)
    are in one chunk (the Patient searches come first, identifiers only); a chunk's `unit_runs`
    are the runs known so far plus the newest run in each gap between them, so every streak
    breaks where the whole scope's runs would break it (see `_absent_runs`); each gap is asked
    once. The round trips are load_states's: one Patient search per CHUNK_SIZE Patients, one
    search per type per chunk, absent runs only for gaps no earlier chunk asked. The first chunk
    carries `without_person`.
    """
    translations = Translations.from_mappings(mappings)
    refs, candidates, newest_runs = _scope(
        client, as_of, rules, units, patients, patient_refs, quick
    )
    by_person, anonymous = _persons(client, sorted(refs, key=_age))
    order = sorted(by_person, key=lambda person: person.digits)
    chunks = [order[i : i + chunk_size] for i in range(0, len(order), chunk_size)]
    homes = set(units or ())
    known: dict[str, set[date]] = defaultdict(set)
    asked: dict[str, set[date]] = {}
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        ahead: deque[Future[list[Json]]] = deque()
        for chunk in chunks[:WORKERS]:
            ahead.append(pool.submit(_owned, client, [r for p in chunk for r in by_person[p]]))
        for index, chunk in enumerate(chunks):
            owned = ahead.popleft().result()
            following = index + WORKERS
            if following < len(chunks):
                chunk_refs = [r for p in chunks[following] for r in by_person[p]]
                ahead.append(pool.submit(_owned, client, chunk_refs))
            facts = _chunk_facts(chunk, by_person, owned, translations, rules)
            del owned
            loaded = LoadedStates(as_of, newest_runs=dict(newest_runs))
            loaded.without_person = anonymous if index == 0 else 0
            _runs_known(newest_runs, (patient for _, patient in facts.values()), known)
            loaded.unit_runs = _unit_runs(client, known, as_of, asked)
            _finish(loaded, facts, candidates, homes)
            yield loaded
            del loaded, facts  # before the next chunk is read
    if not chunks and anonymous:
        yield LoadedStates(as_of, newest_runs=dict(newest_runs), without_person=anonymous)


def _chunk_facts(
    persons: Sequence[PersonId],
    by_person: Mapping[PersonId, Sequence[str]],
    owned: list[Json],
    translations: Translations,
    rules: RuleSet,
) -> dict[PersonId, tuple[str, PatientFacts]]:
    """Facts per person of a chunk; a person held as several Patients: merged, oldest ref kept."""
    by_subject: dict[str, list[Json]] = defaultdict(list)
    for resource in owned:
        ref = subject_of(resource)
        if ref:
            by_subject[ref].append(resource)
    facts: dict[PersonId, tuple[str, PatientFacts]] = {}
    for person in persons:
        refs = by_person[person]
        if len(refs) > 1:
            _log.warning("patient held twice", patient=str(person), refs=list(refs[1:]))
        found = [
            patient_facts(person, by_subject.pop(r, []), translations, rules.calendar) for r in refs
        ]
        combined = found[0]
        for more in found[1:]:
            combined = merged(combined, more)
        facts[person] = (refs[0], combined)
    return facts


# The scope's and the result's names stay importable from here (one import for callers).
__all__ = [
    "CHUNK_SIZE",
    "PAGE_SIZE",
    "PREA60_METHOD",
    "UNIT_PARAM",
    "LoadedPatient",
    "LoadedStates",
    "Scope",
    "ScopeError",
    "find_patients",
    "iter_states",
    "load_states",
    "missing_search_params",
    "newest_run",
    "patient_refs_of",
    "risk_group_refs",
    "unit_token",
]
