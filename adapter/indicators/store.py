"""Indicators and the FHIR server: write the reports, take the weekly snapshot, read them back.

Writes go as one transaction per unit and period, every entry a conditional update on its
business identifier: a re-run for the same unit and period updates the same resources, and
unchanged content gets no new version. The states come from the follow-up loader
(`adapter.followup.load`), the one way the adapter reads patients back from the server; this
module only widens its scope to the patients an indicator period needs. They are read and
counted one chunk at a time (`iter_states` into an `IndicatorTally`), so a region's snapshot
holds one chunk's facts, not the region's.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from adapter.canonical import ID_DISCHARGE, KVA, PROFILE_MEASURE_REPORT
from adapter.domain import PersonId
from adapter.fhirclient import FhirClient, WriteResult
from adapter.followup.facts import notice_facts, subject_of
from adapter.followup.load import CHUNK_SIZE, iter_states
from adapter.followup.rules import RuleSet
from adapter.followup.rulesfile import rules_of
from adapter.followup.scope import find_patients, unit_token
from adapter.followup.state import PatientState
from adapter.indicators.compute import (
    KVA_INDICATORS,
    IndicatorResult,
    IndicatorTally,
    Period,
    listing_units,
)
from adapter.indicators.reports import (
    PatientRef,
    ReportFormatError,
    ReportType,
    StoredReport,
    parse_report,
    report_resources,
)
from adapter.indicators.trend import snapshot_period
from adapter.logs import get_logger
from adapter.mapping import Mappings, load_mappings, transaction_bundle
from adapter.mapping.fhir import Json, patient_reference
from adapter.sandbox import versioned
from adapter.settings import Settings

UNIT_SEARCH = "unit"  # profiles/SearchParameter-indicator-unit.json (MeasureReport, Procedure)
PAGE = "1000"  # asked for; the server's own maximum wins

_log = get_logger("adapter.indicators")


def compute_units(
    states: Iterable[PatientState], units: Sequence[str] | None, period: Period, rules: RuleSet
) -> list[IndicatorResult]:
    """Every indicator of each unit (default: every unit with a Prea60 run by the period's end)."""
    states = list(states)
    tally = IndicatorTally(units or listing_units(states, period.end), period, rules)
    tally.add(states)
    return tally.results()


@dataclass(slots=True)
class StoreSummary:
    transactions: int = 0
    created: Counter[str] = field(default_factory=Counter)
    written: Counter[str] = field(default_factory=Counter)  # updated or unchanged

    def add(self, result: WriteResult) -> None:
        kind = result.resource_type or "?"
        (self.created if result.created else self.written)[kind] += 1


def _by_unit_and_period(
    results: Iterable[IndicatorResult],
) -> Iterator[list[IndicatorResult]]:
    groups: dict[tuple[str, Period], list[IndicatorResult]] = defaultdict(list)
    for result in results:
        groups[(result.unit_hsa_id, result.period)].append(result)
    yield from groups.values()


def store_reports(
    client: FhirClient,
    results: Iterable[IndicatorResult],
    patient_ref: PatientRef = patient_reference,
) -> StoreSummary:
    """Write both reports of each result and their Lists: one transaction per unit and period.

    List entries are conditional Patient references by default, which the server resolves inside
    the transaction (the personnummer travels in the body only, never in a URL).
    """
    summary = StoreSummary()
    for group in _by_unit_and_period(results):
        response = client.transaction(transaction_bundle(report_resources(group, patient_ref)))
        summary.transactions += 1
        for entry in response.get("entry", []):
            summary.add(WriteResult.from_entry(entry))
        _log.info(
            "indicators.stored",
            unit=group[0].unit_hsa_id,
            period=f"{group[0].period.start}/{group[0].period.end}",
            reports=len(group),
        )
    return summary


def _procedure_refs(client: FhirClient, units: Sequence[str] | None, period: Period) -> set[str]:
    """Patients with a KVÅ event of the indicators in the period (performed by one of `units`)."""
    codes = ",".join(f"{KVA}|{code.value}" for code in KVA_INDICATORS.values())
    base = [
        ("code", codes),
        ("date", f"ge{period.start.isoformat()}"),
        ("date", f"le{period.end.isoformat()}"),
        ("_elements", "subject"),
        ("_count", PAGE),
    ]
    wheres = [[(UNIT_SEARCH, unit_token(unit))] for unit in units] if units else [[]]
    return {
        ref
        for where in wheres
        for resource in client.search("Procedure", [*base, *where], post=True)
        if (ref := subject_of(resource))
    }


def _notice_refs(client: FhirClient, period: Period, rules: RuleSet) -> set[str]:
    """Patients with a discharge notice needing a SIP dated in the period (any unit: a notice's
    unit is the patient's home unit, known only once the patient is loaded).

    A notice is written to the server after it was sent, so `_lastUpdated` from the day before
    the period narrows the search without losing one; the notice day decides the rest.
    """
    params = [
        ("identifier", f"{ID_DISCHARGE}|"),
        ("_lastUpdated", f"ge{(period.start - timedelta(days=1)).isoformat()}"),
        ("_elements", "identifier,status,extension,subject"),
        ("_count", PAGE),
    ]
    refs = set()
    for encounter in client.search("Encounter", params, post=True):
        notice = notice_facts(encounter)
        ref = subject_of(encounter)
        if notice and notice.needs_sip and ref and rules.notice_day(notice) in period:
            refs.add(ref)
    return refs


def indicator_scope(
    client: FhirClient, units: Sequence[str] | None, period: Period, rules: RuleSet
) -> tuple[set[str], list[str]]:
    """The Patients the indicators of `units` (None: the region) need for `period`: the
    follow-up loader's scope on the period's last day (risk groups, plans, Tasks), and the
    patients with the unit's KVÅ events in the period and with notices in the period. Also the
    units: `units`, or every unit with a Prea60 run by the period's end (an empty risk group
    too)."""
    scope = find_patients(
        client,
        as_of=period.end,
        threshold=rules.params.risk_group.threshold_percent,
        units=units,
    )
    refs = scope.refs | _procedure_refs(client, units, period) | _notice_refs(client, period, rules)
    return refs, list(units) if units else sorted(scope.newest_runs)


def loaded_reference(references: Mapping[PersonId, str]) -> PatientRef:
    """List entries by the Patient ids the loader resolved (conditional for anyone else)."""

    def reference(person: PersonId) -> Json:
        found = references.get(person)
        return {"reference": found} if found else patient_reference(person)

    return reference


def indicators_from_server(
    client: FhirClient,
    units: Sequence[str] | None,
    period: Period,
    rules: RuleSet,
    *,
    mappings: Mappings,
    chunk_size: int = CHUNK_SIZE,
) -> tuple[list[IndicatorResult], dict[PersonId, str]]:
    """Every indicator of `units` (None: every unit with a Prea60 run) for `period`, and the
    Patient reference the loader resolved for each person read (for `loaded_reference`).

    Read and counted `chunk_size` persons at a time (`iter_states`, the searches of
    `load_states`): between chunks only the counted items and the references are kept, so
    memory does not grow with the patients' facts, whatever the region's size.
    """
    refs, chosen = indicator_scope(client, units, period, rules)
    tally = IndicatorTally(chosen, period, rules)
    references: dict[PersonId, str] = {}
    chunks = iter_states(
        client,
        as_of=period.end,
        rules=rules,
        patient_refs=refs,
        mappings=mappings,
        chunk_size=chunk_size,
    )
    for loaded in chunks:
        tally.add(patient.state for patient in loaded.patients.values())
        references.update((person, p.reference) for person, p in loaded.patients.items())
        del loaded  # before the next chunk is read
    return tally.results(), references


def store_snapshot(
    client: FhirClient,
    units: Sequence[str] | None,
    as_of: date,
    *,
    rules: RuleSet,
    mappings: Mappings,
) -> list[IndicatorResult]:
    """The weekly job: every indicator of `units` (None: all listing units) for the week ending
    on `as_of`, stored on the server. Returns what was stored."""
    period = snapshot_period(as_of)
    results, references = indicators_from_server(client, units, period, rules, mappings=mappings)
    store_reports(client, results, loaded_reference(references))
    return results


def _profile_values(client: FhirClient) -> str:
    """Our profile, and its versioned form in sandbox mode (adapter/sandbox.py)."""
    version = client.endpoint.profile_version
    if not version:
        return PROFILE_MEASURE_REPORT
    return f"{PROFILE_MEASURE_REPORT},{versioned(PROFILE_MEASURE_REPORT, version)}"


def read_reports(
    client: FhirClient,
    units: Sequence[str] | None = None,
    report_type: ReportType = ReportType.SUMMARY,
) -> list[StoredReport]:
    """The stored reports of `units` (None: all), oldest period first; others' are skipped."""
    # The unit's reports of this profile only: not the many patients' individual reports.
    searches: list[dict[str, str]] = (
        [{UNIT_SEARCH: unit_token(unit), "_profile": PROFILE_MEASURE_REPORT} for unit in units]
        if units
        else [{"_profile": _profile_values(client)}]
    )
    reports: list[StoredReport] = []
    for params in searches:
        for resource in client.search("MeasureReport", {**params, "_count": PAGE}):
            if resource.get("type") != report_type.value:
                continue
            try:
                reports.append(parse_report(resource))
            except ReportFormatError as error:
                _log.warning("indicators.unreadable_report", reason=str(error))
    return sorted(reports, key=lambda r: (r.unit_hsa_id, r.period.end, r.period.start, r.indicator))


def weekly_snapshot(settings: Settings, today: date | None = None) -> list[IndicatorResult]:
    """The scheduler's weekly job: every listing unit's snapshot of the week that ended
    yesterday (run on a Monday: Monday–Sunday), in the rules' time zone."""
    rules = rules_of(settings)
    if today is None:
        today = datetime.now(ZoneInfo(rules.params.calendar.timezone)).date()
    as_of = today - timedelta(days=1)
    started = time.monotonic()
    with FhirClient(settings.endpoint()) as client:
        results = store_snapshot(
            client, None, as_of, rules=rules, mappings=load_mappings(settings.mappings_dir)
        )
    _log.info(
        "indicators.snapshot",
        as_of=as_of.isoformat(),
        units=len({r.unit_hsa_id for r in results}),
        reports=len(results),
        seconds=round(time.monotonic() - started, 1),
    )
    return results


# The patients behind a unit's KVÅ events in a period, for other counts of the same events
# (adapter/survey/indicators.py: SIPs held, without the Prea60 scope and the notices).
procedure_patients = _procedure_refs
