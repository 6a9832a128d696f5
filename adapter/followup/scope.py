"""Who a follow-up scan reads: the patients in scope, found by searches on the FHIR server.

Unless patients are named:
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

Every search is `POST <Type>/_search` (no personnummer in a request line), `_count` PAGE_SIZE
(the server may cap it: HAPI's default maximum page is 50); the scope takes a few searches per
unit. The states of the patients found are read by `adapter.followup.load`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from adapter.canonical import HSA_ID, ID_DISCHARGE, ID_PLAN, ID_TASK, SP_RISK_STATUS, SP_UNIT
from adapter.domain import PersonId
from adapter.fhirclient import FhirClient
from adapter.followup.facts import PREA60, subject_of
from adapter.followup.tasks import OPEN_STATUSES
from adapter.mapping.fhir import Json
from adapter.mapping.prea60 import CONFIRMED_RUN
from adapter.mapping.readback import listing_unit

PAGE_SIZE = 1000  # asked for; the server's own maximum wins
CHUNK_SIZE = 100  # patients per search
NOTICE_LOOKBACK_DAYS = 31
UNIT_PARAM = "unit"  # profiles/SearchParameter-unit.json

_OPEN = ",".join(sorted(OPEN_STATUSES))
PREA60_METHOD = ("method", "|".join(PREA60))

Params = list[tuple[str, str]]


def unit_token(unit_hsa_id: str) -> str:
    return f"{HSA_ID}|{unit_hsa_id}"


def search_post(client: FhirClient, resource_type: str, params: Params) -> Iterator[Json]:
    """Every match of a `POST _search`, PAGE_SIZE per page."""
    return client.search(resource_type, [*params, ("_count", str(PAGE_SIZE))], post=True)


def subject_refs(resources: Iterable[Json]) -> set[str]:
    return {ref for resource in resources if (ref := subject_of(resource))}


def run_dates(bundle: Json) -> set[date]:
    """The run dates of the RiskAssessments a search page matched (written as dates)."""
    return {
        date.fromisoformat(str(entry["resource"].get("occurrenceDateTime", ""))[:10])
        for entry in bundle.get("entry", ())
    }


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
    return max(run_dates(bundle), default=None)


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
    return subject_refs(search_post(client, "RiskAssessment", params))


def open_task_refs(client: FhirClient, unit_hsa_id: str | None) -> set[str]:
    """Patients with an open Task of the adapter (of the unit, or anywhere)."""
    where = (UNIT_PARAM, unit_token(unit_hsa_id)) if unit_hsa_id else ("identifier", f"{ID_TASK}|")
    return subject_refs(
        search_post(client, "Task", [where, ("status", _OPEN), ("_elements", "for")])
    )


def active_plan_refs(client: FhirClient, unit_hsa_id: str | None) -> set[str]:
    where = (UNIT_PARAM, unit_token(unit_hsa_id)) if unit_hsa_id else ("identifier", f"{ID_PLAN}|")
    params = [where, ("status", "active"), ("_elements", "subject")]
    return subject_refs(search_post(client, "CarePlan", params))


def recent_notice_refs(client: FhirClient, since: datetime) -> set[str]:
    """Patients with a discharge notice written (to the server) since `since`."""
    params = [
        ("identifier", f"{ID_DISCHARGE}|"),
        ("_lastUpdated", f"ge{since.isoformat(timespec='seconds')}"),
        ("_elements", "subject"),
    ]
    return subject_refs(search_post(client, "Encounter", params))


def listed_among(client: FhirClient, unit_hsa_id: str, refs: Collection[str]) -> set[str]:
    """Those of `refs` with a Prea60 row (any risk) or an active plan at the unit."""
    ordered = sorted(refs)
    found: set[str] = set()
    for start in range(0, len(ordered), CHUNK_SIZE):
        subjects = ",".join(ordered[start : start + CHUNK_SIZE])
        where = [(UNIT_PARAM, unit_token(unit_hsa_id)), ("subject", subjects)]
        found |= subject_refs(
            search_post(client, "RiskAssessment", [*where, PREA60_METHOD, ("_elements", "subject")])
        )
        found |= subject_refs(
            search_post(
                client, "CarePlan", [*where, ("status", "active"), ("_elements", "subject")]
            )
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
        for patient in search_post(
            client, "Patient", [("identifier", tokens), ("_elements", "id")]
        ):
            refs.add(f"Patient/{patient['id']}")
    return refs


__all__ = [
    "CHUNK_SIZE",
    "PAGE_SIZE",
    "PREA60_METHOD",
    "UNIT_PARAM",
    "Scope",
    "ScopeError",
    "find_patients",
    "missing_search_params",
    "newest_run",
    "patient_refs_of",
    "require_unit_search",
    "risk_group_refs",
    "unit_token",
]
