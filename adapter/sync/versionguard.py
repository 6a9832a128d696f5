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
A plan the server does not hold yet is created with a plain `POST`, never a conditional PUT (which
would update, unconditionally, a plan another installation created between our read and our
write, or with PostgreSQL sometimes create a second one). That relies on the server refusing a
second CarePlan with the same business identifier: the unique index of
`profiles/SearchParameter-business-identifier-unique.json` (HAPI answers 409, HAPI-1093). The
engine then reads again and decides again, as after a stale If-Match. A server without that rule
(profiles not installed) gets the conditional PUT as before, and a warning.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any

from adapter.canonical import EXT_PLAN_VERSION, SP_BUSINESS_ID_UNIQUE
from adapter.fhirclient import FhirClient
from adapter.logs import get_logger
from adapter.mapping.fhir import Json
from adapter.sync.outbox import OutboxEntry, Writable

VersionOf = Callable[[Writable], int | None]
_log = get_logger("adapter.sync")


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
    absent: set[str]  # match URLs of plans the server does not hold: created, never matched


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
    decision = Decision(send=[], older=[], held={}, absent=set())
    for group in groups:
        older: OlderPlan | None = None
        held: dict[str, ServerPlan] = {}
        absent: set[str] = set()
        for plan in _versioned(group, version_of):
            ours = version_of(plan)
            current = server.get((plan.identifier_system, plan.identifier_value))
            if ours is None:
                continue
            if current is None:
                absent.add(plan.match_url)
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
            decision.absent.update(absent)
    return decision


def guard_bundle(
    bundle: Json, held: dict[str, ServerPlan], absent: AbstractSet[str] = frozenset()
) -> Json:
    """The transaction with each held CarePlan written by id, conditional on its version, and
    each absent one (`absent`: only where the server enforces unique identifiers) as a create.

    The entry keeps its urn:uuid fullUrl, so the Bundle's references to it still resolve.
    """
    for entry in bundle.get("entry", []):
        request = entry.get("request") or {}
        url = request.get("url", "")
        if request.get("method") != "PUT":
            continue
        resource_type = entry["resource"]["resourceType"]
        if url in absent:
            entry["request"] = {"method": "POST", "url": resource_type}
            continue
        current = held.get(url)
        if current is None:
            continue
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


class UniqueRule:
    """Whether the server holds the business-identifier unique index (asked once, then kept)."""

    def __init__(self, client: FhirClient) -> None:
        self._client = client
        self._active: bool | None = None

    def active(self) -> bool:
        if self._active is None:
            params = {"url": SP_BUSINESS_ID_UNIQUE, "status": "active", "_elements": "id"}
            self._active = any(True for _ in self._client.search("SearchParameter", params))
            if not self._active:
                _log.warning("sync.no_unique_rule", search_parameter=SP_BUSINESS_ID_UNIQUE)
        return self._active
