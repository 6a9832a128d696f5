"""The follow-up state of many patients, read from the FHIR server in bulk.

The server is the truth (other systems write to it too), so the rules and the indicators read
their input from it, not from local files. The API:

    loaded = load_states(client, as_of=day, rules=rules, units=["SE2321000057-E00000000001"])
    loaded = load_states(client, as_of=day, rules=rules)                        # the region
    loaded = load_states(client, as_of=day, rules=rules, patients=[person])     # PersonId
    loaded = load_states(client, as_of=day, rules=rules, patient_refs=["Patient/123"])
    for person, patient in loaded.patients.items():
        patient.state            # PatientState: what the rules and the indicators read
        patient.open_tasks()     # the adapter's open Tasks as OpenTask, one per key
        patient.closed_keys()    # keys of its completed/cancelled Tasks
        patient.reference        # "Patient/<id>" on this server
    loaded.states()              # {PersonId: PatientState}

Who is read, unless patients are named (the scope of a scan):
- per unit (each of `units`, or every unit with Prea60 runs when `units` is None): the risk
  group of the unit's newest confirmed run on or before `as_of` (runs stored unconfirmed are
  skipped by every search here: `CONFIRMED_RUN`, adapter/mapping/prea60.py), the patients
  with an open Task of the unit (Task.requester) and those with an active plan of the unit
  (CarePlan.author);
- the patients with a discharge notice written in the last NOTICE_LOOKBACK_DAYS days: for the
  region all of them; for a unit those whose home unit is the unit (`PatientState.home_unit`, the
  rule of the lus-sip-call indicator: the listing unit of the newest Prea60 row at any risk, else
  the active plan's unit). A notice names no unit, so the unit scan reads the notice patients
  with a Prea60 row or an active plan at the unit and keeps those whose home unit it is;
- `quick` (the daily due-status check): only the open Tasks and the notice patients.
Searching by unit needs the `unit` SearchParameter of profiles/ (SearchParameter-unit.json),
installed before the data (HAPI indexes what is written after it; else `$reindex`).

How, in round-trips: every search is `POST <Type>/_search` (no personnummer in a request line),
`_count` PAGE_SIZE (the server may cap it: HAPI's default maximum page is 50). The scope takes a
few searches per unit. Then per chunk of CHUNK_SIZE patients one search per type — Patient
(`_id=a,b,c`), RiskAssessment, CarePlan, CareTeam, Procedure, Encounter, Task (`subject=Patient/a,
Patient/b,...`) — chunks in parallel. One search per type rather than Patient + `_revinclude`:
HAPI caps the resources it includes per page (1000 by default) and a year of weekly Prea60 runs
gives a patient 50 RiskAssessments. Last, the runs of each unit the patients' risk-group streaks
need (see `_absent_runs`): one batch Bundle of small searches, usually a single round-trip.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from urllib.parse import urlencode

from adapter.canonical import HSA_ID, ID_DISCHARGE, ID_PLAN, ID_TASK, SP_RISK_STATUS, SP_UNIT
from adapter.domain import PersonId
from adapter.fhirclient import FhirClient, entry_error
from adapter.followup.facts import (
    PREA60,
    PatientFacts,
    Translations,
    merged,
    patient_facts,
    person_of,
    subject_of,
    with_unit_runs,
)
from adapter.followup.rules import OpenTask, RuleSet
from adapter.followup.state import PatientState
from adapter.followup.tasks import OPEN_STATUSES, ServerTask
from adapter.logs import get_logger
from adapter.mapping import Mappings, load_mappings
from adapter.mapping.fhir import Json
from adapter.mapping.prea60 import CONFIRMED_RUN
from adapter.mapping.readback import listing_unit
from adapter.settings import get_settings

PAGE_SIZE = 1000  # asked for; the server's own maximum wins
CHUNK_SIZE = 100  # patients per search
WORKERS = 4  # chunks read at the same time
NOTICE_LOOKBACK_DAYS = 31
BATCH_QUERIES = 100  # small searches per batch Bundle
UNIT_PARAM = "unit"  # profiles/SearchParameter-unit.json
PER_PATIENT_TYPES = ("RiskAssessment", "CarePlan", "CareTeam", "Procedure", "Encounter", "Task")

_OPEN = ",".join(sorted(OPEN_STATUSES))
PREA60_METHOD = ("method", "|".join(PREA60))
_log = get_logger("adapter.followup.load")

Params = list[tuple[str, str]]


def unit_token(unit_hsa_id: str) -> str:
    return f"{HSA_ID}|{unit_hsa_id}"


def _search(client: FhirClient, resource_type: str, params: Params) -> Iterator[Json]:
    return client.search(resource_type, [*params, ("_count", str(PAGE_SIZE))], post=True)


def _subjects(resources: Iterable[Json]) -> set[str]:
    return {ref for resource in resources if (ref := subject_of(resource))}


def _run_dates(bundle: Json) -> set[date]:
    """The run dates of the RiskAssessments a search page matched (written as dates)."""
    return {
        date.fromisoformat(str(entry["resource"].get("occurrenceDateTime", ""))[:10])
        for entry in bundle.get("entry", ())
    }


# --- the scope: which patients a scan reads ---


def newest_run(
    client: FhirClient, unit_hsa_id: str, as_of: date, *, before: bool = False
) -> date | None:
    """The date of the unit's newest confirmed Prea60 run on or before `as_of` (`before`: the
    newest before it)."""
    params = [
        (UNIT_PARAM, unit_token(unit_hsa_id)),
        PREA60_METHOD,
        *CONFIRMED_RUN,
        ("date", f"{'lt' if before else 'le'}{as_of.isoformat()}"),
        ("_sort", "-date"),
        ("_elements", "occurrence"),
    ]
    bundle = next(client.search_bundles("RiskAssessment", [*params, ("_count", "1")], post=True))
    return max(_run_dates(bundle), default=None)


def discover_units(client: FhirClient, as_of: date) -> list[str]:
    """Every unit with a confirmed Prea60 run on or before `as_of`: one search per unit."""
    units: list[str] = []
    while True:
        params = [
            PREA60_METHOD,
            *CONFIRMED_RUN,
            ("date", f"le{as_of.isoformat()}"),
            ("_sort", "-date"),
            ("_elements", "extension,occurrence"),
            ("_count", "1"),
            *((f"{UNIT_PARAM}:not", unit_token(u)) for u in units),
        ]
        bundle = next(client.search_bundles("RiskAssessment", params, post=True))
        found = [listing_unit(e["resource"]) for e in bundle.get("entry", ())]
        unit = found[0] if found else None
        if unit is None or unit in units:
            return sorted(units)
        units.append(unit)


def risk_group_refs(
    client: FhirClient, unit_hsa_id: str, run: date, threshold: Decimal
) -> set[str]:
    params = [
        (UNIT_PARAM, unit_token(unit_hsa_id)),
        PREA60_METHOD,
        *CONFIRMED_RUN,
        ("date", run.isoformat()),
        ("probability", f"ge{threshold}"),
        ("_elements", "subject"),
    ]
    return _subjects(_search(client, "RiskAssessment", params))


def open_task_refs(client: FhirClient, unit_hsa_id: str | None) -> set[str]:
    """Patients with an open Task of the adapter (of the unit, or anywhere)."""
    where = (UNIT_PARAM, unit_token(unit_hsa_id)) if unit_hsa_id else ("identifier", f"{ID_TASK}|")
    return _subjects(_search(client, "Task", [where, ("status", _OPEN), ("_elements", "for")]))


def active_plan_refs(client: FhirClient, unit_hsa_id: str | None) -> set[str]:
    where = (UNIT_PARAM, unit_token(unit_hsa_id)) if unit_hsa_id else ("identifier", f"{ID_PLAN}|")
    params = [where, ("status", "active"), ("_elements", "subject")]
    return _subjects(_search(client, "CarePlan", params))


def recent_notice_refs(client: FhirClient, since: datetime) -> set[str]:
    """Patients with a discharge notice written (to the server) since `since`."""
    params = [
        ("identifier", f"{ID_DISCHARGE}|"),
        ("_lastUpdated", f"ge{since.isoformat(timespec='seconds')}"),
        ("_elements", "subject"),
    ]
    return _subjects(_search(client, "Encounter", params))


def listed_among(client: FhirClient, unit_hsa_id: str, refs: Collection[str]) -> set[str]:
    """Those of `refs` with a Prea60 row (any risk) or an active plan at the unit."""
    ordered = sorted(refs)
    found: set[str] = set()
    for start in range(0, len(ordered), CHUNK_SIZE):
        subjects = ",".join(ordered[start : start + CHUNK_SIZE])
        where = [(UNIT_PARAM, unit_token(unit_hsa_id)), ("subject", subjects)]
        found |= _subjects(
            _search(client, "RiskAssessment", [*where, PREA60_METHOD, ("_elements", "subject")])
        )
        found |= _subjects(
            _search(client, "CarePlan", [*where, ("status", "active"), ("_elements", "subject")])
        )
    return found


class ScopeError(RuntimeError):
    """The server cannot answer the scope's searches (message in Swedish)."""


