"""The worklist read model on a real HAPI server (adapter/readmodel/worklists.py): the list the
API answers with is current after an import, a Task marked done, a hook notification and a scan,
and a read model older than the adapter's last write is brought up to date before it is read.
Each test has a unit of its own."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from adapter.domain import EventCode, PersonId
from adapter.fhirclient import FhirClient
from adapter.followup import service as service_module
from adapter.followup.load import patient_refs_of
from adapter.followup.subscriptions import HOOK_HEADER, HOOK_PATH
from adapter.mapping import load_mappings, map_record
from adapter.readmodel import worklists
from adapter.readmodel.store import Touched, WorklistStore, units_table
from adapter.readmodel.worklists import store_for
from adapter.settings import REPO_ROOT
from tests.support.api import (
    HOOK_SECRET,
    Clinic,
    Person,
    Service,
    ingest,
    make_service,
    today,
)
from tests.support.records import event

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("profiles_installed")]

Json = dict[str, Any]
MAPPINGS = load_mappings(REPO_ROOT / "mappings")
PURPOSE = {"X-Purpose": "uppfoljning"}


@pytest.fixture
def clinic() -> Clinic:
    return Clinic.new()


@pytest.fixture
def service(tmp_path: Path, hapi_base_url: str, clinic: Clinic) -> Service:
    return make_service(tmp_path, hapi_base_url, clinic.unit)


@pytest.fixture
def ingested(service: Service, clinic: Clinic) -> Service:
    """The unit ingested through the API."""
    with service.client() as client:
        ingest(client, service.keys.integration, clinic)
    return service


@pytest.fixture
def scanned(ingested: Service, clinic: Clinic) -> Iterator[Service]:
    """The unit ingested through the API and scanned by the follow-up engine."""
    ingested.followups(clinic.unit)
    yield ingested


def store(service: Service) -> WorklistStore:
    return store_for(service.settings)


def worklist(service: Service, clinic: Clinic) -> dict[str, Json]:
    """The API's list by personnummer."""
    client = service.client()
    client.headers.update({"X-API-Key": service.keys.vardsamordnare} | PURPOSE)
    answer = client.get(f"/units/{clinic.unit}/worklist")
    assert answer.status_code == 200, answer.text
    return {row["personnummer"]: row for row in answer.json()["rows"]}


def stored(service: Service, clinic: Clinic) -> dict[str, Any]:
    """The read model's rows as they are now, by personnummer (no refresh on the way)."""
    return {row.person.digits: row for row in store(service).rows(clinic.unit)}


def built_yesterday(service: Service, clinic: Clinic) -> None:
    """The unit's rows as if built yesterday: the next read rebuilds them."""
    with store(service).engine.begin() as connection:
        connection.execute(
            update(units_table)
            .where(units_table.c.unit == clinic.unit)
            .values(as_of=today() - timedelta(days=1))
        )


def is_current(service: Service, clinic: Clinic) -> bool:
    state = store(service).unit_state(clinic.unit)
    return state is not None and state.seq == store(service).last_seq()


def post_uppf(client: FhirClient, clinic: Clinic, who: Person) -> Json:
    """Another system posts a follow-up of `who`'s patientkontrakt today, straight to the
    server; the Procedure as stored."""
    record = replace(
        event(
            PersonId(who.digits),
            code=EventCode.UPPF,
            unit=clinic.unit,
            plan_ref=f"{clinic.source_system}:PK-1",
        ),
        date=today(),
    )
    mapped = map_record(record, MAPPINGS)
    (procedure,) = [m.resource for m in mapped if m.resource_type == "Procedure"]
    (ref,) = patient_refs_of(client, [PersonId(who.digits)])
    procedure["subject"] = {"reference": ref}
    procedure["id"] = client.create(procedure).id
    return procedure


def test_an_import_is_on_the_list_without_a_scan(service: Service, clinic: Clinic) -> None:
    with service.client() as client:
        ingest(client, service.keys.integration, clinic)
    rows = worklist(service, clinic)  # no scan ran: the import's journal entries alone
    assert set(rows) == {clinic.late.pnr, clinic.no_plan.pnr, clinic.sip.pnr}
    assert rows[clinic.late.pnr]["plan"] == "patientkontrakt"
    assert rows[clinic.sip.pnr]["plan"] == "SIP"
    assert rows[clinic.no_plan.pnr]["plan"] == "ingen"
    assert rows[clinic.late.pnr]["name"] == clinic.late.name
    # A plan for the patient without one: only that patient is read again.
    plan = clinic.plan(clinic.no_plan, "sip", today() - timedelta(days=1), "SIP-2")
    with service.client() as client:
        answer = client.post(
            "/ingest/plans", json=[plan], headers={"X-API-Key": service.keys.integration}
        )
    assert answer.status_code == 200, answer.text
    assert worklist(service, clinic)[clinic.no_plan.pnr]["plan"] == "SIP"


def test_a_task_marked_done_is_off_the_list_at_once(scanned: Service, clinic: Clinic) -> None:
    late = stored(scanned, clinic)[clinic.late.digits]
    (task,) = late.tasks
    client = scanned.client()
    client.headers.update({"X-API-Key": scanned.keys.vardsamordnare} | PURPOSE)
    assert client.post(f"/tasks/{task.id}/done").status_code == 200
    assert is_current(scanned, clinic)  # refreshed by the write, before anyone reads
    after = stored(scanned, clinic)[clinic.late.digits]
    assert after.tasks == () and after.last_follow_up == today()


