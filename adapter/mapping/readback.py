"""Reading back what the mapping wrote: for the follow-up rules and indicators.

The mapping decides where each fact sits in FHIR (extensions of our profiles, coded roles), so the
way back lives beside it. All functions take resources as JSON dicts (as a FhirClient returns them)
and never raise on a missing fact: they return None.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from adapter.canonical import (
    CS_PLAN_QUALITY_CRITERION,
    CS_SIP_CONSENT,
    EXT_DISCHARGE_SUPPORT,
    EXT_LISTING_UNIT,
    EXT_PLAN_QUALITY,
    EXT_PLAN_UPDATED,
    EXT_PLAN_VERSION,
    EXT_READY_FOR_DISCHARGE,
    EXT_SIP_CONSENT,
    HSA_ID,
    ID_DISCHARGE,
    ID_PLAN,
    INERA_FAST_KONTAKT,
    canonical_system,
)
from adapter.domain import Consent
from adapter.quality import PlanQuality, UnmetCriterion

Json = dict[str, Any]

# Inera kv_typ_av_fast_kontakt code of the fast vårdkontakt. Not code 4 as a fallback: the
# adapter's data written before used 4 for the SIP's samordningsansvarig (often the kommun's),
# which is not a fast vårdkontakt; Task.owner falls back to the unit instead.
FAST_VARDKONTAKT = "1"


def extension_value(element: Json, url: str, value_type: str) -> Any:
    """`value<Type>` of the first extension with `url` on `element`, or None."""
    for ext in element.get("extension", ()):
        if ext.get("url") == url:
            return ext.get(f"value{value_type}")
    return None


def business_identifier(resource: Json, system: str) -> str | None:
    return next(
        (i.get("value") for i in resource.get("identifier", ()) if i.get("system") == system),
        None,
    )


@dataclass(frozen=True, slots=True)
class PlanRevision:
    key: str  # "source_system:plan_id"
    version: int
    updated: date


def plan_revision(care_plan: Json) -> PlanRevision | None:
    """Which version of which plan a CarePlan holds, and when the source last changed it."""
    key = business_identifier(care_plan, ID_PLAN)
    version = extension_value(care_plan, EXT_PLAN_VERSION, "Integer")
    updated = extension_value(care_plan, EXT_PLAN_UPDATED, "Date")
    if key is None or version is None or updated is None:
        return None
    return PlanRevision(key, int(version), date.fromisoformat(updated))


def plan_quality(care_plan: Json) -> PlanQuality | None:
    """The quality score the mapping stored on a CarePlan (ext-plan-quality), or None."""
    quality = next(
        (e for e in care_plan.get("extension", ()) if e.get("url") == EXT_PLAN_QUALITY), None
    )
    if quality is None:
        return None
    score = extension_value(quality, "score", "Decimal")
    if isinstance(score, bool) or not isinstance(score, int | float | str):
        return None
    try:
        value = Decimal(str(score))
    except InvalidOperation:
        return None
    unmet = tuple(
        UnmetCriterion(str(c.get("code")), str(c.get("display") or c.get("code")))
        for part in quality.get("extension", ())
        if part.get("url") == "unmet"
        and isinstance(c := part.get("valueCoding"), dict)
        and c.get("system") == CS_PLAN_QUALITY_CRITERION
    )
    version = extension_value(quality, "version", "String")
    return PlanQuality(value, unmet, str(version or ""))


def event_plan_key(procedure: Json) -> str | None:
    """The plan an event concerns (Procedure.basedOn is a logical reference by ID_PLAN)."""
    for ref in procedure.get("basedOn", ()):
        ident = ref.get("identifier") or {}
        if ident.get("system") == ID_PLAN:
            return ident.get("value")
    return None


def listing_unit(risk_assessment: Json) -> str | None:
    """HSA-id of the unit whose Prea60 list a RiskAssessment belongs to."""
    ref = extension_value(risk_assessment, EXT_LISTING_UNIT, "Reference") or {}
    ident = ref.get("identifier") or {}
    return ident.get("value") if ident.get("system") == HSA_ID else None


def fast_vardkontakt(care_team: Json) -> Json | None:
    """The member Reference of the fast vårdkontakt (Inera code 1), or None.

    The role's system may be the canonical URL or, in data written before, the code system's OID.

    Usable as Task.owner as it is: a logical Practitioner reference by HSA-id with the name, or
    a display-only reference when the source gave no HSA-id.
    """
    for participant in care_team.get("participant", ()):
        for role in participant.get("role", ()):
            for coding in role.get("coding", ()):
                system = canonical_system(str(coding.get("system")))
                if (system, str(coding.get("code"))) == (INERA_FAST_KONTAKT, FAST_VARDKONTAKT):
                    member = participant.get("member")
                    if member is not None:
                        return dict(member)
    return None


@dataclass(frozen=True, slots=True)
class DischargeFacts:
    message_id: str
    ready_at: datetime
    needs_kommun: bool
    needs_region: bool
    consent: Consent

    @property
    def needs_sip(self) -> bool:
        return self.needs_kommun and self.needs_region


def discharge_facts(encounter: Json) -> DischargeFacts | None:
    """What a discharge-notice Encounter says; None unless every part is there."""
    message_id = business_identifier(encounter, ID_DISCHARGE)
    ready = extension_value(encounter, EXT_READY_FOR_DISCHARGE, "DateTime")
    consent = extension_value(encounter, EXT_SIP_CONSENT, "Coding") or {}
    support: Json = next(
        (e for e in encounter.get("extension", ()) if e.get("url") == EXT_DISCHARGE_SUPPORT), {}
    )
    kommun = extension_value(support, "kommun", "Boolean")
    region = extension_value(support, "region", "Boolean")
    if message_id is None or ready is None or kommun is None or region is None:
        return None
    if consent.get("system") != CS_SIP_CONSENT or consent.get("code") not in set(Consent):
        return None
    return DischargeFacts(
        message_id=message_id,
        ready_at=datetime.fromisoformat(ready),
        needs_kommun=bool(kommun),
        needs_region=bool(region),
        consent=Consent(consent["code"]),
    )
