"""The project's FHIR conformance resources (profiles/): load them and install them on a server.

Each file holds one resource whose id is the file name after its type (`ValueSet-huvudman.json`).
They are written with PUT by id, in dependency order, so installing twice changes nothing.

Versioned install (`version`, sandbox mode): on a server others share, a resource of someone else
may already have our id or our canonical URL. Then each resource gets `version`, an id of its own
(`sip-patient-0.1.0`), and every canonical reference between our resources (profile,
targetProfile, valueSet, baseDefinition) reads `url|version`, as do the `meta.profile` entries
the adapter writes in that mode (adapter/sandbox.py): validation then resolves our version only.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapter.fhirclient import FhirClient
from adapter.mapping.narrative import with_narrative
from adapter.sandbox import versioned

# What a later resource may refer to comes first; extensions before the profiles that use them.
_ORDER = ("CodeSystem", "ValueSet", "StructureDefinition")
_NOT_RESOURCES = {"package.json", ".index.json"}
_CANONICAL_KEYS = frozenset({"profile", "targetProfile", "valueSet", "baseDefinition"})


class ConformanceError(ValueError):
    """A file under profiles/ is not a usable conformance resource (Swedish message)."""


@dataclass(frozen=True, slots=True)
class ConformanceResource:
    path: Path
    resource: dict[str, Any]

    @property
    def resource_type(self) -> str:
        return str(self.resource["resourceType"])

    @property
    def id(self) -> str:
        return str(self.resource["id"])

    @property
    def url(self) -> str | None:
        return self.resource.get("url")

    def _rank(self) -> tuple[int, int, str]:
        kind = _ORDER.index(self.resource_type) if self.resource_type in _ORDER else len(_ORDER)
        extension = 0 if self.resource.get("type") == "Extension" else 1
        return (kind, extension, self.id)


def _load(path: Path) -> ConformanceResource:
    try:
        resource = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConformanceError(f"{path.name}: ogiltig JSON ({exc.msg}, rad {exc.lineno})") from exc
    if not isinstance(resource, dict) or "resourceType" not in resource or "id" not in resource:
        raise ConformanceError(f"{path.name}: saknar resourceType eller id")
    expected = f"{resource['resourceType']}-{resource['id']}.json"
    if path.name != expected:
        raise ConformanceError(f"{path.name}: filen ska heta {expected} (typ och id)")
    return ConformanceResource(path, resource)


def load_conformance(profiles_dir: Path) -> list[ConformanceResource]:
    """Every resource under `profiles_dir`, in the order a server should receive them."""
    paths = sorted(p for p in profiles_dir.glob("*.json") if p.name not in _NOT_RESOURCES)
    if not paths:
        raise ConformanceError(f"{profiles_dir}: inga profiler hittades")
    return sorted((_load(p) for p in paths), key=ConformanceResource._rank)


@dataclass(slots=True)
class InstallSummary:
    created: Counter[str] = field(default_factory=Counter)
    written: Counter[str] = field(default_factory=Counter)  # updated or unchanged
    reused: Counter[str] = field(default_factory=Counter)  # versioned: the server's own kept

    @property
    def total(self) -> int:
        return sum(self.created.values()) + sum(self.written.values())


def versioned_id(resource_id: str, version: str) -> str:
    return f"{resource_id}-{version}"[:64]


def _version_references(value: Any, key: str | None, version: str) -> Any:
    if isinstance(value, dict):
        copied = {k: _version_references(v, k, version) for k, v in value.items()}
        system = copied.get("system")
        if key == "include" and isinstance(system, str) and versioned(system, version) != system:
            copied.setdefault("version", version)  # compose.include of our CodeSystem
        return copied
    if isinstance(value, list):
        return [_version_references(v, key, version) for v in value]
    if isinstance(value, str) and key in _CANONICAL_KEYS:
        return versioned(value, version)
    return value


def with_version(item: ConformanceResource, version: str) -> ConformanceResource:
    """The resource as installed under `version`: own id, `version`, versioned references."""
    resource = {
        k: (v if k in ("url", "id", "resourceType") else _version_references(v, k, version))
        for k, v in item.resource.items()
    }
    resource["id"] = versioned_id(item.id, version)
    resource["version"] = version
    return ConformanceResource(item.path, resource)


def _search_parameter_elsewhere(client: FhirClient, item: ConformanceResource) -> bool:
    """A SearchParameter with our URL under another id: a second one of the same code would
    change how the whole shared server searches, so the one there is used."""
    if item.resource_type != "SearchParameter" or not item.url:
        return False
    found = client.search("SearchParameter", {"url": item.url, "_elements": "id"})
    return any(str(r.get("id")) != item.id for r in found)


def install_conformance(
    client: FhirClient,
    profiles_dir: Path,
    on_resource: Callable[[ConformanceResource], None] | None = None,
    *,
    version: str | None = None,
) -> InstallSummary:
    """PUT each resource by id (idempotent: an unchanged resource gets no new version);
    with `version`, the versioned copies (see the module docstring)."""
    summary = InstallSummary()
    for item in load_conformance(profiles_dir):
        if version:
            item = with_version(item, version)
            if _search_parameter_elsewhere(client, item):
                summary.reused[item.resource_type] += 1
                continue
        # a generated narrative where the file has none (dom-6), the same on every install
        resource = item.resource if "text" in item.resource else with_narrative(dict(item.resource))
        result = client.update(resource)
        (summary.created if result.created else summary.written)[item.resource_type] += 1
        if on_resource is not None:
            on_resource(item)
    return summary
