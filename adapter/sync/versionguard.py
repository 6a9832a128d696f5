"""The server-side plan-version guard: an older plan version never overwrites a newer one on the
server, whichever installation (outbox) wrote the newer one.

The local outbox only knows the versions it has seen itself. So before a transaction that holds
a versioned CarePlan, the engine reads the CarePlans the server holds for those business
identifiers (one search) and decides per source record:
- the server holds a newer source version: the whole record (Patient stub, Goals, CareTeam,
  CarePlan, Provenance) is left out and settled as skipped; nothing of the older version lands;
- otherwise the CarePlan is written as `PUT CarePlan/<id>` with `If-Match: W/"<versionId>"` of what
  was read, so the transaction fails with 409 (all or nothing, the Goals included) if another
  installation wrote the plan in between; the engine then reads again and decides again.
  (HAPI ignores `ifMatch` on a conditional `PUT CarePlan?identifier=…`, hence the id.)
A plan the server does not hold yet is written with the usual conditional PUT: two installations
creating the same new plan at the same moment collide in HAPI's conditional-create check (409),
and the one that retries then sees the other's version. Left open: a first write of a plan whose
read found nothing while another installation's create committed in the few milliseconds before
this write (the conditional PUT then updates it unconditionally).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from adapter.canonical import EXT_PLAN_VERSION
from adapter.fhirclient import FhirClient
from adapter.mapping.fhir import Json
from adapter.sync.outbox import OutboxEntry, Writable

VersionOf = Callable[[Writable], int | None]


@dataclass(frozen=True, slots=True)
class ServerPlan:
    """What the server holds for one CarePlan business identifier."""

    id: str
    version_id: str
    plan_version: int | None


@dataclass(frozen=True, slots=True)
class OlderPlan:
    """A source record left out: its plan version is older than the server's."""

    group: Sequence[OutboxEntry]
    plan: OutboxEntry
    ours: int
    theirs: int

    @property
    def message(self) -> str:
        return (
            f"Planen {self.plan.identifier_value} version {self.ours} skrevs inte: servern har "
            f"redan version {self.theirs} (från en annan installation); planens mål och vårdteam "
            "lämnades orörda"
        )


@dataclass(slots=True)
class Decision:
    send: list[Sequence[OutboxEntry]]
    older: list[OlderPlan]
    held: dict[str, ServerPlan]  # match URL → the server's CarePlan to write over (If-Match)


def _versioned(entries: Sequence[OutboxEntry], version_of: VersionOf) -> list[OutboxEntry]:
    return [e for e in entries if not e.create_only and version_of(e) is not None]


def _escape(value: str) -> str:
    """A token search value: `\\`, `,`, `$` and `|` escaped (FHIR search escaping)."""
    for char in ("\\", ",", "$", "|"):
        value = value.replace(char, "\\" + char)
    return value


def _plan_version(resource: Json) -> int | None:
    for extension in resource.get("extension", []):
        if extension.get("url") == EXT_PLAN_VERSION:
            value = extension.get("valueInteger")
            return value if isinstance(value, int) else None
    return None


def read_server_plans(
    client: FhirClient, plans: Sequence[OutboxEntry]
) -> dict[tuple[str, str], ServerPlan]:
    """The server's CarePlans for these business identifiers, by (system, value); one search."""
    if not plans:
        return {}
    wanted = {(p.identifier_system, p.identifier_value) for p in plans}
    tokens = ",".join(f"{_escape(system)}|{_escape(value)}" for system, value in sorted(wanted))
    params = [
        ("identifier", tokens),
        ("_elements", "identifier,extension"),
        ("_count", str(max(len(wanted), 1) * 2)),
    ]
    found: dict[tuple[str, str], ServerPlan] = {}
    for bundle in client.search_bundles("CarePlan", params, post=True):
        for entry in bundle.get("entry", []):
            resource: dict[str, Any] = entry.get("resource") or {}
            plan = ServerPlan(
                id=str(resource.get("id", "")),
                version_id=str((resource.get("meta") or {}).get("versionId", "")),
                plan_version=_plan_version(resource),
            )
            for ident in resource.get("identifier", []):
                key = (ident.get("system", ""), ident.get("value", ""))
                if key in wanted:
                    found[key] = plan
    return found


def decide(
    groups: Sequence[Sequence[OutboxEntry]],
    version_of: VersionOf,
    server: dict[tuple[str, str], ServerPlan],
) -> Decision:
    """Which records to send and which CarePlans to write over with If-Match; pure."""
    decision = Decision(send=[], older=[], held={})
    for group in groups:
        older: OlderPlan | None = None
        held: dict[str, ServerPlan] = {}
        for plan in _versioned(group, version_of):
            ours = version_of(plan)
            current = server.get((plan.identifier_system, plan.identifier_value))
            if ours is None or current is None:
                continue
            if current.plan_version is not None and current.plan_version > ours:
                older = OlderPlan(group, plan, ours, current.plan_version)
                break
            held[plan.match_url] = current
        if older is not None:
            decision.older.append(older)
        else:
            decision.send.append(group)
            decision.held.update(held)
    return decision


def guard_bundle(bundle: Json, held: dict[str, ServerPlan]) -> Json:
    """The transaction with each held CarePlan written by id, conditional on its version.

    The entry keeps its urn:uuid fullUrl, so the Bundle's references to it still resolve.
    """
    for entry in bundle.get("entry", []):
        request = entry.get("request") or {}
        current = held.get(request.get("url", ""))
        if current is None or request.get("method") != "PUT":
            continue
        resource_type = entry["resource"]["resourceType"]
        entry["resource"] = {**entry["resource"], "id": current.id}
        entry["request"] = {
            "method": "PUT",
            "url": f"{resource_type}/{current.id}",
            "ifMatch": f'W/"{current.version_id}"',
        }
    return bundle


def versioned_plans(
    groups: Sequence[Sequence[OutboxEntry]], version_of: VersionOf
) -> list[OutboxEntry]:
    """The versioned CarePlans (plans with a source version) in these records."""
    return [e for group in groups for e in _versioned(group, version_of)]
