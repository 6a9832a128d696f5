"""Static API keys for local use, from a JSON file that holds only their SHA-256 hashes.

File format (`SIP_FHIR_API_KEYS_FILE`)::

    {"<sha256 hex of the key>": {"name": "prea60-import", "role": "integration", "units": []}}

Keys are random (`new_key`), so an unsalted hash is enough: it cannot be guessed back.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from adapter.api.principal import Principal, Role
from adapter.hsa import HsaId

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class ApiKeyError(ValueError):
    """The key file cannot be used; the message is user-facing Swedish."""


class ApiKeyEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    role: Role
    units: list[HsaId] = Field(default_factory=list)  # empty: every unit (see README, Security)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return secrets.token_urlsafe(32)


class ApiKeyStore:
    def __init__(self, entries: dict[str, ApiKeyEntry]) -> None:
        self._entries = entries

    @classmethod
    def load(cls, path: Path) -> ApiKeyStore:
        return cls(read_entries(path))

    def principal_for(self, key: str) -> Principal | None:
        presented = hash_key(key)
        found: ApiKeyEntry | None = None
        for digest, entry in self._entries.items():  # compare all, in constant time each
            if hmac.compare_digest(digest, presented):
                found = entry
        if found is None:
            return None
        return Principal(
            name=found.name,
            subject=f"apikey:{found.name}",
            roles=frozenset({found.role}),
            units=frozenset(found.units),
            method="apikey",
        )


def read_entries(path: Path) -> dict[str, ApiKeyEntry]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ApiKeyError(f"{path}: filen med API-nycklar finns inte") from None
    except (OSError, ValueError) as error:
        raise ApiKeyError(f"{path}: kan inte läsas som JSON ({error})") from None
    if not isinstance(raw, dict):
        raise ApiKeyError(f"{path}: väntade ett JSON-objekt: nyckelns sha256 -> uppgifter")
    entries: dict[str, ApiKeyEntry] = {}
    for digest, value in raw.items():
        if not _SHA256_HEX.fullmatch(digest):
            raise ApiKeyError(
                f"{path}: '{digest[:12]}…' är ingen sha256-summa (64 hexadecimala gemener); "
                "filen får bara innehålla nycklarnas hashvärden"
            )
        try:
            entries[digest] = ApiKeyEntry.model_validate(value)
        except ValidationError as error:
            where = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'posten'} "
                f"({e['msg'].removeprefix('Value error, ')})"
                for e in error.errors()
            )
            raise ApiKeyError(f"{path}: ogiltig post {digest[:12]}…: fält {where}") from None
    return entries


def add_entry(path: Path, key: str, entry: ApiKeyEntry) -> None:
    """Add `key` (by its hash) to the file, creating it readable by its owner only."""
    entries = read_entries(path) if path.exists() else {}
    entries[hash_key(key)] = entry
    text = json.dumps(
        {digest: e.model_dump() for digest, e in entries.items()}, ensure_ascii=False, indent=2
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text + "\n")
    tmp.replace(path)
