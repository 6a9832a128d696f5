"""Two `sip-fhir followups` processes at once on one unit and one HAPI server (two scheduler
leaders for a moment, or a person running the command while the scheduler scans): every Task
still exists once per business identifier, as Tasks are written as conditional updates on it."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections import Counter
from pathlib import Path

import pytest

from adapter.canonical import TaskType
from adapter.fhirclient import FhirClient
from tests.support.followups import listed, tasks_of, write
from tests.support.people import fictional_person as new_person
from tests.support.processes import SIP_FHIR

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("profiles_installed")]

PATIENTS = 40


@pytest.mark.timeout(600)
def test_two_followups_at_once_raise_each_task_once(
    fhir_client: FhirClient, hapi_base_url: str, tmp_path: Path
) -> None:
    unit = f"SE2321000057-E{uuid.uuid4().hex[:12].upper()}"  # this test's alone
    people = [new_person() for _ in range(PATIENTS)]
    write(fhir_client, [row for person in people for row in listed(person, unit)])
    command = [SIP_FHIR, "followups", "--unit", unit, "--as-of", "2024-12-10"]
    runs = [
        subprocess.Popen(
            command,
            env={
                **os.environ,
                "SIP_FHIR_BASE_URL": hapi_base_url,
                "SIP_FHIR_DATA_DIR": str(tmp_path / name),
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name in ("first", "second")
    ]
    for run in runs:
        output, _ = run.communicate(timeout=540)
        assert run.returncode == 0, output
    tasks = [task for person in people for task in tasks_of(fhir_client, person)]
    identifiers = Counter(
        (i["system"], i["value"]) for task in tasks for i in task.get("identifier", [])
    )
    assert identifiers and max(identifiers.values()) == 1, identifiers.most_common(3)
    per_person = Counter(task["for"]["reference"] for task in tasks)
    assert len(per_person) == PATIENTS and set(per_person.values()) == {1}
    assert {t["code"]["coding"][0]["code"] for t in tasks} == {TaskType.ESTABLISH_PLAN.value}