def missing_search_params(client: FhirClient) -> list[str]:
    """The SearchParameters of profiles/ the loader needs that the server does not have."""
    wanted = (SP_UNIT, SP_RISK_STATUS)
    params = [("url", ",".join(wanted)), ("_elements", "url")]
    found = {str(sp.get("url")) for sp in client.search("SearchParameter", params)}
    return [url for url in wanted if url not in found]


def require_unit_search(client: FhirClient) -> None:
    """ScopeError unless the server knows the `unit` and RiskAssessment `status`
    SearchParameters (profiles/)."""
    missing = missing_search_params(client)
    if missing:
        raise ScopeError(
            f"Sökparametern {', '.join(missing)} saknas på FHIR-servern: kör "
            "`sip-fhir profiles install` (och $reindex om servern redan har data)"
        )


@dataclass(slots=True)
class Scope:
    refs: set[str] = field(default_factory=set)
    newest_runs: dict[str, date] = field(default_factory=dict)  # the units' newest runs
    # Read, but kept only if their home unit is a scanned unit (a unit scan's notice patients).
    home_candidates: set[str] = field(default_factory=set)


def find_patients(
    client: FhirClient,
    *,
    as_of: date,
    threshold: Decimal,
    units: Sequence[str] | None = None,
    quick: bool = False,
) -> Scope:
    """The patients a scan of `units` (None: the region) reads; see the module docstring."""
    require_unit_search(client)
    scope = Scope()
    region = units is None
    scan_units = discover_units(client, as_of) if region and not quick else list(units or ())
    for unit in scan_units:
        if not region:
            scope.refs |= open_task_refs(client, unit)
        if quick:
            continue
        if not region:
            scope.refs |= active_plan_refs(client, unit)
        run = newest_run(client, unit, as_of)
        if run is not None:
            scope.newest_runs[unit] = run
            scope.refs |= risk_group_refs(client, unit, run, threshold)
    # The one place the loader reads the clock: "written lately", whatever `as_of` is.
    since = datetime.now(UTC) - timedelta(days=NOTICE_LOOKBACK_DAYS)
    if region:
        scope.refs |= open_task_refs(client, None)
        if not quick:
            scope.refs |= active_plan_refs(client, None)
        scope.refs |= recent_notice_refs(client, since)
    elif scan_units:
        noticed = recent_notice_refs(client, since) - scope.refs
        for unit in scan_units:
            scope.home_candidates |= listed_among(client, unit, noticed)
    return scope


