"""Tables the commands print (rich)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from rich.table import Table


def counts_by_type(
    title: str,
    headers: tuple[str, str],
    first: Mapping[str, int],
    second: Mapping[str, int],
    shown: Callable[[int], str] = str,
) -> Table:
    """Two counts per resource type (counters: a type missing from one counts 0), by type name."""
    table = Table(title=title)
    table.add_column("Resurstyp")
    for header in headers:
        table.add_column(header, justify="right")
    for resource_type in sorted(first.keys() | second.keys()):
        table.add_row(resource_type, shown(first[resource_type]), shown(second[resource_type]))
    return table
