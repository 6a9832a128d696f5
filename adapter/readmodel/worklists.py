"""The units' worklists served from the read model (adapter/readmodel/store.py), kept current
without a FHIR load per request.

Freshness (the rule every reader gets): every write the adapter makes (an import or an ingest
request, a Task marked done, a follow-up run of the scan, of the subscription hook or of
`sip-fhir followups`) appends what it touched to the journal once the FHIR server has it:

- a Prea60 list, a run confirmed or rejected, a region or unit scan: the unit (every unit):
  the unit's list (and its runs held back) is rebuilt; after a scan, from the states the scan
  read (`seed`, scanrows.py), when nothing else was journalled while it ran;
- a plan, an event, a discharge notice, a hook notification, a Task done: the patient: only
  that patient's rows are read again.

A request reads the unit's rows only after they reflect every journal entry about the unit
(`current`): the rows are brought up to date first (usually a few patients, one round of
searches), so a page never shows data older than the adapter's last write. The rows hold one
day (`as_of`, today in the rules' time zone); the first request of a new day, or the scan,
rebuilds the list for the day. After a write the writer refreshes the units at once, so the
reader rarely waits.

Writes by other systems straight to the FHIR server are seen when the subscription hook
notifies the adapter (its follow-up run journals the patient) or at the next scan, as the
follow-up Tasks themselves are.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import date, datetime

from adapter import personnummer
from adapter.database import state_url
from adapter.domain import PersonId
from adapter.fhirclient import FhirClient
from adapter.followup.load import CHUNK_SIZE, LoadedPatient, load_states
from adapter.followup.rules import RuleSet
from adapter.logs import get_logger
from adapter.mapping import Mappings
from adapter.prea60.guard import RunCheck
from adapter.prea60.runs import pending_runs
from adapter.readmodel.scanrows import ScanRows
from adapter.readmodel.store import (
    ALL_UNITS,
    Conflict,
    Touched,
    UnitState,
    WorklistStore,
    Writes,
)
from adapter.settings import Settings
from adapter.worklist import WorklistRow, patient_name, worklist_rows
from adapter.worklist.rows import logical_id, row_order, worklist_row

SQLITE_FILE = "readmodel.sqlite"
PAGE = "1000"
ATTEMPTS = 3  # refreshes that lose to a concurrent one look again
CACHED_UNITS = 32  # units whose rows are kept parsed in memory (about 2 MB per 1 000 rows)
_log = get_logger("adapter.readmodel")

_STORES: dict[str, WorklistStore] = {}
_STORES_LOCK = threading.Lock()
_UNIT_LOCKS: dict[tuple[str, str], threading.Lock] = {}


def store_for(settings: Settings) -> WorklistStore:
    """The process's one store per database."""
    url = state_url(settings, SQLITE_FILE)
    with _STORES_LOCK:
        found = _STORES.get(url)
        if found is None:
            found = _STORES[url] = WorklistStore(url)
        return found


def _unit_lock(url: str, unit: str) -> threading.Lock:
    with _STORES_LOCK:
        return _UNIT_LOCKS.setdefault((url, unit), threading.Lock())


def names(client: FhirClient, refs: Iterable[str]) -> dict[str, str]:
    """The Patients' names by logical id (`_elements=name`, POST searches in chunks)."""
    ids = sorted({ref.rsplit("/", 1)[-1] for ref in refs})
    found: dict[str, str] = {}
    for start in range(0, len(ids), CHUNK_SIZE):
        params = [("_id", ",".join(ids[start : start + CHUNK_SIZE])), ("_count", PAGE)]
        for patient in client.search("Patient", [*params, ("_elements", "name")], post=True):
            name = patient_name(patient)
            if name:
                found[str(patient["id"])] = name
    return found


@dataclass(frozen=True, slots=True)
class _Listed:
    key: tuple[date, int, datetime | None] | None  # the unit's state the rows were read at
    rows: list[WorklistRow]
    unconfirmed: list[RunCheck]


