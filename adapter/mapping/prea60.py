"""Prea60 row → RiskAssessment (and the full Patient)."""

from __future__ import annotations

from datetime import timedelta

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
        "status": "final",
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
