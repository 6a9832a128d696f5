"""`purge --tag T`: remove from a server exactly what sandbox runs tagged T wrote.

Found by `_tag=TAG_RUN|T` in every resource type the server has (the adapter's own types
first, referrers before what they refer to, so HAPI's referential integrity lets the deletes
through). A resource that also carries another run's tag was written by that run too: it stays,
and only this run's tag is taken off it (`$meta-delete`). Deletes go as one transaction per type
and chunk; a chunk the server refuses (something outside the run still refers to one of them) is
deleted one by one, and what cannot go is reported, never forced.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from adapter.canonical import TAG_RUN
from adapter.fhirclient import Conflict, FhirClient, NotFound, Rejected
from adapter.logs import get_logger
from adapter.sandbox import check_run_tag

# Referrers first: Tasks and reports point at plans, patients; plans at goals and teams; all at
# Patient; profiles last (data may declare them).
DELETE_ORDER = (
    "Subscription",
    "Task",
    "MeasureReport",
    "List",
    "Provenance",
    "Procedure",
    "RiskAssessment",
    "Encounter",
    "CarePlan",
    "Goal",
    "CareTeam",
    "Basic",
    "Patient",
    "PractitionerRole",
    "Practitioner",
    "Organization",
    "Measure",
    "SearchParameter",
    "StructureDefinition",
    "ValueSet",
    "CodeSystem",
)
CHUNK = 100

_log = get_logger("adapter.purge")


@dataclass(frozen=True, slots=True)
class Tagged:
    resource_type: str
    id: str
    shared: bool  # carries another run's tag too


@dataclass(slots=True)
class PurgeResult:
    deleted: Counter[str] = field(default_factory=Counter)
    untagged: Counter[str] = field(default_factory=Counter)  # shared: only our tag removed
    kept: list[tuple[str, str, str]] = field(default_factory=list)  # type, id, server's reason
    deleted_ids: dict[str, list[str]] = field(default_factory=dict)


def resource_types(client: FhirClient) -> list[str]:
    """Every type the server serves, ours first in delete order, the others before them (they
    are not ours, so anything of theirs carrying the tag refers to ours, not the other way)."""
    statement = client.capabilities()
    served = [
        str(r.get("type"))
        for rest in statement.get("rest", [])
        for r in rest.get("resource", [])
        if r.get("type")
    ]
    others = sorted(set(served) - set(DELETE_ORDER))
    return others + [t for t in DELETE_ORDER if t in served or not served]


def find_tagged(client: FhirClient, tag: str, types: list[str]) -> Iterator[Tagged]:
    token = f"{TAG_RUN}|{check_run_tag(tag)}"
    for resource_type in types:
        params = {"_tag": token, "_elements": "id", "_count": "500"}
        for resource in client.search(resource_type, params):
            runs = {
                t.get("code")
                for t in (resource.get("meta") or {}).get("tag", [])
                if t.get("system") == TAG_RUN
            }
            yield Tagged(resource_type, str(resource["id"]), bool(runs - {tag}))


def purge(
    client: FhirClient,
    tag: str,
    *,
    dry_run: bool = False,
    on_type: Callable[[str, int], None] | None = None,
) -> PurgeResult:
    types = resource_types(client)
    found = list(find_tagged(client, tag, types))
    result = PurgeResult()
    for resource_type in types:
        mine = [t for t in found if t.resource_type == resource_type]
        if not mine:
            continue
        if on_type:
            on_type(resource_type, len(mine))
        shared = [t for t in mine if t.shared]
        alone = [t.id for t in mine if not t.shared]
        if dry_run:
            result.deleted[resource_type] += len(alone)
            result.untagged[resource_type] += len(shared)
            continue
        for item in shared:
            _remove_tag(client, item, tag)
            result.untagged[resource_type] += 1
        for start in range(0, len(alone), CHUNK):
            _delete_chunk(client, resource_type, alone[start : start + CHUNK], result)
    return result


def _remove_tag(client: FhirClient, item: Tagged, tag: str) -> None:
    parameters = {
        "resourceType": "Parameters",
        "parameter": [{"name": "meta", "valueMeta": {"tag": [{"system": TAG_RUN, "code": tag}]}}],
    }
    client.operation(item.resource_type, item.id, "$meta-delete", parameters)


def _delete_chunk(
    client: FhirClient, resource_type: str, ids: list[str], result: PurgeResult
) -> None:
    entries = [{"request": {"method": "DELETE", "url": f"{resource_type}/{i}"}} for i in ids]
    try:
        client.transaction({"resourceType": "Bundle", "type": "transaction", "entry": entries})
    except (Conflict, Rejected, NotFound):
        for resource_id in ids:  # one by one: keep what something else still refers to
            try:
                client.delete(resource_type, resource_id)
            except (Conflict, Rejected) as error:
                _log.warning("purge.kept", resource_type=resource_type, reason=error.message)
                result.kept.append((resource_type, resource_id, error.message))
                continue
            _record_deleted(result, resource_type, [resource_id])
        return
    _record_deleted(result, resource_type, ids)


def _record_deleted(result: PurgeResult, resource_type: str, ids: list[str]) -> None:
    result.deleted[resource_type] += len(ids)
    result.deleted_ids.setdefault(resource_type, []).extend(ids)
