"""Source records and small readers of mapped resources, shared by the mapping, rule and
server tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from adapter.domain import (
    Appointment,
    Consent,
    DischargeNotice,
    Event,
    EventCode,
    ExpressedBy,
    Huvudman,
    IdKind,
    Participant,
    PersonId,
    Plan,
    PlanAction,
    PlanGoal,
    PlanKind,
    PlanStatus,
    Prea60Row,
    Record,
    Responsible,
    SourceRef,
)
from adapter.mapping import (
    MappedResource,
)

STOCKHOLM = ZoneInfo("Europe/Stockholm")


UNIT = "SE2321000057-E00000000001"


KARIN = "SE2321000057-P00000000011"


PER = "SE2321000057-P00000000021"


SRC = SourceRef("test", 1)


KARIN_EK = Participant("fast-vardkontakt", "Karin Ek", KARIN, "Aneby vårdcentral", Huvudman.REGION)


def person(digits: str = "193803139801", kind: IdKind = IdKind.PERSONNUMMER) -> PersonId:
    return PersonId(digits, kind)


def prea60_row(
    patient: PersonId | None = None, *, unit: str = UNIT, run: date = date(2024, 12, 9)
) -> Prea60Row:
    return Prea60Row(
        patient=patient or person(),
        family_name="Lind",
        given_name="Åsa Maria",
        risk_percent=Decimal("23.5"),
        run_date=run,
        unit_hsa_id=unit,
        unit_name="Aneby vårdcentral",
        gp_hsa_id=PER,
        source=SRC,
    )


def patientkontrakt(
    patient: PersonId | None = None, *, source_system: str = "cosmic", version: int = 1
) -> Plan:
    return Plan(
        source_system=source_system,
        plan_id="VP-1001",
        version=version,
        kind=PlanKind.PATIENTKONTRAKT,
        patient=patient or person(),
        status=PlanStatus.ACTIVE,
        title="Patientkontrakt",
        created=date(2024, 9, 2),
        updated=date(2024, 9, 2) + timedelta(days=30 * (version - 1)),
        unit_hsa_id=UNIT,
        source=SRC,
        valid_until=date(2025, 3, 2),
        what_matters="Att orka gå till affären själv",
        goals=(PlanGoal("g1", "Gå 20 minuter varje dag", ExpressedBy.PATIENT),),
        actions=(
            PlanAction("Väga mig varje måndag", Responsible.PATIENT, goal="g1"),
            PlanAction("Läkemedelsgenomgång", Responsible.REGION, role="fast-lakarkontakt"),
        ),
        participants=(
            KARIN_EK,
            Participant("fast-lakarkontakt", "Per Holm", PER, "Aneby vårdcentral", Huvudman.REGION),
        ),
        next_follow_up=date(2024, 11, 29),
        agreed_appointments=(Appointment(date(2024, 11, 29), "distriktssköterska"),),
    )


def sip(
    patient: PersonId | None = None,
    *,
    source_system: str = "lifecare",
    status: PlanStatus = PlanStatus.ACTIVE,
) -> Plan:
    return Plan(
        source_system=source_system,
        plan_id="SIP-77",
        version=2,
        kind=PlanKind.SIP,
        patient=patient or person("193106199817"),
        status=status,
        title="SIP efter utskrivning",
        created=date(2024, 10, 14),
        updated=date(2024, 10, 21),
        unit_hsa_id=UNIT,
        source=SRC,
        kva="AU125",
        what_matters="Att kunna bo kvar hemma",
        overall_responsibility=Huvudman.KOMMUN,
        goals=(
            PlanGoal("g1", "Klara förflyttning själv", ExpressedBy.PATIENT, date(2025, 1, 31)),
            PlanGoal("g2", "Inga fall", ExpressedBy.CARE),
        ),
        actions=(
            PlanAction("Hemtjänst morgon och kväll", Responsible.KOMMUN, "hemtjanst"),
            PlanAction("Rehabinsats i hemmet", Responsible.KOMMUN, "rehab", "g1"),
            PlanAction("Handla", Responsible.NARSTAENDE),
            PlanAction("Träna förflyttning", Responsible.PATIENT, goal="g1"),
            PlanAction("Samordna", Responsible.REGION),
        ),
        participants=(
            KARIN_EK,
            Participant("bistandshandlaggare", "Lena Berg", None, "Aneby kommun", Huvudman.KOMMUN),
            Participant("narstaende", "Anna Ekström (dotter)"),
            Participant("patient"),
            Participant("kurator", "Ola Ny"),  # a role the ConceptMap does not know
            # The kommun's SIP coordinator (not Inera's code 4), and an organisation nobody named.
            Participant("samordningsansvarig", "Petra Ahl", None, "Aneby kommun", Huvudman.KOMMUN),
            Participant("hemsjukvard", None, None, "Hemsjukvården Aneby", Huvudman.KOMMUN),
        ),
        next_follow_up=date(2025, 1, 20),
    )


def event(
    patient: PersonId | None = None,
    *,
    code: EventCode = EventCode.AW010,
    unit: str = UNIT,
    contact: str | None = "hembesök",
    plan_ref: str | None = "lifecare:SIP-77",
) -> Event:
    return Event(
        patient=patient or person("193106199817"),
        date=date(2024, 10, 21),
        code=code,
        unit_hsa_id=unit,
        source=SRC,
        contact_type=contact,
        plan_ref=plan_ref,
    )


def discharge(patient: PersonId | None = None, *, message_id: str = "LC-9001") -> DischargeNotice:
    return DischargeNotice(
        message_id=message_id,
        patient=patient or person("193601059813"),
        ready_at=datetime(2024, 12, 19, 14, 30, tzinfo=STOCKHOLM),
        hospital="Höglandssjukhuset",
        ward="Medicin 3",
        needs_kommun=True,
        needs_region=True,
        consent=Consent.JA,
        source=SRC,
    )


def sample_records(tag: str = "") -> list[Record]:
    """One of each kind and shape; `tag` makes every identifier unique (integration tests)."""
    unit = f"{UNIT}{tag}"
    system = f"lifecare{tag}"
    return [
        prea60_row(unit=unit),
        prea60_row(person("196703612384", IdKind.SAMORDNINGSNUMMER), unit=unit),
        replace(prea60_row(person("195011819801"), unit=unit), gp_hsa_id=None),
        patientkontrakt(source_system=f"cosmic{tag}"),
        sip(source_system=system),
        replace(sip(source_system=f"{system}b", status=PlanStatus.REVOKED), plan_id="SIP-78"),
        event(unit=unit, plan_ref=f"{system}:SIP-77"),
        event(code=EventCode.UPPF, unit=unit, contact="Besök", plan_ref=None),
        event(code=EventCode.SIPKALL, unit=unit, contact=None, plan_ref=None),
        event(code=EventCode.AU124, unit=unit, contact="brevduva", plan_ref=None),
        discharge(message_id=f"LC-9001{tag}"),
        replace(
            discharge(person("192902279807"), message_id=f"LC-9002{tag}"),
            needs_region=False,
            consent=Consent.OKANT,
            ward="",
        ),
    ]


def generated_records(count: int, tag: str = "") -> Iterator[Record]:
    """`count` patients, each with a Prea60 row, a plan, events and a discharge notice."""
    kinds = list(PlanStatus)
    for n in range(count):
        patient = person(f"19{30 + n % 60:02d}{1 + n % 12:02d}{1 + n % 28:02d}{n % 10000:04d}")
        yield replace(prea60_row(patient, unit=f"{UNIT}{tag}"), risk_percent=Decimal(n % 100))
        plan = sip(patient, source_system=f"gen{tag}", status=kinds[n % len(kinds)])
        if n % 2:
            plan = patientkontrakt(patient, source_system=f"gen{tag}", version=1 + n % 3)
        yield replace(plan, plan_id=f"P-{n}")
        yield event(patient, unit=f"{UNIT}{tag}", plan_ref=f"gen{tag}:P-{n}")
        yield event(patient, code=EventCode.UPPF, unit=f"{UNIT}{tag}", plan_ref=None)
        if n % 3 == 0:
            yield discharge(patient, message_id=f"gen{tag}-{n}")


def by_type(resources: list[MappedResource], resource_type: str) -> list[dict[str, Any]]:
    return [r.resource for r in resources if r.resource_type == resource_type]


def one(resources: list[MappedResource], resource_type: str) -> dict[str, Any]:
    (found,) = by_type(resources, resource_type)
    return found


def ext(element: dict[str, Any], url: str) -> dict[str, Any]:
    (found,) = [e for e in element.get("extension", []) if e["url"] == url]
    return found


def has_ext(element: dict[str, Any], url: str) -> bool:
    return any(e["url"] == url for e in element.get("extension", []))


def codes(concept: dict[str, Any]) -> set[tuple[str, str]]:
    return {(cd["system"], cd["code"]) for cd in concept.get("coding", [])}
