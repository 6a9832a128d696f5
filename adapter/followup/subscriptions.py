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

A server that does not deliver rest-hooks still stores the Subscriptions, as `requested`, and
says nothing (HAPI JPA starter: `hapi.fhir.subscription.resthook_enabled` is off by default, and
the CapabilityStatement does not tell). So `wait_for_active` watches them become `active`, and
`probe_rest_hook` asks the server with a throwaway Subscription that matches nothing.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
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
ACTIVE = "active"
# HAPI activates a new Subscription within seconds, or else at its next full sync of
# Subscriptions (every 60 s; seen when its subscription channels were busy): wait past one sync, so
# a slow server is not reported as one that does not deliver. It returns as soon as they are active.
WAIT_SECONDS = 65.0
_POLL_SECONDS = 0.5
PROBE_TAG = "server-check"
# Never called: the probe's criteria match nothing, and .invalid is a reserved domain.
PROBE_ENDPOINT = "https://sip-fhir-probe.invalid/fhir-hook"
PROBE_SYSTEM = "urn:sip-fhir:server-check"
RESTHOOK_SETTING = "hapi.fhir.subscription.resthook_enabled"
INACTIVE_HINT = (
    "Servern levererar troligen inte rest-hook-notifieringar. I HAPI FHIR JPA-servern (t.ex. den "
    f"officiella hapi-fhir-jpaserver-starter) är de avstängda som standard: sätt {RESTHOOK_SETTING}"
    "=true. Till dess gör de schemalagda genomgångarna jobbet, bara senare (förfallokontrollen "
    "varje morgon, den fulla genomgången på måndagar)."
)


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


def statuses(client: FhirClient, ids: Sequence[str]) -> dict[str, Json]:
    """The Subscriptions `ids` as the server holds them now (missing ones left out)."""
    return {str(s["id"]): s for s in client.search("Subscription", {"_id": ",".join(ids)})}


def wait_for_active(
    client: FhirClient,
    ids: Sequence[str],
    wait: float,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Json]:
    """Poll until every Subscription in `ids` is active, one is in error, or `wait` seconds pass;
    their last state (a server activates them asynchronously, or, without rest-hook, never)."""
    deadline = clock() + wait
    while True:
        current = statuses(client, ids)
        states = [(current.get(i) or {}).get("status") for i in ids]
        if all(s == ACTIVE for s in states) or "error" in states or clock() >= deadline:
            return current
        sleep(min(_POLL_SECONDS, max(0.0, deadline - clock())))


@dataclass(frozen=True, slots=True)
class HookProbe:
    """Whether the server activated a rest-hook Subscription within the wait."""

    active: bool
    status: str | None
    seconds: float
    error: str | None  # the server's Subscription.error, if it gave one


def probe_rest_hook(
    client: FhirClient,
    wait: float = WAIT_SECONDS,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> HookProbe:
    """Create a rest-hook Subscription that matches nothing, see if it becomes active, delete it."""
    probe = {
        "resourceType": "Subscription",
        "meta": {"tag": [coding(TAG_ADAPTER, PROBE_TAG)]},
        "status": "requested",
        "reason": "sip-fhir server check: kan servern leverera rest-hook? (tas bort direkt)",
        "criteria": f"Basic?identifier={PROBE_SYSTEM}|{uuid.uuid4().hex}",
        "channel": {"type": "rest-hook", "endpoint": PROBE_ENDPOINT, "payload": PAYLOAD},
    }
    written = client.create(probe)
    probe_id = str(written.id)
    started = clock()
    try:
        found = wait_for_active(client, [probe_id], wait, sleep=sleep, clock=clock).get(probe_id)
    finally:
        client.delete("Subscription", probe_id)
    status = (found or {}).get("status")
    error = (found or {}).get("error")
    return HookProbe(status == ACTIVE, status, clock() - started, str(error) if error else None)
