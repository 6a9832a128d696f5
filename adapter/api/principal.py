"""Who is calling: roles and granted units, whichever way they logged in."""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass, field
from enum import StrEnum

from adapter.hsa import InvalidHsaId, parse_hsa_id


class Role(StrEnum):
    VARDSAMORDNARE = "vardsamordnare"  # reads patient data of the units granted
    INTEGRATION = "integration"  # sends data in; reads no patient data
    ADMIN = "admin"  # reads everything, including the audit log


PATIENT_DATA_READERS = (Role.VARDSAMORDNARE, Role.ADMIN)
INGESTERS = (Role.INTEGRATION, Role.ADMIN)


def parse_roles(values: object) -> frozenset[Role]:
    """Known roles among `values` (a list, or a space-separated string); others are ignored."""
    names = values.split() if isinstance(values, str) else values
    if not isinstance(names, list | tuple | set | frozenset):
        return frozenset()
    known = {role.value for role in Role}
    return frozenset(Role(name) for name in names if isinstance(name, str) and name in known)


def parse_units(values: object) -> frozenset[str]:
    """The HSA-ids among `values` (a list), normalised; anything else is ignored: a unit
    that is not an HSA-id grants nothing."""
    if not isinstance(values, list | tuple | set | frozenset):
        return frozenset()
    units: set[str] = set()
    for value in values:
        if isinstance(value, str):
            with suppress(InvalidHsaId):
                units.add(parse_hsa_id(value))
    return frozenset(units)


@dataclass(frozen=True, slots=True)
class Principal:
    name: str  # for people to read: the user's name, or the API key's name
    subject: str  # stable id: the token's `sub`, or `apikey:<name>`
    roles: frozenset[Role] = field(default_factory=frozenset)
    units: frozenset[str] = field(default_factory=frozenset)  # HSA-ids
    method: str = "oidc"  # oidc | apikey

    def has_role(self, *roles: Role) -> bool:
        return not self.roles.isdisjoint(roles)

    @property
    def ingest_units(self) -> frozenset[str] | None:
        """The units whose rows this caller may send in; None: every unit (an admin, or an
        integration key without units: the region's own integration)."""
        if Role.ADMIN in self.roles or not self.units:
            return None
        return self.units

    def can_read_unit(self, unit: str) -> bool:
        """Patient data of `unit`: an admin everywhere, a vårdsamordnare in the units granted."""
        if Role.ADMIN in self.roles:
            return True
        return Role.VARDSAMORDNARE in self.roles and unit in self.units
