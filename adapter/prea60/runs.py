"""Prea60 runs on the FHIR server: the figures the guard compares, the unconfirmed runs of a
unit, and confirming or rejecting one (its RiskAssessments' `status`, see mapping/prea60.py).

Every search is `POST _search`; the run's rows are never read one by one: counts come from
`_summary=count`, risk groups as Patient references (no personnummer leaves the adapter in a URL).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date
from decimal import Decimal

from adapter.fhirclient import FhirClient
from adapter.followup.params import RuleParams
from adapter.followup.scope import (
    PREA60_METHOD,
    UNIT_PARAM,
    newest_run,
    patient_refs_of,
    risk_group_refs,
    unit_token,
)
from adapter.mapping.fhir import Json
from adapter.mapping.prea60 import CONFIRMED_RUN, STATUS_PARAM, RunStatus
from adapter.prea60.guard import RunCheck, RunFigures, check_run
from adapter.prea60.incoming import IncomingRuns

MAX_PENDING = 20  # unconfirmed runs listed per unit
BATCH = 200  # RiskAssessments per transaction when a run's status changes

Params = list[tuple[str, str]]


def _run_params(unit_hsa_id: str, day: date | None = None) -> Params:
    params = [(UNIT_PARAM, unit_token(unit_hsa_id)), PREA60_METHOD]
    return [*params, ("date", day.isoformat())] if day else params


def count_rows(
    client: FhirClient, unit_hsa_id: str, day: date, where: Iterable[tuple[str, str]]
) -> int:
    params = [*_run_params(unit_hsa_id, day), *where, ("_summary", "count")]
    bundle = next(client.search_bundles("RiskAssessment", params, post=True))
    return int(bundle.get("total", 0))


def previous_run(
    client: FhirClient, unit_hsa_id: str, day: date, threshold: Decimal
) -> RunFigures | None:
    """The unit's newest confirmed run before `day`, with its rows and risk group."""
    previous = newest_run(client, unit_hsa_id, day, before=True)
    if previous is None:
        return None
    return RunFigures(
        previous,
        count_rows(client, unit_hsa_id, previous, CONFIRMED_RUN),
        frozenset(risk_group_refs(client, unit_hsa_id, previous, threshold)),
    )


def check_incoming(client: FhirClient, runs: IncomingRuns, params: RuleParams) -> list[RunCheck]:
    """The verdict on each run of a file, against what the server holds (before writing). A
    run's risk group is read only when there is a previous run to compare it with."""
    threshold = params.risk_group.threshold_percent
    checks = []
    for (unit, day), rows in sorted(runs.rows.items()):
        if count_rows(client, unit, day, CONFIRMED_RUN):  # confirmed before: an update of it
            checks.append(RunCheck(unit, day, rows, already_confirmed=True))
            continue
        previous = previous_run(client, unit, day, threshold)
        group = (
            frozenset(patient_refs_of(client, runs.group(unit, day))) if previous else frozenset()
        )
        figures = RunFigures(day, rows, group)
        checks.append(check_run(unit, figures, previous, params.prea60_guard))
    return checks


# --- runs stored unconfirmed ---


def _pending_days(client: FhirClient, unit_hsa_id: str) -> Iterator[date]:
    """Days of the unit's runs with unconfirmed rows, newest first."""
    below: date | None = None
    for _ in range(MAX_PENDING):
        params = [
            *_run_params(unit_hsa_id),
            (STATUS_PARAM, RunStatus.UNCONFIRMED.value),
            ("_sort", "-date"),
            ("_elements", "occurrence"),
            ("_count", "1"),
        ]
        if below is not None:
            params.append(("date", f"lt{below.isoformat()}"))
        bundle = next(client.search_bundles("RiskAssessment", params, post=True))
        found = [e["resource"].get("occurrenceDateTime", "") for e in bundle.get("entry", ())]
        if not found or not found[0]:
            return
        below = date.fromisoformat(str(found[0])[:10])
        yield below


def pending_runs(client: FhirClient, unit_hsa_id: str, params: RuleParams) -> list[RunCheck]:
    """The unit's unconfirmed runs, newest first, each with the guard's reasons as of now."""
    threshold = params.risk_group.threshold_percent
    unconfirmed = [(STATUS_PARAM, RunStatus.UNCONFIRMED.value)]
    checks = []
    for day in _pending_days(client, unit_hsa_id):
        where = [*_run_params(unit_hsa_id, day), *unconfirmed]
        in_group = [("probability", f"ge{threshold}"), ("_elements", "subject"), ("_count", "1000")]
        group = client.search("RiskAssessment", [*where, *in_group], post=True)
        refs = frozenset(str((r.get("subject") or {}).get("reference")) for r in group)
        figures = RunFigures(day, count_rows(client, unit_hsa_id, day, unconfirmed), refs)
        previous = previous_run(client, unit_hsa_id, day, threshold)
        checks.append(check_run(unit_hsa_id, figures, previous, params.prea60_guard))
    return checks


# --- confirm or reject ---


class RunNotFound(LookupError):
    """No unconfirmed rows of that run (Swedish message)."""


def _versioned_put(resource: Json) -> Json:
    version = (resource.get("meta") or {}).get("versionId")
    request: Json = {"method": "PUT", "url": f"RiskAssessment/{resource['id']}"}
    if version:
        request["ifMatch"] = f'W/"{version}"'
    return {"resource": resource, "request": request}


def set_run_status(client: FhirClient, unit_hsa_id: str, day: date, to: RunStatus) -> int:
    """Give every unconfirmed row of the run `to` (confirm: final, reject: entered-in-error).

    Returns how many rows changed; RunNotFound if none was unconfirmed. A row changed meanwhile
    (409) fails its transaction: run the command again.
    """
    params = [
        *_run_params(unit_hsa_id, day),
        (STATUS_PARAM, RunStatus.UNCONFIRMED.value),
        ("_count", "1000"),
    ]
    rows = [{**r, "status": to.value} for r in client.search("RiskAssessment", params, post=True)]
    if not rows:
        raise RunNotFound(
            f"Enheten {unit_hsa_id} har ingen obekräftad Prea60-körning {day.isoformat()}."
        )
    for start in range(0, len(rows), BATCH):
        entries = [_versioned_put(r) for r in rows[start : start + BATCH]]
        client.transaction({"resourceType": "Bundle", "type": "transaction", "entry": entries})
    return len(rows)
