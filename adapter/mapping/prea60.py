"""Prea60 row → RiskAssessment (and the full Patient).

A run's RiskAssessments carry its confirmation in `status` (R4 ObservationStatus): `final` a
confirmed run, `preliminary` a run the import did not trust (adapter/prea60/guard.py), not used
until a person confirms it, `entered-in-error` a rejected run. The rules read only runs without
an unconfirmed status; the server is searched for them with `CONFIRMED_RUN`
(profiles/SearchParameter-riskassessment-status.json).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from enum import StrEnum

from adapter.canonical import (
    CODE_PREA60,
    CS_RISK_MODEL,
    EXT_LISTING_UNIT,
    ID_RISK_ASSESSMENT,
    PROFILE_RISK_ASSESSMENT,
    SNOMED,
    SNOMED_HOSPITAL_ADMISSION,
)
from adapter.domain import Prea60Row
from adapter.mapping.fhir import (
    coding,
    concept,
    extension,
    hsa_reference,
    identifier,
    meta,
    patient_reference,
    period,
)
from adapter.mapping.identifiers import stable_digest
from adapter.mapping.patient import patient_from_prea60
from adapter.mapping.resource import MappedResource

PREDICTION_DAYS = 60
STATUS_PARAM = "status"  # profiles/SearchParameter-riskassessment-status.json


class RunStatus(StrEnum):
    """RiskAssessment.status of a Prea60 run's rows."""

    CONFIRMED = "final"
    UNCONFIRMED = "preliminary"
    REJECTED = "entered-in-error"


# `status:not` for every ObservationStatus no used run has: rows written before the search
# parameter existed have no index entry and still match, so older data needs no $reindex.
CONFIRMED_RUN: tuple[tuple[str, str], ...] = tuple(
    (f"{STATUS_PARAM}:not", status)
    for status in ("registered", "preliminary", "cancelled", "entered-in-error", "unknown")
)
PREA60_DISPLAY = "Prea60 – risk för inskrivning i slutenvård inom 60 dagar"


def risk_assessment_key(row: Prea60Row) -> str:
    """One assessment per unit, run date and patient: a re-read of the same run updates it."""
    return stable_digest("prea60", row.unit_hsa_id, row.run_date, row.patient)


def map_prea60(row: Prea60Row) -> list[MappedResource]:
    key = risk_assessment_key(row)
    resource = {
        "resourceType": "RiskAssessment",
        "meta": meta(PROFILE_RISK_ASSESSMENT),
        "extension": [
            extension(
                EXT_LISTING_UNIT,
                "Reference",
                hsa_reference("Organization", row.unit_hsa_id, row.unit_name or None),
            )
        ],
        "identifier": [identifier(ID_RISK_ASSESSMENT, key)],
        "status": RunStatus.CONFIRMED.value,
        "method": concept(coding(CS_RISK_MODEL, CODE_PREA60, PREA60_DISPLAY)),
        "subject": patient_reference(row.patient),
        "occurrenceDateTime": row.run_date.isoformat(),
        "prediction": [
            {
                "outcome": concept(coding(SNOMED, SNOMED_HOSPITAL_ADMISSION, "Hospital admission")),
                # R4: a decimal 0..100 is a percentage (ras-2); JSON has no Decimal type.
                "probabilityDecimal": float(row.risk_percent),
                "whenPeriod": period(row.run_date, row.run_date + timedelta(days=PREDICTION_DAYS)),
            }
        ],
    }
    return [
        patient_from_prea60(row),
        MappedResource("RiskAssessment", ID_RISK_ASSESSMENT, key, resource),
    ]


def as_unconfirmed(resources: list[MappedResource]) -> list[MappedResource]:
    """The resources of a row of an unconfirmed run: its RiskAssessment `preliminary`."""
    return [
        replace(r, resource={**r.resource, "status": RunStatus.UNCONFIRMED.value})
        if r.resource_type == "RiskAssessment"
        else r
        for r in resources
    ]