def patient_refs_of(client: FhirClient, patients: Iterable[PersonId]) -> set[str]:
    """The Patient resources of some personnummer (searched in the body, never in a URL)."""
    people = sorted(set(patients), key=lambda p: p.digits)
    refs: set[str] = set()
    for start in range(0, len(people), CHUNK_SIZE):
        tokens = ",".join(f"{p.system}|{p.digits}" for p in people[start : start + CHUNK_SIZE])
        for patient in _search(client, "Patient", [("identifier", tokens), ("_elements", "id")]):
            refs.add(f"Patient/{patient['id']}")
    return refs


# --- the patients' resources ---


def _chunk_resources(client: FhirClient, refs: Sequence[str]) -> tuple[list[Json], list[Json]]:
    """The Patients `refs` and every resource of PER_PATIENT_TYPES about them."""
    ids = ",".join(ref.split("/", 1)[1] for ref in refs)
    patients = list(_search(client, "Patient", [("_id", ids)]))
    subjects = ",".join(refs)
    owned = [r for t in PER_PATIENT_TYPES for r in _search(client, t, [("subject", subjects)])]
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
    client: FhirClient, known: Mapping[str, Collection[date]], as_of: date
) -> dict[str, set[date]]:
    """Runs of each unit that no loaded patient is in, as far as their streaks need them.

    A risk-group streak runs from the unit's newest run back to the first run the patient is not
    in (or below the threshold). The runs the loaded patients are in are known; between two known
    runs, and after the newest up to `as_of`, a run nobody loaded is in would end every loaded
    patient's streak there, so the newest run in each such gap is all that is needed: one small
    search per gap, all of them in batch Bundles (usually one round-trip, and every answer empty).
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
    found: dict[str, set[date]] = defaultdict(set)
    for start in range(0, len(queries), BATCH_QUERIES):
        part = queries[start : start + BATCH_QUERIES]
        bundle = {
            "resourceType": "Bundle",
            "type": "batch",
            "entry": [{"request": {"method": "GET", "url": url}} for _, url in part],
        }
        answer = client.batch(bundle)
        for (unit, _), entry in zip(part, answer.get("entry", ()), strict=True):
            error = entry_error(entry)
            if error is not None:
                raise error
            found[unit] |= _run_dates(entry.get("resource") or {})
    return dict(found)


# --- the result ---


def _age(task: ServerTask) -> tuple[str, int, str]:
    """Oldest first: authored earlier, else the lower server id."""
    return (str(task.resource.get("authoredOn", "")), len(task.id), task.id)


@dataclass(slots=True)
class LoadedPatient:
    """One patient: `reference` to their Patient (the oldest, if the server holds duplicates)."""

    reference: str
    facts: PatientFacts

    @property
    def state(self) -> PatientState:
        return self.facts.state

    @property
    def person(self) -> PersonId:
        return self.facts.state.patient

    @property
    def tasks(self) -> list[ServerTask]:
        return self.facts.tasks

    def open_by_key(self) -> dict[str, ServerTask]:
        """The open Task of each key (the oldest, if a key has several)."""
        chosen: dict[str, ServerTask] = {}
        for task in sorted((t for t in self.tasks if t.is_open), key=_age):
            chosen.setdefault(task.key, task)
        return chosen

    def duplicate_tasks(self) -> list[ServerTask]:
        """Open Tasks whose key already has an older open Task."""
        kept = {t.id for t in self.open_by_key().values()}
        return [t for t in self.tasks if t.is_open and t.id not in kept]

    def open_tasks(self) -> list[OpenTask]:
        return [
            task.open_task(self.facts.focus.focus(task.focus_reference))
            for task in self.open_by_key().values()
        ]

    def closed_keys(self) -> set[str]:
        return {t.key for t in self.tasks if not t.is_open}


@dataclass(slots=True)
class LoadedStates:
    """What `load_states` read. `unit_runs`: the runs per unit that decide the loaded patients'
    risk-group streaks on `as_of` (`_absent_runs`); `newest_runs`: each scanned unit's newest."""

    as_of: date
    patients: dict[PersonId, LoadedPatient] = field(default_factory=dict)
    unit_runs: dict[str, tuple[date, ...]] = field(default_factory=dict)
    newest_runs: dict[str, date] = field(default_factory=dict)
    without_person: int = 0  # Patients without personnummer/samordningsnummer: not evaluated

    def states(self) -> dict[PersonId, PatientState]:
        return {person: loaded.state for person, loaded in self.patients.items()}


