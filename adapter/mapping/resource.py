"""The unit the mapping hands on: one FHIR resource and how to write it idempotently."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from adapter.mapping.identifiers import match_url


@dataclass(frozen=True, slots=True)
class MappedResource:
    """A JSON-ready FHIR R4 resource (no `id`, meta.profile set) and its business identifier.

    References to other resources are conditional (`Type?identifier=system|value`) or logical
    (Reference.identifier), so the JSON stands on its own. `create_only`: write with If-None-Exist,
    never overwrite (a Patient stub must not erase the name a Prea60 import wrote).
    """

    resource_type: str
    identifier_system: str
    identifier_value: str
    resource: dict[str, Any]
    create_only: bool = False

    @property
    def match_url(self) -> str:
        return match_url(self.resource_type, self.identifier_system, self.identifier_value)

    @property
    def profile(self) -> str:
        """The profile the resource declares (its first meta.profile)."""
        return str(self.resource["meta"]["profile"][0])
