"""Does the server still hold what the outbox believes it holds?

The outbox skips every resource whose content the server once confirmed. A server that lost its
data (an in-memory database restarted, a restore from an older backup, a different server behind
the same URL) would then never get it back. So, per server base URL, the adapter keeps a marker
there: a `Basic` with a business identifier (`ID_OUTBOX_EPOCH`, a random uuid per outbox and
server) and the number of runs that wrote (`EXT_OUTBOX_GENERATION`), recorded in the outbox too.

Before each import and sync (`check_server`):
- marker missing, or its count lower than recorded: the server lost data. Everything the outbox
  believed done is queued again (conditional writes: what the server still has changes nothing).
- marker present: a spot check of `SPOT_CHECK_SIZE` random resources; any missing → the bulk
  comparison (`verify`), which queues exactly what is missing or older than what was confirmed.
- no marker recorded yet (first contact, or an outbox older than this check): the spot check
  decides between "all queued again" and "nothing to do"; then the marker is written.
After a run that wrote, `advance` counts it on the marker: a backup restored from before that
run then shows a lower count than the outbox recorded.

Lookups go by logical id (`_id`, POST `_search`, `_elements=identifier`) and confirm the business
identifier, since a fresh database hands out the same ids again; rows without a server id are
looked up by identifier inside a batch Bundle, so a personnummer never stands in a URL.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlencode

from adapter.canonical import EXT_OUTBOX_GENERATION, ID_OUTBOX_EPOCH, TAG_ADAPTER
from adapter.fhirclient import FhirClient
from adapter.logs import get_logger
from adapter.sync.outbox import Believed, Outbox, ServerEpoch

SPOT_CHECK_SIZE = 20
ID_CHUNK = 100  # ids per `_id` search
MARKER_TAG = "outbox-epoch"

_log = get_logger("adapter.sync.servercheck")


class ServerState(StrEnum):
    KNOWN = "known"  # the marker is there and the spot check found everything
    FIRST_CONTACT = "first_contact"  # nothing recorded yet for this server
    LOST = "lost"  # the marker is gone or older: the server lost data
    PARTLY_LOST = "partly_lost"  # marker fine, but the spot check missed resources


@dataclass(slots=True)
class CheckResult:
    state: ServerState
    requeued: int = 0  # resources queued again because the server lacks them

    @property
    def message(self) -> str | None:
        """What to tell the user (Swedish), or None when all is well."""
        if not self.requeued:
            return None
        why = {
            ServerState.LOST: "FHIR-servern har förlorat data (utkorgens markör saknas eller "
            "är äldre)",
            ServerState.PARTLY_LOST: "Stickprovet visade att FHIR-servern saknar resurser",
            ServerState.FIRST_CONTACT: "FHIR-servern saknar resurser som utkorgen trodde fanns",
        }.get(self.state, "FHIR-servern saknar resurser")
        return f"{why}: {self.requeued} resurser skickas igen."


@dataclass(slots=True)
class VerifyResult:
    checked: int = 0
    missing: int = 0  # not on the server, or under another identifier
    stale: int = 0  # on the server in an older version than the one confirmed
    requeued: int = 0
    by_type: dict[str, int] = field(default_factory=dict)  # missing + stale, per type


def marker_resource(epoch: ServerEpoch) -> dict[str, Any]:
    return {
        "resourceType": "Basic",
        "meta": {"tag": [{"system": TAG_ADAPTER, "code": MARKER_TAG}]},
        "identifier": [{"system": ID_OUTBOX_EPOCH, "value": epoch.epoch}],
        "code": {"text": "sip-fhir: utkorgens markör (vad servern har fått)"},
        "extension": [{"url": EXT_OUTBOX_GENERATION, "valueInteger": epoch.generation}],
    }


def _read_marker(client: FhirClient, epoch: str) -> tuple[str, int] | None:
    """(logical id, generation) of the marker with this epoch, or None."""
    found = list(client.search("Basic", {"identifier": f"{ID_OUTBOX_EPOCH}|{epoch}"}))
    if not found:
        return None
    marker = found[0]
    generation = next(
        (
            int(ext.get("valueInteger", 0))
            for ext in marker.get("extension", [])
            if ext.get("url") == EXT_OUTBOX_GENERATION
        ),
        0,
    )
    return str(marker["id"]), generation


def _write_marker(client: FhirClient, outbox: Outbox, epoch: ServerEpoch) -> None:
    result = client.conditional_update(
        marker_resource(epoch), f"identifier={ID_OUTBOX_EPOCH}|{epoch.epoch}"
    )
    outbox.record_server_epoch(
        client.base_url, ServerEpoch(epoch.epoch, epoch.generation, result.id)
    )


def check_server(
    outbox: Outbox, client: FhirClient, *, spot_check_size: int = SPOT_CHECK_SIZE
) -> CheckResult:
    """Compare the marker and a random sample with what the outbox recorded; queue again what
    the server lacks. Call before sending (import, sync)."""
    recorded = outbox.server_epoch(client.base_url)
    marker = _read_marker(client, recorded.epoch) if recorded else None
    if recorded is not None and (marker is None or marker[1] < recorded.generation):
        requeued = outbox.requeue()
        _write_marker(client, outbox, ServerEpoch(recorded.epoch, recorded.generation + 1, None))
        result = CheckResult(ServerState.LOST, requeued)
    else:
        sample = outbox.sample_done(spot_check_size)
        absent = find_missing(client, sample)
        if recorded is None:
            requeued = outbox.requeue() if absent else 0
            _write_marker(client, outbox, ServerEpoch(uuid.uuid4().hex, 1, None))
            result = CheckResult(ServerState.FIRST_CONTACT, requeued)
        elif absent:
            verified = verify(outbox, client)
            result = CheckResult(ServerState.PARTLY_LOST, verified.requeued)
        else:
            result = CheckResult(ServerState.KNOWN)
    if result.requeued:
        _log.warning("sync.server_lost_data", state=result.state.value, requeued=result.requeued)
    return result


def advance(outbox: Outbox, client: FhirClient) -> None:
    """A run wrote to the server: count it on the marker, then in the outbox."""
    recorded = outbox.server_epoch(client.base_url)
    if recorded is None:
        return
    _write_marker(client, outbox, ServerEpoch(recorded.epoch, recorded.generation + 1, None))


def verify(outbox: Outbox, client: FhirClient) -> VerifyResult:
    """Compare everything the outbox believes done with the server; queue again what is missing
    or older there. Returns the counts."""
    result = VerifyResult()
    for chunk in outbox.iter_done():
        result.checked += len(chunk)
        gone = _absent(client, chunk)
        for item, why in gone:
            if why == "stale":
                result.stale += 1
            else:
                result.missing += 1
            result.by_type[item.resource_type] = result.by_type.get(item.resource_type, 0) + 1
        result.requeued += outbox.requeue(item.match_url for item, _ in gone)
    return result


def find_missing(client: FhirClient, believed: Sequence[Believed]) -> list[Believed]:
    """Those of `believed` the server does not hold as confirmed."""
    return [item for item, _ in _absent(client, believed)]


def _absent(client: FhirClient, believed: Sequence[Believed]) -> list[tuple[Believed, str]]:
    by_id = [b for b in believed if b.server_id]
    by_identifier = [b for b in believed if not b.server_id]
    found: dict[tuple[str, str], dict[str, Any]] = {}  # (type, id) -> resource (identifier only)
    types = sorted({b.resource_type for b in by_id})
    for resource_type in types:
        ids = sorted({b.server_id or "" for b in by_id if b.resource_type == resource_type})
        for start in range(0, len(ids), ID_CHUNK):
            part = ids[start : start + ID_CHUNK]
            params = {"_id": ",".join(part), "_elements": "identifier", "_count": str(len(part))}
            for resource in client.search(resource_type, params, post=True):
                found[(resource_type, str(resource.get("id")))] = resource
    gone: list[tuple[Believed, str]] = []
    for item in by_id:
        why = _judge(item, found.get((item.resource_type, item.server_id or "")))
        if why:
            gone.append((item, why))
    for item, match in _lookup_by_identifier(client, by_identifier):
        why = _judge(item, match)
        if why:
            gone.append((item, why))
    return gone


def _judge(item: Believed, resource: dict[str, Any] | None) -> str | None:
    """None if the server holds `item` as confirmed; else "missing" or "stale"."""
    if resource is None:
        return "missing"
    identifiers = {(i.get("system"), i.get("value")) for i in resource.get("identifier", [])}
    if (item.identifier_system, item.identifier_value) not in identifiers:
        return "missing"  # the same logical id, handed out again to another resource
    version = str((resource.get("meta") or {}).get("versionId", ""))
    if item.server_version and item.server_id == resource.get("id"):
        if version.isdigit() and item.server_version.isdigit():
            if int(version) < int(item.server_version):
                return "stale"  # an older backup: the confirmed version is gone
    return None


def _lookup_by_identifier(
    client: FhirClient, believed: Sequence[Believed]
) -> Iterable[tuple[Believed, dict[str, Any] | None]]:
    urls = [
        f"{item.resource_type}?"
        + urlencode(
            {
                "identifier": f"{item.identifier_system}|{item.identifier_value}",
                "_elements": "identifier",
            }
        )
        for item in believed
    ]
    for item, searchset in zip(believed, client.batch_reads(urls), strict=True):
        matches = [
            e.get("resource")
            for e in searchset.get("entry", [])
            if isinstance(e.get("resource"), dict)
        ]
        yield item, (matches[0] if matches else None)
