"""A short generated Swedish narrative (`text`) for every resource the adapter writes.

Pure and deterministic: the narrative is a function of the resource's own elements only (no
clock, no lookups), so the same resource always gets the same `text` and the content hashes that
let a re-import skip unchanged resources stay stable. Without `text` HAPI warns dom-6 on every
resource. The personnummer is never put in the narrative (it is in `identifier`, for machines).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from html import escape
from typing import Any

from adapter.canonical import EXT_PLAN_KIND
from adapter.canonical import EXT_READY_FOR_DISCHARGE as EXT_READY

Json = dict[str, Any]

_XHTML = "http://www.w3.org/1999/xhtml"
_GENDER = {"male": "man", "female": "kvinna", "other": "annat", "unknown": "okänt"}
_STATUS = {
    "draft": "utkast",
    "active": "aktiv",
    "completed": "avslutad",
    "revoked": "återkallad",
    "proposed": "föreslagen",
    "cancelled": "avbruten",
    "inactive": "inaktiv",
    "final": "slutlig",
    "amended": "ändrad",
    "finished": "avslutad",
    "planned": "planerad",
    "in-progress": "pågår",
    "requested": "begärd",
    "accepted": "accepterad",
    "on-hold": "pausad",
    "current": "aktuell",
    "entered-in-error": "felregistrerad",
    "unknown": "okänd",
}


def _status(value: Any) -> str:
    return _STATUS.get(str(value), str(value))


def _concept_text(concept: Any) -> str | None:
    """The text of a CodeableConcept, else the display or code of its first coding."""
    if not isinstance(concept, dict):
        return None
    if concept.get("text"):
        return str(concept["text"])
    for coding in concept.get("coding", ()):
        label = coding.get("display") or coding.get("code")
        if label:
            return str(label)
    return None


def _period(value: Any) -> str | None:
    if not isinstance(value, dict) or not (value.get("start") or value.get("end")):
        return None
    return f"{value.get('start', '')}–{value.get('end', '')}"


def _hsa(reference: Any) -> str | None:
    if not isinstance(reference, dict):
        return None
    if reference.get("display"):
        return str(reference["display"])
    ident = reference.get("identifier")
    return f"HSA-id {ident['value']}" if isinstance(ident, dict) and ident.get("value") else None


def _count(resource: Json, element: str, noun: str) -> str | None:
    items = resource.get(element) or ()
    return f"{len(items)} {noun}" if items else None


def _patient(r: Json) -> list[str | None]:
    names = r.get("name") or [{}]
    name = (
        names[0].get("text")
        or " ".join([*names[0].get("given", ()), names[0].get("family", "")]).strip()
    )
    gender = _GENDER.get(str(r.get("gender")))
    born = r.get("birthDate")
    return [
        f"Patient: {name or 'namn okänt'}",
        f"född {born}" if born else None,
        f"kön {gender}" if gender else None,
    ]


def _care_plan(r: Json) -> list[str | None]:
    kinds = [e["valueCoding"] for e in r.get("extension", ()) if e.get("url") == EXT_PLAN_KIND]
    kind = _concept_text({"coding": kinds}) or _concept_text((r.get("category") or [None])[0])
    return [
        f"{kind or 'Plan'}: {r.get('title', '')}",
        f"status {_status(r.get('status'))}",
        f"giltig {p}" if (p := _period(r.get("period"))) else None,
        _count(r, "goal", "mål"),
        _count(r, "activity", "aktiviteter"),
        f"ansvarig enhet {a}" if (a := _hsa(r.get("author"))) else None,
    ]


def _goal(r: Json) -> list[str | None]:
    due = next((t.get("dueDate") for t in r.get("target", ()) if t.get("dueDate")), None)
    return [
        f"Mål: {_concept_text(r.get('description')) or ''}",
        f"status {_status(r.get('lifecycleStatus'))}",
        f"senast {due}" if due else None,
    ]


def _care_team(r: Json) -> list[str | None]:
    return [
        f"Vårdteam: {r.get('name', '')}",
        f"status {_status(r.get('status'))}",
        _count(r, "participant", "deltagare"),
    ]


def _risk_assessment(r: Json) -> list[str | None]:
    predictions = r.get("prediction") or [{}]
    risk = predictions[0].get("probabilityDecimal")
    return [
        f"Riskbedömning ({_concept_text(r.get('method')) or 'okänd metod'})",
        f"risk {str(risk).replace('.', ',')} %" if risk is not None else None,  # Swedish comma
        f"bedömd {r['occurrenceDateTime']}" if r.get("occurrenceDateTime") else None,
    ]


def _procedure(r: Json) -> list[str | None]:
    return [
        f"Åtgärd: {_concept_text(r.get('code')) or ''}",
        f"utförd {r['performedDateTime']}" if r.get("performedDateTime") else None,
        f"enhet {h}" if (h := _hsa((r.get("performer") or [{}])[0].get("actor"))) else None,
    ]


def _encounter(r: Json) -> list[str | None]:
    ready = next(
        (e["valueDateTime"] for e in r.get("extension", ()) if e.get("url") == EXT_READY),
        None,
    )
    return [
        f"Vårdtillfälle på {_hsa(r.get('serviceProvider')) or 'sjukhus'}",
        f"status {_status(r.get('status'))}",
        f"utskrivningsklar {ready}" if ready else None,
    ]


def _task(r: Json) -> list[str | None]:
    restriction = r.get("restriction") or {}
    due = (restriction.get("period") or {}).get("end")
    return [
        f"Uppgift: {r.get('description') or _concept_text(r.get('code')) or ''}",
        f"status {_status(r.get('status'))}",
        f"senast {due}" if due else None,
        f"orsak: {t}" if (t := _concept_text(r.get("statusReason"))) else None,
    ]


def _measure_report(r: Json) -> list[str | None]:
    measure = str(r.get("measure", "")).rsplit("/", 1)[-1]
    return [
        f"Indikatorrapport: {measure}",
        f"period {p}" if (p := _period(r.get("period"))) else None,
        f"enhet {h}" if (h := _hsa(r.get("reporter"))) else None,
    ]


def _list(r: Json) -> list[str | None]:
    return [f"Lista: {r.get('title', '')}", f"{len(r.get('entry') or ())} patienter"]


def _provenance(r: Json) -> list[str | None]:
    agents = {
        coding.get("code"): _hsa(agent.get("who"))
        for agent in r.get("agent", ())
        for coding in (agent.get("type") or {}).get("coding", ())
    }
    return [
        "Ursprung för vårdplanen",
        f"registrerad {r['recorded']}" if r.get("recorded") else None,
        f"vårdenhet {agents['author']}" if agents.get("author") else None,
        f"vårdgivare {agents['custodian']}" if agents.get("custodian") else None,
    ]


def _subscription(r: Json) -> list[str | None]:
    return [f"Prenumeration: {r.get('reason', '')}", f"status {_status(r.get('status'))}"]


def _named(r: Json) -> list[str | None]:
    """Any other resource (the conformance resources of profiles/): its type and title."""
    label = r.get("title") or r.get("name")
    return [f"{r.get('resourceType')}: {label}" if label else str(r.get("resourceType"))]


_PARTS: dict[str, Callable[[Json], list[str | None]]] = {
    "Subscription": _subscription,
    "Patient": _patient,
    "CarePlan": _care_plan,
    "Goal": _goal,
    "CareTeam": _care_team,
    "RiskAssessment": _risk_assessment,
    "Procedure": _procedure,
    "Encounter": _encounter,
    "Task": _task,
    "MeasureReport": _measure_report,
    "List": _list,
    "Provenance": _provenance,
}


def _div(parts: Iterable[str | None]) -> str:
    sentence = ", ".join(part.rstrip(". ") for part in parts if part)
    return f'<div xmlns="{_XHTML}"><p>{escape(sentence, quote=False)}</p></div>'


def narrative(resource: Json) -> Json:
    """`text` for the resource: status generated, one Swedish sentence, HTML-escaped."""
    parts = _PARTS.get(str(resource.get("resourceType")))
    sentence = parts(resource) if parts else _named(resource)
    return {"status": "generated", "div": _div(sentence)}


def with_narrative(resource: Json) -> Json:
    """The resource (the same dict) with its `text` (re)generated, placed after `meta`."""
    resource.pop("text", None)
    text = narrative(resource)
    ordered: Json = {}
    for key, value in resource.items():
        ordered[key] = value
        if key == "meta":
            ordered["text"] = text
    if "text" not in ordered:
        ordered = {"resourceType": resource["resourceType"], "text": text, **resource}
    resource.clear()
    resource.update(ordered)
    return resource