class Worklists:
    """One per process and database; threads share it (a lock per unit for refreshes)."""

    def __init__(self, settings: Settings, rules: RuleSet, mappings: Mappings) -> None:
        self.settings = settings
        self.rules = rules
        self.mappings = mappings
        self.url = state_url(settings, SQLITE_FILE)
        self.store = store_for(settings)
        self._cache: dict[str, _Listed] = {}  # by unit, the most recently read last
        self._failures: dict[str, tuple[float, Exception]] = {}  # a unit's last failed refresh
        self._cache_lock = threading.Lock()

    def client(self) -> FhirClient:
        return FhirClient(self.settings.endpoint())

    # --- reads ---

    def rows(self, unit: str, as_of: date) -> list[WorklistRow]:
        """The unit's list on `as_of` (today), current with the adapter's last write. The same
        list object while the unit's rows are unchanged (callers may cache what they derive)."""
        return self._listed(unit, as_of).rows

    def unconfirmed_runs(self, unit: str, as_of: date) -> list[RunCheck]:
        """The unit's Prea60 runs held back for a person to confirm (adapter/prea60/)."""
        return self._listed(unit, as_of).unconfirmed

    def _listed(self, unit: str, as_of: date) -> _Listed:
        """The unit's rows as last read, read again only when the unit's state moved."""
        self.current([unit], as_of)
        state = self.store.unit_state(unit)
        key = None if state is None else (state.as_of, state.seq, state.built_at)
        with self._cache_lock:
            found = self._cache.get(unit)
        if found is not None and found.key == key:
            return found
        made = _Listed(key, self.store.rows(unit), self.store.unconfirmed(unit))
        with self._cache_lock:
            self._cache.pop(unit, None)
            self._cache[unit] = made
            while len(self._cache) > CACHED_UNITS:
                self._cache.pop(next(iter(self._cache)))
        return made

    # --- writes ---

    def written(self, touched: Touched) -> int:
        """Journal what a write touched (after the FHIR server has it); the journal's last seq."""
        return self.store.record(touched) if touched else self.store.last_seq()

    def scan_rows(self, units: Sequence[str] | None, as_of: date) -> ScanRows:
        """What a scan of `units` (None: the region, for every unit the read model holds)
        collects for `seed`."""
        held = self.store.units() if units is None else sorted(set(units))
        return ScanRows(tuple(held), as_of, self.rules, self.store.last_seq())

    def seed(self, scan: ScanRows, touched: Touched, last: int) -> None:
        """Store the scan's units' lists from what it read (scanrows.py), once its write is
        journalled (`touched`, up to `last`). A unit is left to the usual rebuild if anything
        else was journalled during the scan (the rows it read may predate that write) or
        another process refreshed it since."""
        entries = len(touched.units) + len(touched.patient_refs) + len(touched.persons)
        if not scan.units or self.store.journalled_between(scan.start_seq, last) != entries:
            return
        with self.client() as client:
            rows = {unit: list(found) for unit, found in scan.rows.items()}
            if scan.changed:
                again = load_states(
                    client,
                    as_of=scan.as_of,
                    rules=self.rules,
                    patient_refs=sorted(scan.changed),
                    mappings=self.mappings,
                )
                for unit in scan.units:
                    rows.setdefault(unit, []).extend(
                        worklist_rows(again, unit, scan.as_of, self.rules)
                    )
            found = names(client, (r.patient_id for unit_rows in rows.values() for r in unit_rows))
            for unit in scan.units:
                named = [replace(r, name=found.get(r.patient_id)) for r in rows.get(unit, ())]
                self._store_seeded(client, unit, named, scan.as_of, last)

    def _store_seeded(
        self, client: FhirClient, unit: str, rows: list[WorklistRow], as_of: date, last: int
    ) -> None:
        with _unit_lock(self.url, unit):
            state = self.store.unit_state(unit)
            if state is not None and state.as_of == as_of and state.seq >= last:
                return  # refreshed past the scan already
            unconfirmed = pending_runs(client, unit, self.rules.params)
            try:
                self.store.replace_unit(
                    unit,
                    sorted(rows, key=row_order),
                    as_of=as_of,
                    seq=last,
                    since=state,
                    unconfirmed=unconfirmed,
                )
            except Conflict:  # another process got there first: the next reader looks again
                return
        _log.info("read model: unit built from the scan", unit=unit, rows=len(rows), seq=last)

    def refresh(self, as_of: date, units: Sequence[str] | None = None) -> None:
        """Bring `units` (default: every unit the read model holds) up to the journal now,
        so the next reader does not wait."""
        self.current(self.store.units() if units is None else units, as_of)
        self.store.prune()

    # --- keeping current ---

    def current(self, units: Sequence[str], as_of: date) -> None:
        """Every unit of `units` reflects every journal entry about it (and holds `as_of`)."""
        stale = [u for u in dict.fromkeys(units) if self._pending(u, as_of)]
        if not stale:
            return
        waited_since = time.monotonic()
        with ExitStack() as locks:  # in sorted order: no deadlock between two refreshes
            for unit in sorted(stale):
                locks.enter_context(_unit_lock(self.url, unit))
            # The refresh this thread waited for failed (the FHIR server is down or stalls):
            # its error is this reader's answer too. Otherwise 200 readers of one unit would
            # each wait out the server in turn, behind one lock.
            for unit in stale:
                failed = self._failures.get(unit)
                if failed is not None and failed[0] >= waited_since:
                    raise failed[1]
            try:
                for _attempt in range(ATTEMPTS):
                    try:
                        self._bring_up(sorted(stale), as_of)
                        return
                    except Conflict as conflict:  # another process refreshed it: look again
                        _log.info("read model refreshed elsewhere", unit=str(conflict))
                self._bring_up(sorted(stale), as_of)
            except Exception as error:
                for unit in stale:
                    self._failures[unit] = (time.monotonic(), error)
                raise

    def _pending(self, unit: str, as_of: date) -> bool:
        state = self.store.unit_state(unit)
        return state is None or state.as_of != as_of or state.seq < self.store.last_seq()

    def _bring_up(self, units: list[str], as_of: date) -> None:
        last = self.store.last_seq()
        by_patients: dict[str, tuple[UnitState, Writes]] = {}
        for unit in units:
            state = self.store.unit_state(unit)
            if state is None or state.as_of != as_of:
                self._rebuild(unit, as_of, state, last)
                continue
            writes = self.store.writes_since(unit, state.seq, last)
            if writes.whole_unit:
                self._rebuild(unit, as_of, state, last)
            elif state.seq < last:  # nothing about the unit, or some of its patients
                by_patients[unit] = (state, writes)
        if by_patients:
            self._refresh_patients(by_patients, last)

    def _rebuild(self, unit: str, as_of: date, since: UnitState | None, last: int) -> None:
        with self.client() as client:
            loaded = load_states(
                client, as_of=as_of, rules=self.rules, units=[unit], mappings=self.mappings
            )
            found = names(client, (p.reference for p in loaded.patients.values()))
            unconfirmed = pending_runs(client, unit, self.rules.params)
        rows = worklist_rows(loaded, unit, as_of, self.rules, found)
        self.store.replace_unit(
            unit, rows, as_of=as_of, seq=last, since=since, unconfirmed=unconfirmed
        )
        _log.info("read model: unit rebuilt", unit=unit, rows=len(rows), seq=last)

    def _refresh_patients(self, units: dict[str, tuple[UnitState, Writes]], last: int) -> None:
        """The journalled patients read once, their rows replaced in each unit."""
        refs = {r for _, w in units.values() for r in w.patient_refs}
        persons = {p for _, w in units.values() for p in w.persons}
        as_of = next(iter(units.values()))[0].as_of
        loaded: list[LoadedPatient] = []
        found: dict[str, str] = {}
        if refs or persons:
            with self.client() as client:
                states = load_states(
                    client,
                    as_of=as_of,
                    rules=self.rules,
                    patient_refs=sorted(refs),
                    patients=_persons(persons, as_of),
                    mappings=self.mappings,
                )
                loaded = list(states.patients.values())
                found = names(client, (p.reference for p in loaded))
        for unit, (state, writes) in units.items():
            mine = {r for r in writes.patient_refs} | {
                p.reference for p in loaded if p.person.digits in writes.persons
            }
            patients = [p for p in loaded if p.reference in mine]
            rows = [
                row
                for p in patients
                if (
                    row := worklist_row(
                        p, unit, state.as_of, self.rules, found.get(_id(p.reference))
                    )
                )
                is not None
            ]
            ids = {_id(r) for r in mine}
            self.store.replace_patients(unit, ids, rows, seq=last, since=state)
        _log.info("read model: patients refreshed", units=len(units), patients=len(loaded))


def _id(reference: str) -> str:
    return logical_id(reference) or reference


def _persons(digits: Iterable[str], as_of: date) -> list[PersonId]:
    return [personnummer.parse(d, as_of) for d in sorted(digits)]


def touched_units(units: Sequence[str] | None) -> Touched:
    """A scan's journal entry: its units, or every unit (a region scan)."""
    return Touched(units=frozenset(units) if units is not None else frozenset({ALL_UNITS}))
