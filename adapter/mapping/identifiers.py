"""Business identifiers and match URLs: how a resource is found again without its server id.

Identifier values other than the Patient's own never carry a personnummer: what is keyed on a
patient gets an opaque digest (`stable_digest`) instead.
"""

from __future__ import annotations

import hashlib
from datetime import date
from urllib.parse import quote

from adapter.domain import PersonId

_SEPARATOR = "\x1f"  # ASCII unit separator: cannot occur in the parts, so no two inputs collide


def _part(value: object) -> str:
    if isinstance(value, PersonId):  # str(PersonId) is masked: use the full number, hashed below
        return f"{value.system}|{value.digits}"
    if isinstance(value, date):  # datetime too
        return value.isoformat()
    return "" if value is None else str(value)


def stable_digest(*parts: object) -> str:
    """sha256 hex of the parts: the same inputs give the same value on every run and machine.

    A `PersonId` part counts with its system and full number; dates in ISO form; None as "".
    """
    joined = _SEPARATOR.join(_part(p) for p in parts)
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()


def _escape_token(value: str) -> str:
    # FHIR search escapes its own separators with a backslash before URL-encoding.
    for char in ("\\", "|", ",", "$"):
        value = value.replace(char, "\\" + char)
    return value


# Provenance has no `identifier` element: its business key is a meta.tag, found with `_tag`.
_KEY_PARAMETER = {"Provenance": "_tag"}


def match_url(resource_type: str, system: str, value: str) -> str:
    """`Type?identifier=system|value`, encoded so any value survives the round trip."""
    token = f"{quote(system, safe=':/')}|{quote(_escape_token(value), safe=':-._~')}"
    return f"{resource_type}?{_KEY_PARAMETER.get(resource_type, 'identifier')}={token}"
