"""Discharge notice (utskrivningsklar) → Encounter (and a Patient stub).

The notice is about an inpatient stay, so it becomes that stay's Encounter (class IMP), identified
by the notice's Meddelande-id; what the notice adds (ready-for-discharge time, support needed from
kommun/region, consent to SIP) has no R4 element and rides in extensions of the profile.
"""

from __future__ import annotations

from adapter.canonical import (
    CS_SIP_CONSENT,
    EXT_DISCHARGE_SUPPORT,
    EXT_READY_FOR_DISCHARGE,
    EXT_SIP_CONSENT,
    ID_DISCHARGE,
    PROFILE_DISCHARGE,
    V3_ACT_CODE,
)
from adapter.domain import Consent, DischargeNotice
from adapter.mapping.fhir import (
    Json,
    coding,
    display_reference,
    extension,
    identifier,
    meta,
    patient_reference,
)
from adapter.mapping.patient import patient_stub
from adapter.mapping.resource import MappedResource

CONSENT_DISPLAY = {Consent.JA: "Ja", Consent.NEJ: "Nej", Consent.OKANT: "Okänt"}


def _consent(consent: Consent) -> Json:
    return coding(CS_SIP_CONSENT, consent.value, CONSENT_DISPLAY[consent])


def _support(notice: DischargeNotice) -> Json:
    return {
        "url": EXT_DISCHARGE_SUPPORT,
        "extension": [
            extension("kommun", "Boolean", notice.needs_kommun),
            extension("region", "Boolean", notice.needs_region),
        ],
    }


def map_discharge(notice: DischargeNotice) -> list[MappedResource]:
    resource: Json = {
        "resourceType": "Encounter",
        "meta": meta(PROFILE_DISCHARGE),
        "extension": [
            extension(EXT_READY_FOR_DISCHARGE, "DateTime", notice.ready_at.isoformat()),
            _support(notice),
            extension(EXT_SIP_CONSENT, "Coding", _consent(notice.consent)),
        ],
        "identifier": [identifier(ID_DISCHARGE, notice.message_id)],
        # The stay was going on when the notice was sent; no later message tells its end.
        "status": "in-progress",
        "class": coding(V3_ACT_CODE, "IMP", "inpatient encounter"),
        "subject": patient_reference(notice.patient),
        "serviceProvider": display_reference(notice.hospital),
    }
    if notice.ward:
        resource["location"] = [
            {"location": display_reference(f"{notice.ward}, {notice.hospital}")}
        ]
    return [
        patient_stub(notice.patient),
        MappedResource("Encounter", ID_DISCHARGE, notice.message_id, resource),
    ]
