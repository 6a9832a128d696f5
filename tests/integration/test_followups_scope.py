"""Issue 10.7: a unit's own scan covers every patient whose home unit is the unit (the rule of the
lus-sip-call indicator, `PatientState.home_unit`), also one whose only reason to be scanned is a
discharge notice: listed at the unit on a low-risk row, no plan, no open Task."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

import pytest

from adapter.canonical import TaskType
from adapter.domain import DischargeNotice, PersonId
from adapter.fhirclient import FhirClient
from tests.support.followups import counts, listed, one_task, scan, tasks_of, write
from tests.support.people import fictional_person as new_person
from tests.support.records import STOCKHOLM, discharge

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("profiles_installed")]

DEC_10 = date(2024, 12, 10)


def _notice(person: PersonId, tag: str) -> DischargeNotice:
    return replace(
        discharge(person, message_id=f"LC-{tag}"),
        ready_at=datetime(2024, 12, 9, 14, 0, tzinfo=STOCKHOLM),  # a Monday
    )


def test_a_unit_scan_raises_the_sip_call_of_a_low_risk_patient_of_the_unit(
    fhir_client: FhirClient,
    unit: str,
) -> None:
    low_risk = new_person()
    write(fhir_client, [*listed(low_risk, unit, risk="4.0"), _notice(low_risk, unit[-12:])])
    report = scan(fhir_client, unit, DEC_10)
    assert counts(report) == {("create", "sip-call"): 1}
    task = one_task(fhir_client, low_risk, TaskType.SIP_CALL)
    assert task["requester"]["identifier"]["value"] == unit
    assert scan(fhir_client, unit, DEC_10).changes == 0  # a rerun writes nothing


def test_a_unit_scan_leaves_a_discharged_patient_of_another_unit_alone(
    fhir_client: FhirClient,
    unit: str,
) -> None:
    other_unit = f"{unit}X"
    elsewhere = new_person()  # listed at our unit once, but now at another: home unit elsewhere
    write(
        fhir_client,
        [
            *listed(elsewhere, unit, runs=[date(2024, 11, 25)], risk="4.0"),
            *listed(elsewhere, other_unit, runs=[date(2024, 12, 9)], risk="4.0"),
            _notice(elsewhere, other_unit[-13:]),
        ],
    )
    report = scan(fhir_client, unit, DEC_10)
    assert report.patients == 0
    assert tasks_of(fhir_client, elsewhere) == []
    assert counts(scan(fhir_client, other_unit, DEC_10)) == {("create", "sip-call"): 1}
