"""The one error a mapper raises: a record that is well-formed but cannot become valid FHIR."""

from __future__ import annotations


class MappingError(ValueError):
    """`reason` is user-facing (Swedish); `field` names the source field when there is one."""

    def __init__(self, reason: str, *, field: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field
