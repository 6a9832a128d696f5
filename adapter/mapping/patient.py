"""Patient: the full resource from a Prea60 row, a create-only stub from every other source."""

from __future__ import annotations

from adapter.canonical import PROFILE_PATIENT
from adapter.domain import PersonId, Prea60Row
from adapter.mapping.fhir import Json, hsa_reference, identifier, meta
from adapter.mapping.resource import MappedResource


def _patient(person: PersonId, resource: Json, create_only: bool) -> MappedResource:
    return MappedResource(
        resource_type="Patient",
        identifier_system=person.system,
        identifier_value=person.digits,
        resource=resource,
        create_only=create_only,
    )


def _base(person: PersonId) -> Json:
    return {
        "resourceType": "Patient",
        "meta": meta(PROFILE_PATIENT),
        "identifier": [identifier(person.system, person.digits)],
    }


def patient_stub(person: PersonId) -> MappedResource:
    """Identifier only, written If-None-Exist: never erases what a Prea60 import wrote."""
    return _patient(person, _base(person), create_only=True)


def patient_from_prea60(row: Prea60Row) -> MappedResource:
    """Name, and the listing (unit + fast läkarkontakt) as generalPractitioner, by HSA-id."""
    resource = _base(row.patient)
    name: Json = {"use": "official", "family": row.family_name}
    given = row.given_name.split()
    if given:
        name["given"] = given
    name["text"] = " ".join([*given, row.family_name])
    resource["name"] = [name]
    listing = [hsa_reference("Organization", row.unit_hsa_id, row.unit_name or None)]
    if row.gp_hsa_id:
        listing.append(hsa_reference("Practitioner", row.gp_hsa_id))
    resource["generalPractitioner"] = listing
    return _patient(row.patient, resource, create_only=False)