def test_another_systems_write_is_on_the_list_after_the_hook(
    scanned: Service, clinic: Clinic, fhir_client: FhirClient
) -> None:
    assert stored(scanned, clinic)[clinic.late.digits].tasks
    procedure = post_uppf(fhir_client, clinic, clinic.late)
    with scanned.client() as client:
        answer = client.put(
            f"{HOOK_PATH}/Procedure/{procedure['id']}",
            json=procedure,
            headers={HOOK_HEADER: HOOK_SECRET},
        )
        assert answer.status_code == 200, answer.text
    followups = scanned.app.state.followup_service
    deadline = time.monotonic() + 60
    while followups.notified_runs < 1:
        assert time.monotonic() < deadline, "the hook's run did not end"
        time.sleep(0.1)
    assert is_current(scanned, clinic)  # the hook's run refreshed the units it holds
    late = stored(scanned, clinic)[clinic.late.digits]
    assert late.tasks == () and late.last_follow_up == today()
    assert worklist(scanned, clinic)[clinic.late.pnr]["open_tasks"] == []


def test_another_systems_write_is_on_the_list_after_the_scan(
    scanned: Service, clinic: Clinic, fhir_client: FhirClient
) -> None:
    post_uppf(fhir_client, clinic, clinic.late)
    # Not notified: the adapter does not know of the write yet (the documented limit).
    assert worklist(scanned, clinic)[clinic.late.pnr]["open_tasks"] != []
    scanned.followups(clinic.unit)  # the scan closes the Task and rebuilds the unit
    assert is_current(scanned, clinic)
    assert stored(scanned, clinic)[clinic.late.digits].tasks == ()
    assert worklist(scanned, clinic)[clinic.late.pnr]["last_follow_up"] == today().isoformat()


def test_a_read_model_older_than_the_last_write_is_refreshed_first(
    scanned: Service, clinic: Clinic, fhir_client: FhirClient
) -> None:
    procedure = post_uppf(fhir_client, clinic, clinic.late)
    # An adapter write of another process (say `sip-fhir import`) journals the patient.
    store(scanned).record(Touched(patient_refs=frozenset({procedure["subject"]["reference"]})))
    assert not is_current(scanned, clinic)
    assert stored(scanned, clinic)[clinic.late.digits].last_follow_up != today()
    row = worklist(scanned, clinic)[clinic.late.pnr]
    assert (row["last_follow_up"], row["last_follow_up_what"]) == (today().isoformat(), "UPPF")
    assert is_current(scanned, clinic)


def test_the_first_read_of_a_new_day_rebuilds_the_list(scanned: Service, clinic: Clinic) -> None:
    built_yesterday(scanned, clinic)
    before = stored(scanned, clinic)
    assert set(worklist(scanned, clinic)) == {clinic.late.pnr, clinic.no_plan.pnr, clinic.sip.pnr}
    state = store(scanned).unit_state(clinic.unit)
    assert state is not None and state.as_of == today()
    assert stored(scanned, clinic) == before  # nothing else changed


def test_the_list_answers_without_a_fhir_load_when_current(
    scanned: Service, clinic: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    worklist(scanned, clinic)  # current now

    def no_load(*args: object, **kwargs: object) -> None:
        raise AssertionError("the worklist loaded from the FHIR server")

    monkeypatch.setattr(worklists, "load_states", no_load)
    assert set(worklist(scanned, clinic)) == {clinic.late.pnr, clinic.no_plan.pnr, clinic.sip.pnr}


class Loads:
    """`worklists.load_states`, counted: which units or patients each call read."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[dict[str, Any]] = []
        real = worklists.load_states

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(kwargs)
            return real(*args, **kwargs)

        monkeypatch.setattr(worklists, "load_states", counted)

    @property
    def whole_units(self) -> list[Any]:
        return [c["units"] for c in self.calls if c.get("units")]


def test_a_scan_builds_the_list_from_what_it_read(
    ingested: Service, clinic: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = ingested
    loads = Loads(monkeypatch)
    report = service.followups(clinic.unit)
    assert report.changes > 0  # Tasks written: those patients are read again, no one else
    assert loads.whole_units == [] and len(loads.calls) == 1
    assert is_current(service, clinic)
    from_scan = stored(service, clinic)
    assert set(from_scan) == {clinic.late.digits, clinic.no_plan.digits, clinic.sip.digits}
    assert from_scan[clinic.late.digits].name == clinic.late.name
    # A full rebuild (the first read of a new day) gives the same list.
    built_yesterday(service, clinic)
    worklist(service, clinic)
    assert loads.whole_units == [[clinic.unit]]
    assert stored(service, clinic) == from_scan


def test_a_write_journalled_during_the_scan_leaves_the_unit_to_a_rebuild(
    ingested: Service, clinic: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = ingested
    loads = Loads(monkeypatch)
    real = service_module.run_followups

    def with_an_import_meanwhile(*args: Any, **kwargs: Any) -> Any:
        # Another process's import journals a patient while the scan reads: the rows the scan
        # read may predate that write.
        store(service).record(Touched(patient_refs=frozenset({"Patient/elsewhere"})))
        return real(*args, **kwargs)

    monkeypatch.setattr(service_module, "run_followups", with_an_import_meanwhile)
    service.followups(clinic.unit)
    assert loads.whole_units == [[clinic.unit]]  # the usual rebuild, not the scan's rows
    assert is_current(service, clinic)
    assert set(stored(service, clinic)) == {
        clinic.late.digits,
        clinic.no_plan.digits,
        clinic.sip.digits,
    }