def load_states(
    client: FhirClient,
    *,
    as_of: date,
    rules: RuleSet,
    units: Sequence[str] | None = None,
    patients: Iterable[PersonId] | None = None,
    patient_refs: Iterable[str] | None = None,
    quick: bool = False,
    mappings: Mappings | None = None,
    on_chunk: Callable[[int, int], None] | None = None,
) -> LoadedStates:
    """Read the follow-up state of the patients in scope (see the module docstring).

    Named `patients` / `patient_refs` are read whatever their unit; otherwise the scope of
    `units` (None: the region), narrowed to open Tasks (and recent notices) by `quick`.
    `on_chunk(done, total)` reports progress in chunks. The states are exact for `as_of`.
    """
    translations = Translations.from_mappings(
        mappings or load_mappings(get_settings().mappings_dir)
    )
    loaded = LoadedStates(as_of)
    if patients is None and patient_refs is None:
        scope = find_patients(
            client,
            as_of=as_of,
            threshold=rules.params.risk_group.threshold_percent,
            units=units,
            quick=quick,
        )
        refs, loaded.newest_runs = scope.refs | scope.home_candidates, scope.newest_runs
        candidates = scope.home_candidates - scope.refs
    else:
        refs = set(patient_refs or ()) | patient_refs_of(client, patients or ())
        candidates = set()
    ordered = sorted(refs, key=lambda ref: (len(ref), ref))  # oldest Patient first
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
                    keep = min(first_ref, ref, key=lambda r: (len(r), r))
                    facts[person] = (keep, merged(first, patient))
                else:
                    facts[person] = (ref, patient)
            if on_chunk:
                on_chunk(done, len(chunks))

    known: dict[str, set[date]] = defaultdict(set)
    for unit, run in loaded.newest_runs.items():
        known[unit].add(run)
    for _, patient in facts.values():
        for entry in patient.state.risk_entries:
            known[entry.unit_hsa_id].add(entry.run_date)
    for unit, extra in _absent_runs(client, known, as_of).items():
        known[unit] |= extra
    loaded.unit_runs = {unit: tuple(sorted(days)) for unit, days in sorted(known.items())}
    homes = set(units or ())
    for person, (ref, patient) in sorted(facts.items(), key=lambda item: item[0].digits):
        patient.state = with_unit_runs(patient.state, loaded.unit_runs)
        if ref in candidates and patient.state.home_unit(as_of) not in homes:
            continue  # a notice patient of another unit: theirs to scan
        loaded.patients[person] = LoadedPatient(ref, patient)
    return loaded


__all__ = [
    "CHUNK_SIZE",
    "PAGE_SIZE",
    "LoadedPatient",
    "LoadedStates",
    "Scope",
    "ScopeError",
    "find_patients",
    "load_states",
    "patient_refs_of",
]
