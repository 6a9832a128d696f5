"""Two units sharing a patient, and every route of the app with its parameters filled in
(PDL inner confidentiality)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from fastapi import FastAPI

from adapter.domain import (
    EventCode,
    ExpressedBy,
    Participant,
    PersonId,
    Plan,
    PlanAction,
    PlanGoal,
    Record,
    Responsible,
)
from adapter.followup.facts import Translations
from adapter.followup.load import LoadedPatient
from adapter.personnummer import luhn_digit
from adapter.worklist import PatientView, patient_view
from tests.support.records import event, patientkontrakt, sip
from tests.support.worklist import AS_OF, MAPPINGS, RULES, listed, with_ids

OWN = "SE2321000057-E00000000777"  # the vårdsamordnare's unit


OTHER = "SE2321000057-E00000000888"  # the unit whose plan must not leak


SECRET = "HEMLIGT888"  # in every content field of the other unit's plan


def fictional_person(born: str, serial: str) -> PersonId:
    """A personnummer that belongs to no one: födelsenummer 980–999, correct check digit."""
    nine = born[2:] + serial
    return PersonId(f"{born}{serial}{luhn_digit(nine)}")


SHARED = fictional_person("19400512", "982")


def secret_sip(patient: PersonId) -> Plan:
    """The other unit's SIP, followed up there last: the follow-up Task is the other unit's."""
    return replace(
        sip(patient),
        plan_id=f"SIP-{SECRET}",
        version=1,
        unit_hsa_id=OTHER,
        created=date(2024, 8, 1),
        updated=date(2024, 8, 1),
        title=f"SIP {SECRET} titel",
        what_matters=f"{SECRET} det som är viktigt",
        goals=(PlanGoal("g1", f"{SECRET} mål", ExpressedBy.PATIENT),),
        actions=(PlanAction(f"{SECRET} insats", Responsible.KOMMUN, "hemtjanst", "g1"),),
        participants=(Participant("bistandshandlaggare", f"{SECRET} deltagare"),),
    )


def records() -> list[Record]:
    own_plan = replace(patientkontrakt(SHARED), unit_hsa_id=OWN)
    secret = secret_sip(SHARED)
    return [
        replace(listed(SHARED, "25.0"), unit_hsa_id=OWN),
        own_plan,
        secret,
        replace(
            event(SHARED, code=EventCode.UPPF, unit=OWN, plan_ref=own_plan.key),
            date=date(2024, 9, 5),
        ),
        replace(event(SHARED, unit=OTHER, plan_ref=secret.key), date=date(2024, 9, 10)),
    ]


def full_view(patient: LoadedPatient) -> PatientView:
    resources = with_ids([r for r in records() if isinstance(r, Plan)])
    translations = Translations.from_mappings(MAPPINGS)
    return patient_view(patient, resources, AS_OF, RULES, translations, name="Delad Patient")


def every_route(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path template) of every route and page of the app, however it was included."""
    found: dict[tuple[str, str], None] = {}
    for route in app.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        for entry in contexts() if contexts else [route]:
            for method in sorted(set(getattr(entry, "methods", None) or ()) - {"HEAD"}):
                found[(method, str(entry.path))] = None
    return list(found)


def filled(path: str, values: dict[str, list[str]]) -> list[str]:
    """The path with each parameter filled in every way given; a parameter no one gave values
    for fails the test, so a new route is never left out."""
    paths = [path]
    for name, options in values.items():
        paths = [p.replace(f"{{{name}}}", v) for p in paths for v in options]
    unknown = [p for p in paths if "{" in p]
    assert not unknown, f"a new path parameter: give it values in the test ({unknown[0]})"
    return paths


def body(method: str, path: str, csrf: str) -> dict[str, object]:
    """A page's form (with the session's token) or an empty JSON body."""
    if method != "POST":
        return {}
    if path.startswith("/ui/"):
        return {"data": {"csrf": csrf, "back": "/ui/patients/1"}}
    return {"json": {}}
