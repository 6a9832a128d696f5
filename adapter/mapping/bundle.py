"""Mapped resources → one FHIR transaction Bundle (conditional writes, in-bundle references)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from adapter.mapping.fhir import Json
from adapter.mapping.identifiers import stable_urn
from adapter.mapping.resource import MappedResource


def full_url(resource: MappedResource) -> str:
    """Stable per business identifier, so the same input gives the same Bundle."""
    return stable_urn(resource.match_url)


def _dedupe(resources: Iterable[MappedResource]) -> list[MappedResource]:
    """One entry per (type, identifier): later wins, but a stub never replaces a full resource."""
    chosen: dict[tuple[str, str, str], MappedResource] = {}
    for resource in resources:
        key = (resource.resource_type, resource.identifier_system, resource.identifier_value)
        earlier = chosen.get(key)
        if earlier is not None and resource.create_only and not earlier.create_only:
            continue
        chosen[key] = resource  # a dict keeps the first position: dependencies stay first
    return list(chosen.values())


def _rewrite(value: Any, targets: dict[str, str]) -> Any:
    """A copy of `value` with every `reference` to an in-bundle match URL made its urn:uuid."""
    if isinstance(value, dict):
        result = {}
        for key, item in value.items():
            if key == "reference" and isinstance(item, str) and item in targets:
                result[key] = targets[item]
            else:
                result[key] = _rewrite(item, targets)
        return result
    if isinstance(value, list):
        return [_rewrite(item, targets) for item in value]
    return value


def _request(resource: MappedResource) -> Json:
    if resource.create_only:
        query = resource.match_url.partition("?")[2]
        return {"method": "POST", "url": resource.resource_type, "ifNoneExist": query}
    return {"method": "PUT", "url": resource.match_url}


def transaction_bundle(resources: Iterable[MappedResource]) -> Json:
    """A transaction: PUT match URL (conditional update) or POST If-None-Exist (create_only).

    References to a resource in the Bundle become its urn:uuid (the server substitutes the id it
    resolves or assigns); references to anything else stay as they are (conditional or logical).
    """
    entries = _dedupe(resources)
    targets = {entry.match_url: full_url(entry) for entry in entries}
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": targets[entry.match_url],
                "resource": _rewrite(entry.resource, targets),
                "request": _request(entry),
            }
            for entry in entries
        ],
    }
