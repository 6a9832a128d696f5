"""Patient: the full resource from a Prea60 row, a create-only stub from every other source.

Every Patient carries what Inera's IPS-based IneraEHDSPatient requires: `birthDate` and the legal
`gender`, both read from the personnummer or samordningsnummer (`adapter.personnummer`), and a
`name`. The name comes from the sources that carry one (Prea60 `Namn`, a plan's participant with
role patient); without one the name says so: `text` (IPS ips-pat-1 needs family, given or text)
plus the data-absent-reason extension, so no program takes it for a real name.
"""

from __future__ import annotations

from adapter import personnummer
from adapter.canonical import EXT_DATA_ABSENT_REASON, PROFILE_PATIENT
from adapter.domain import PersonId, Prea60Row
from adapter.mapping.fhir import Json, extension, hsa_reference, identifier, meta
from adapter.mapping.resource import MappedResource

UNKNOWN_NAME = "Namn okänt"


def _patient(person: PersonId, resource: Json, create_only: bool) -> MappedResource:
    return MappedResource(
        resource_type="Patient",
        identifier_system=person.system,
        identifier_value=person.digits,
        resource=resource,
        create_only=create_only,
    )


def unknown_name() -> Json:
    return {
        "extension": [extension(EXT_DATA_ABSENT_REASON, "Code", "unknown")],
        "text": UNKNOWN_NAME,
    }


def _base(person: PersonId, name: Json) -> Json:
    return {
        "resourceType": "Patient",
        "meta": meta(PROFILE_PATIENT),
        "identifier": [identifier(person.system, person.digits)],
        "name": [name],
        "gender": personnummer.legal_gender(person),
        "birthDate": personnummer.birth_date(person).isoformat(),
    }


def patient_stub(person: PersonId, name_text: str | None = None) -> MappedResource:
    """Written If-None-Exist: never erases what a Prea60 import wrote. `name_text`: the name
    as the source wrote it (free text), when it has one."""
    name = {"text": name_text} if name_text else unknown_name()
    return _patient(person, _base(person, name), create_only=True)


def patient_from_prea60(row: Prea60Row) -> MappedResource:
    """Name, and the listing (unit + fast läkarkontakt) as generalPractitioner, by HSA-id."""
    name: Json = {"use": "official", "family": row.family_name}
    given = row.given_name.split()
    if given:
        name["given"] = given
    name["text"] = " ".join([*given, row.family_name])
    resource = _base(row.patient, name)
    listing = [hsa_reference("Organization", row.unit_hsa_id, row.unit_name or None)]
    if row.gp_hsa_id:
        listing.append(hsa_reference("Practitioner", row.gp_hsa_id))
    resource["generalPractitioner"] = listing
    return _patient(row.patient, resource, create_only=False)
