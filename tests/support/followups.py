"""Follow-up scans against the server: source files, the CLI, the Tasks a unit has."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from typer.testing import CliRunner

from adapter.canonical import TaskType
from adapter.cli import app
from adapter.domain import PersonId, Plan, Prea60Row, Record
from adapter.fhirclient import FhirClient
from adapter.followup.load import patient_refs_of
from adapter.followup.reconcile import (
    FollowupReport,
    run_followups,
)
from adapter.followup.rulesfile import load_rules
from adapter.mapping import load_mappings, map_record, transaction_bundle
from adapter.settings import REPO_ROOT, get_settings
from tests.support.records import patientkontrakt, prea60_row

Json = dict[str, Any]


MAPPINGS = load_mappings(REPO_ROOT / "mappings")


RULES = load_rules(REPO_ROOT / "mappings" / "rules.json")


DEC_10 = date(2024, 12, 10)


RUNS = (date(2024, 12, 2), date(2024, 12, 9))


LEFT_GROUP = "Patienten ingår inte längre i riskgruppen (senaste Prea60-körningen)"


def write(client: FhirClient, records: Iterable[Record]) -> None:
    resources = [m for record in records for m in map_record(record, MAPPINGS)]
    client.transaction(transaction_bundle(resources))


def listed(
    person: PersonId, unit: str, runs: Iterable[date] = RUNS, risk: str = "23.5"
) -> list[Prea60Row]:
    return [
        replace(prea60_row(person, unit=unit, run=run), risk_percent=Decimal(risk)) for run in runs
    ]


def plan_of(person: PersonId, unit: str, created: date = date(2024, 9, 20)) -> Plan:
    return replace(
        patientkontrakt(person, source_system=f"fu-{uuid.uuid4().hex[:8]}"),
        unit_hsa_id=unit,
        created=created,
        updated=created,
    )


def tasks_of(client: FhirClient, person: PersonId) -> list[Json]:
    refs = patient_refs_of(client, [person])
    if not refs:
        return []
    params = {"subject": ",".join(sorted(refs)), "_count": "100"}
    return list(client.search("Task", params, post=True))


def one_task(client: FhirClient, person: PersonId, task_type: TaskType, **where: str) -> Json:
    found = [
        t
        for t in tasks_of(client, person)
        if t["code"]["coding"][0]["code"] == task_type.value
        and all(t.get(k) == v for k, v in where.items())
    ]
    assert len(found) == 1, found
    return found[0]


def versions(client: FhirClient, people: Iterable[PersonId]) -> dict[str, str]:
    return {t["id"]: t["meta"]["versionId"] for p in people for t in tasks_of(client, p)}


def counts(report: FollowupReport) -> dict[tuple[str, str], int]:
    return {(k.value, t.value): n for (k, t), n in report.actions.items()}


def scan(client: FhirClient, unit: str, as_of: date, **kwargs: Any) -> FollowupReport:
    report = run_followups(client, RULES, as_of, units=[unit], mappings=MAPPINGS, **kwargs)
    assert report.errors == []
    return report


def run_cli(monkeypatch: pytest.MonkeyPatch, base_url: str, *args: str) -> Any:
    monkeypatch.setenv("SIP_FHIR_BASE_URL", base_url)
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(app, list(args))
    finally:
        get_settings.cache_clear()
