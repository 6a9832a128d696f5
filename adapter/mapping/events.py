"""Registered action (KVÅ or local code) → Procedure (and a Patient stub)."""

from __future__ import annotations

from adapter.canonical import EXT_CONTACT_TYPE, ID_PLAN, ID_PROCEDURE, PROFILE_PROCEDURE
from adapter.domain import Event
from adapter.mapping.codes import Mappings
from adapter.mapping.errors import MappingError
from adapter.mapping.fhir import (
    Json,
    concept,
    extension,
    hsa_reference,
    identifier,
    meta,
    patient_reference,
)
from adapter.mapping.identifiers import stable_digest
from adapter.mapping.patient import patient_stub
from adapter.mapping.resource import MappedResource


def procedure_key(event: Event) -> str:
    """Not the contact type: correcting it updates the Procedure instead of adding one."""
    return stable_digest(
        "event", event.patient, event.date, event.code, event.unit_hsa_id, event.plan_ref
    )


def _contact_type(raw: str, mappings: Mappings) -> Json:
    source = raw.strip().lower()
    codings = mappings.contact_type.codings(source)
    return concept(*codings, text=None if codings else raw.strip())


def map_event(event: Event, mappings: Mappings) -> list[MappedResource]:
    codings = mappings.event_code.codings(event.code)
    if not codings:
        raise MappingError(f"åtgärdskoden '{event.code}' saknas i mappings", field="Åtgärdskod")
    key = procedure_key(event)
    resource: Json = {"resourceType": "Procedure", "meta": meta(PROFILE_PROCEDURE)}
    if event.contact_type and event.contact_type.strip():
        resource["extension"] = [
            extension(
                EXT_CONTACT_TYPE, "CodeableConcept", _contact_type(event.contact_type, mappings)
            )
        ]
    resource["identifier"] = [identifier(ID_PROCEDURE, key)]
    if event.plan_ref:
        # Logical (by identifier): an event may arrive before, or without, the plan it names.
        resource["basedOn"] = [
            {"type": "CarePlan", "identifier": identifier(ID_PLAN, event.plan_ref)}
        ]
    resource |= {
        "status": "completed",
        "code": concept(*codings),
        "subject": patient_reference(event.patient),
        "performedDateTime": event.date.isoformat(),
        "performer": [{"actor": hsa_reference("Organization", event.unit_hsa_id)}],
    }
    return [patient_stub(event.patient), MappedResource("Procedure", ID_PROCEDURE, key, resource)]
