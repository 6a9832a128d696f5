"""Small builders of FHIR R4 JSON data types, so the mappers read as element lists."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from adapter.canonical import HSA_ID
from adapter.domain import PersonId
from adapter.mapping.identifiers import match_url
from adapter.sources.values import STOCKHOLM  # the one Swedish time zone

Json = dict[str, Any]


def coding(system: str, code: str, display: str | None = None) -> Json:
    result: Json = {"system": system, "code": code}
    if display:
        result["display"] = display
    return result


def concept(*codings: Json, text: str | None = None) -> Json:
    result: Json = {}
    if codings:
        result["coding"] = list(codings)
    if text:
        result["text"] = text
    return result


def identifier(system: str, value: str) -> Json:
    return {"system": system, "value": value}


def meta(profile: str) -> Json:
    return {"profile": [profile]}


def conditional_reference(resource_type: str, system: str, value: str) -> Json:
    """A reference by match URL: the server (or the transaction) resolves it to the one match."""
    return {"reference": match_url(resource_type, system, value)}


def patient_reference(patient: PersonId) -> Json:
    return conditional_reference("Patient", patient.system, patient.digits)


def hsa_reference(resource_type: str, hsa_id: str, display: str | None = None) -> Json:
    """A logical reference by HSA-id: the unit or person need not exist on the server."""
    result: Json = {"type": resource_type, "identifier": identifier(HSA_ID, hsa_id)}
    if display:
        result["display"] = display
    return result


def display_reference(display: str) -> Json:
    return {"display": display}


def extension(url: str, value_type: str, value: Any) -> Json:
    """`{"url": url, "value<Type>": value}`; value_type as in FHIR (Coding, String, Date...)."""
    return {"url": url, f"value{value_type}": value}


def local_instant(day: date) -> str:
    """An R4 instant: midnight of `day` in Swedish time, with its offset (+01:00 or +02:00)."""
    return datetime(day.year, day.month, day.day, tzinfo=STOCKHOLM).isoformat()


def iso(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


def period(start: date | None, end: date | None) -> Json:
    result: Json = {}
    if start is not None:
        result["start"] = start.isoformat()
    if end is not None:
        result["end"] = end.isoformat()
    return result
