"""`--unit HSA-ID` options: each value checked by the one HSA-id rule (adapter.hsa)."""

from __future__ import annotations

import typer

from adapter.hsa import InvalidHsaId, parse_hsa_id


def hsa_ids(values: list[str] | None) -> list[str] | None:
    """A typer callback: the HSA-ids normalised, or a usage error (exit 2) naming the value."""
    if not values:
        return values
    checked = []
    for value in values:
        try:
            checked.append(parse_hsa_id(value))
        except InvalidHsaId as error:
            raise typer.BadParameter(f"'{value}': {error}") from None
    return checked
