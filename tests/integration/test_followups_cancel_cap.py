"""Issue 10.4 (second line of defence): a scan that would cancel more Tasks than
`scan.max_cancellations` at once stops and asks. Replays the incident: 22 patients with a Task,
then a 3-row run becomes the unit's newest (written straight to the server, past the import's
guard), and the next scan would cancel 19 Tasks ("no longer in the risk group")."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from adapter.canonical import TaskType
from adapter.domain import PersonId
from adapter.fhirclient import FhirClient
from adapter.followup.reconcile import CancelPolicy, run_followups
from tests.support.followups import (
    LEFT_GROUP,
    MAPPINGS,
    RULES,
    counts,
    listed,
    one_task,
    run_cli,
    scan,
    write,
)
from tests.support.people import fictional_person as new_person

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("profiles_installed")]

DEC_10, DEC_17 = date(2024, 12, 10), date(2024, 12, 17)


def _statuses(client: FhirClient, people: list[PersonId]) -> list[str]:
    return [one_task(client, p, TaskType.ESTABLISH_PLAN)["status"] for p in people]


@pytest.fixture
def partial_run(fhir_client: FhirClient, unit: str) -> tuple[list[PersonId], list[PersonId]]:
    """22 patients with an open Task; then a run of 3 of them: (the 3 kept, the 19 dropped)."""
    people = [new_person() for _ in range(22)]
    write(fhir_client, [row for p in people for row in listed(p, unit)])
    assert counts(scan(fhir_client, unit, DEC_10)) == {("create", "establish-plan"): 22}
    kept, dropped = people[:3], people[3:]
    write(fhir_client, [row for p in kept for row in listed(p, unit, runs=[date(2024, 12, 16)])])
    return kept, dropped


def test_the_cli_stops_before_writing_and_lists_what_it_would_cancel(
    fhir_client: FhirClient,
    hapi_base_url: str,
    unit: str,
    partial_run: tuple[list[PersonId], list[PersonId]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, dropped = partial_run
    args = ("followups", "--unit", unit, "--as-of", DEC_17.isoformat())
    result: Any = run_cli(monkeypatch, hapi_base_url, *args)
    assert result.exit_code == 3, result.output
    assert "stoppades innan något skrevs" in result.output
    assert "19 uppgifter" in result.output and "--confirm-cancellations" in result.output
    assert dropped[0].masked in result.output and dropped[0].digits not in result.output
    assert set(_statuses(fhir_client, dropped)) == {"requested"}  # nothing cancelled

    dry: Any = run_cli(monkeypatch, hapi_base_url, *args, "--dry-run")  # shows, writes nothing
    assert dry.exit_code == 0, dry.output
    assert "Makulerade: 19" in dry.output and "Makulerade uppgifter" in dry.output
    assert set(_statuses(fhir_client, dropped)) == {"requested"}

    confirmed: Any = run_cli(monkeypatch, hapi_base_url, *args, "--confirm-cancellations")
    assert confirmed.exit_code == 0, confirmed.output
    assert "Makulerade: 19" in confirmed.output
    assert "Makulerade uppgifter" in confirmed.output  # the list, one row per Task
    first = one_task(fhir_client, dropped[0], TaskType.ESTABLISH_PLAN)
    assert f"Task/{first['id']}" in confirmed.output
    assert set(_statuses(fhir_client, dropped)) == {"cancelled"}
    assert first["statusReason"] == {"text": LEFT_GROUP}


def test_the_scheduler_and_api_keep_the_tasks_open_and_flag_it(
    fhir_client: FhirClient,
    unit: str,
    partial_run: tuple[list[PersonId], list[PersonId]],
) -> None:
    kept, dropped = partial_run
    report = run_followups(fhir_client, RULES, DEC_17, units=[unit], mappings=MAPPINGS)
    assert not report.stopped and report.errors == []
    assert len(report.held) == 19 and report.cancelled == []
    assert {h.person for h in report.held} == set(dropped)
    assert set(_statuses(fhir_client, dropped)) == {"requested"}
    assert set(_statuses(fhir_client, kept)) == {"requested"}


def test_a_few_cancellations_go_through_and_are_listed(
    fhir_client: FhirClient,
    unit: str,
) -> None:
    people = [new_person() for _ in range(3)]
    write(fhir_client, [row for p in people for row in listed(p, unit)])
    scan(fhir_client, unit, DEC_10)
    write(fhir_client, listed(people[0], unit, runs=[date(2024, 12, 16)]))
    report = scan(fhir_client, unit, DEC_17, cancellations=CancelPolicy.ASK)
    assert counts(report)[("cancel", "establish-plan")] == 2
    assert sorted(c.person.digits for c in report.cancelled) == sorted(p.digits for p in people[1:])
    assert {c.reason for c in report.cancelled} == {LEFT_GROUP}
    assert all(c.task_id for c in report.cancelled)
