"""Rest-hook Subscriptions: the FHIR server tells the adapter when a record that can fulfil or
create a follow-up Task is written (by anyone, not only by the adapter), and the adapter
re-evaluates just that patient.

One Subscription per watched resource type, with a fixed id (`sip-fhir-followup-<type>`) and the
tag TAG_ADAPTER|followup-hook: registering again changes nothing unless the endpoint, the criteria
or the secret changed (no new versions). With `payload` application/fhir+json a server such as
HAPI delivers each change as `PUT <endpoint>/<Type>/<id>` with the resource as the body, and the
channel headers (HOOK_HEADER: the shared secret) on the request. The endpoint URL holds no
personal data: the patient is found from the resource.

The secret is stored in the Subscription on the FHIR server: anyone who may read Subscriptions
there can read it. Give the adapter a secret of its own (SIP_FHIR_HOOK_SECRET) and rotate it by
registering again. Where a server has subscriptions off, the scheduled scans still do the work,
only later (see adapter/scheduler.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from adapter.canonical import TAG_ADAPTER
from adapter.fhirclient import FhirClient
from adapter.mapping.fhir import Json, coding
from adapter.mapping.narrative import with_narrative

HOOK_PATH = "/fhir-hook"
HOOK_HEADER = "X-Sip-Fhir-Hook"
TAG_CODE = "followup-hook"
PAYLOAD = "application/fhir+json"

# What can fulfil or create a follow-up Task. Broad on purpose: a server matches simple criteria
# most reliably, and the loader ignores whatever is not a follow-up fact.
CRITERIA = {
    "Procedure": "Procedure?status=completed",  # AW010, UPPF, SIPKALL, AU124/AU125
    "CarePlan": "CarePlan?",  # a new plan or version, a plan ended or renewed
    "Encounter": "Encounter?",  # discharge notices (utskrivningsklar)
    "RiskAssessment": "RiskAssessment?",  # Prea60 runs: into or out of the risk group
}
_LIVE = frozenset({"requested", "active"})


def subscription_id(resource_type: str) -> str:
    return f"sip-fhir-followup-{resource_type.lower()}"


def hook_url(endpoint: str) -> str:
    """The channel endpoint: the adapter's base URL + HOOK_PATH."""
    base = endpoint.rstrip("/")
    return base if base.endswith(HOOK_PATH) else f"{base}{HOOK_PATH}"


def subscription(resource_type: str, endpoint: str, secret: str) -> Json:
    resource: Json = {
        "resourceType": "Subscription",
        "id": subscription_id(resource_type),
        "meta": {"tag": [coding(TAG_ADAPTER, TAG_CODE)]},
        "status": "requested",
        "reason": f"sip-fhir: ompröva uppföljningsuppgifterna när en {resource_type} skrivs",
        "criteria": CRITERIA[resource_type],
        "channel": {
            "type": "rest-hook",
            "endpoint": hook_url(endpoint),
            "payload": PAYLOAD,
            "header": [f"{HOOK_HEADER}: {secret}"],
        },
    }
    return with_narrative(resource)  # from the reason only: never the secret


class RegisterOutcome(StrEnum):
    CREATED = "skapad"
    UPDATED = "uppdaterad"
    UNCHANGED = "oförändrad"


@dataclass(frozen=True, slots=True)
class Registered:
    resource_type: str
    id: str
    outcome: RegisterOutcome
    status: str | None  # as the server holds it after registering


def _same(current: Json, wanted: Json) -> bool:
    channel, wanted_channel = current.get("channel") or {}, wanted["channel"]
    return (
        current.get("status") in _LIVE
        and current.get("criteria") == wanted["criteria"]
        and all(channel.get(k) == v for k, v in wanted_channel.items())
    )


def register(client: FhirClient, endpoint: str, secret: str) -> list[Registered]:
    """One Subscription per CRITERIA type pointing at `endpoint`; idempotent."""
    if not secret:
        raise ValueError("En delad hemlighet krävs (SIP_FHIR_HOOK_SECRET)")
    ids = ",".join(subscription_id(t) for t in CRITERIA)
    existing = {str(s["id"]): s for s in client.search("Subscription", {"_id": ids})}
    results = []
    for resource_type in CRITERIA:
        wanted = subscription(resource_type, endpoint, secret)
        current = existing.get(wanted["id"])
        if current is not None and _same(current, wanted):
            outcome, status = RegisterOutcome.UNCHANGED, current.get("status")
        else:
            written = client.update(wanted)
            outcome = RegisterOutcome.CREATED if current is None else RegisterOutcome.UPDATED
            status = (written.resource or {}).get("status")
        results.append(Registered(resource_type, wanted["id"], outcome, status))
    return results


def registered(client: FhirClient) -> list[Json]:
    """The adapter's follow-up Subscriptions on the server (by their tag)."""
    return list(client.search("Subscription", {"_tag": f"{TAG_ADAPTER}|{TAG_CODE}"}))


def remove(client: FhirClient) -> int:
    """Delete the adapter's follow-up Subscriptions; how many there were."""
    found = registered(client)
    for item in found:
        client.delete("Subscription", str(item["id"]))
    return len(found)
