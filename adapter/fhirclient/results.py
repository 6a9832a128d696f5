"""FHIR payloads at the edge: typed models to JSON, answers to dicts, writes to WriteResult."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests
from pydantic import BaseModel

from adapter.fhirclient.errors import FatalError

FHIR_JSON = "application/fhir+json"

Resource = Mapping[str, Any] | BaseModel

_LOCATION = re.compile(
    r"(?:^|/)(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})"
    r"(?:/_history/(?P<version>[^/?#]+))?/?$"
)
_ETAG = re.compile(r'^(?:W/)?"?(?P<version>[^"]*)"?$')


@dataclass(frozen=True)
class WriteResult:
    """What the server says about a write: Location/ETag, or a transaction entry's response."""

    resource_type: str | None
    id: str | None
    version: str | None
    status: int
    location: str | None
    created: bool
    resource: dict[str, Any] | None = None  # the stored resource, when the server returns it

    @classmethod
    def parse(
        cls,
        status: int,
        location: str | None,
        etag: str | None,
        resource: dict[str, Any] | None = None,
    ) -> WriteResult:
        match = _LOCATION.search(location.split("?", 1)[0]) if location else None
        tag = _ETAG.match(etag.strip()) if etag else None
        body = resource or {}
        return cls(
            resource_type=match["type"] if match else body.get("resourceType"),
            id=match["id"] if match else body.get("id"),
            version=(
                (match["version"] if match else None)
                or (tag["version"] if tag else None)
                or (body.get("meta") or {}).get("versionId")
            ),
            status=status,
            location=location,
            created=status == 201,
            resource=resource,
        )

    @classmethod
    def from_response(cls, response: requests.Response) -> WriteResult:
        return cls.parse(
            response.status_code,
            response.headers.get("Location") or response.headers.get("Content-Location"),
            response.headers.get("ETag"),
            json_body(response) if response.content else None,
        )

    @classmethod
    def from_entry(cls, entry: Mapping[str, Any]) -> WriteResult:
        """One entry of a transaction/batch response Bundle (`response.status` "201 Created")."""
        response = entry.get("response") or {}
        code = str(response.get("status", "0")).split(" ", 1)[0]
        return cls.parse(
            int(code) if code.isdigit() else 0,
            response.get("location"),
            response.get("etag"),
            entry.get("resource"),
        )


def as_dict(resource: Resource) -> dict[str, Any]:
    """Typed models (fhir.resources) become plain JSON dicts at the edge."""
    if isinstance(resource, BaseModel):
        return resource.model_dump(mode="json", by_alias=True, exclude_none=True)
    return dict(resource)


def next_link(bundle: Mapping[str, Any]) -> str | None:
    return next(
        (link.get("url") for link in bundle.get("link", []) if link.get("relation") == "next"),
        None,
    )


def json_body(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise FatalError("Servern svarade inte med ett JSON-objekt", status=response.status_code)
    return body


def encode(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
