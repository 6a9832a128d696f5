"""`sip-fhir purge --tag T`: remove what sandbox runs tagged T wrote (adapter/purge.py)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from adapter.cli.app import app
from adapter.cli.rowerrors import thousands
from adapter.cli.tables import counts_by_type
from adapter.fhirclient import FhirClient, FhirError
from adapter.purge import PurgeResult, purge
from adapter.sandbox import RunTagError, check_run_tag
from adapter.settings import Settings, get_settings
from adapter.sync import open_outbox, outbox_url

EXIT_OK, EXIT_FAILED, EXIT_KEPT = 0, 1, 2


@app.command("purge")
def purge_command(
    tag: Annotated[str, typer.Option("--tag", help="Körningens tagg (meta.tag), t.ex. sandbox-…")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Visa vad som skulle tas bort, ta inte bort.")
    ] = False,
) -> None:
    """Ta bort från FHIR-servern exakt det som körningar med taggen skrev (och inget annat)."""
    settings = get_settings()
    out, err = Console(), Console(stderr=True)
    try:
        check_run_tag(tag)
    except RunTagError as error:
        err.print(f"[bold red]{error}[/]")
        raise typer.Exit(EXIT_FAILED) from None
    try:
        with FhirClient(settings.endpoint()) as client:
            result = purge(
                client,
                tag,
                dry_run=dry_run,
                on_type=lambda t, n: err.print(f"  {t}: {n}", highlight=False),
            )
    except FhirError as error:
        err.print(f"[bold red]Rensningen misslyckades:[/] {error}")
        raise typer.Exit(EXIT_FAILED) from None
    if not dry_run:
        _forget_in_outbox(settings, result)
    _print(result, tag, dry_run, out)
    raise typer.Exit(EXIT_KEPT if result.kept else EXIT_OK)


def _forget_in_outbox(settings: Settings, result: PurgeResult) -> None:
    """The local outbox must not believe the server still holds what was purged."""
    outbox = open_outbox(outbox_url(settings))
    for resource_type, ids in result.deleted_ids.items():
        outbox.forget(resource_type, ids)
    recorded = outbox.server_epoch(settings.base_url.rstrip("/"))
    if recorded is not None and recorded.marker_id in result.deleted_ids.get("Basic", []):
        outbox.forget_server_epoch(settings.base_url.rstrip("/"))


def _print(result: PurgeResult, tag: str, dry_run: bool, console: Console) -> None:
    title = f"{'Skulle tas bort' if dry_run else 'Borttaget'}: tagg {tag}"
    headers = ("Borttagna", "Delas med andra körningar (bara taggen bort)")
    console.print(counts_by_type(title, headers, result.deleted, result.untagged, thousands))
    total = sum(result.deleted.values())
    console.print(f"{thousands(total)} resurser {'skulle tas bort' if dry_run else 'borttagna'}.")
    for resource_type, resource_id, reason in result.kept:
        console.print(
            f"Kvar: {resource_type}/{resource_id}: något utanför körningen refererar till den "
            f"({reason})",
            markup=False,
            soft_wrap=True,
        )
