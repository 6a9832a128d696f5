"""`sip-fhir import FILE...` and `sip-fhir sync`: source files → outbox → FHIR server.

Exit codes: 0 all went well; 2 some rows (or resources) were rejected, the rest landed; 1 the
run failed (server unreachable, bad settings): what was read waits in the outbox for `sync`;
4 all landed, but a Prea60 run was stored unconfirmed (see `sip-fhir prea60 list`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from adapter.cli.app import app
from adapter.cli.rowerrors import ErrorReport, thousands
from adapter.fhirclient import FhirClient, FhirError
from adapter.mapping import MappingsError
from adapter.personnummer import mask
from adapter.readmodel.imports import ImportTouches
from adapter.readmodel.worklists import store_for
from adapter.settings import Settings, get_settings
from adapter.sources import ColumnMapError, SourceKind
from adapter.sources.textfile import encoding_name
from adapter.sync import (
    DEFAULT_WORKERS,
    CheckResult,
    Importer,
    Outbox,
    OutboxOpenError,
    SyncEngine,
    SyncHooks,
    SyncSettings,
    SyncStop,
    Tally,
    VerifyResult,
    checked_server,
    combine,
    counted_run,
    metrics_hooks,
    open_outbox,
    outbox_url,
    verify,
)

EXIT_OK, EXIT_FAILED, EXIT_REJECTED, EXIT_UNCONFIRMED = 0, 1, 2, 4


def _line_count(path: Path) -> int:
    """Data rows, roughly (lines less a header): the progress bar's total."""
    try:
        with path.open("rb") as file:
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: file.read(1 << 20), b""))
    except OSError:
        return 0
    return lines if path.suffix == ".jsonl" else max(lines - 1, 0)


@contextmanager
def _progress(console: Console, total_rows: int) -> Iterator[SyncHooks]:
    """A progress bar of rows read and resources written, as hooks."""
    progress = Progress(
        TextColumn("{task.description:<22}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
        disable=not console.is_terminal,
    )
    read: TaskID = progress.add_task("Läser rader", total=total_rows or None)
    written: TaskID = progress.add_task("Skriver resurser", total=0)
    queued = 0

    def on_queued(count: int, _unchanged: int) -> None:
        nonlocal queued
        queued += count
        progress.update(written, total=queued)

    hooks = SyncHooks(
        rows=lambda _kind, n: progress.advance(read, n),
        queued=on_queued,
        written=lambda _type, _outcome: progress.advance(written, 1),
    )
    with progress:
        yield hooks


def _settings(batch_size: int | None, workers: int) -> tuple[Settings, SyncSettings]:
    settings = get_settings()  # logging is configured by the app's root callback
    return settings, SyncSettings(batch_size=batch_size or settings.batch_size, workers=workers)


_OLDER_SHOWN = 10  # plans named one by one in the summary


def _summary(
    tally: Tally,
    open_left: int,
    stop: SyncStop | None,
    console: Console,
    check: CheckResult | None = None,
) -> None:
    if check is not None and check.message:
        console.print(f"[bold yellow]{check.message}[/]")
    table = Table(title="Sammanfattning", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    requeued = check.requeued if check is not None else 0
    read = bool(tally.rows_read or tally.rows_rejected)
    repeated = tally.rows_duplicate if read else 0
    rows = (  # (label, count, shown)
        ("Skickade igen (servern saknade dem)", requeued, requeued > 0),
        ("Rader lästa", tally.rows_read, read),
        ("Avvisade rader", tally.rows_rejected, read),
        ("Upprepade rader (hoppades över)", repeated, repeated > 0),
        ("Äldre planversioner (hoppades över)", tally.older_skipped, tally.older_skipped > 0),
        ("Resurser skapade", tally.created, True),
        ("Resurser uppdaterade", tally.updated, True),
        ("Skrivna, redan aktuella på servern", tally.noop, tally.noop > 0),
        ("Oförändrade (ingen skrivning)", tally.unchanged, tally.rows_read > 0),
        ("Omförsök", tally.retries, True),
        ("Avvisade av servern (döda brev)", tally.dead, True),
        ("Kvar i utkorgen", open_left, True),
    )
    for label, count, shown in rows:
        if shown:
            table.add_row(label, thousands(count))
    seconds = tally.seconds
    rate = f" ({tally.written / seconds:.0f} resurser/s)" if tally.written and seconds else ""
    table.add_row("Tid", f"{seconds:.1f} s{rate}")
    console.print(table)
    for message in tally.older_messages[:_OLDER_SHOWN]:  # the server had a newer version
        console.print(f"[yellow]{mask(message)}[/]")
    if len(tally.older_messages) > _OLDER_SHOWN:
        console.print(f"… och {len(tally.older_messages) - _OLDER_SHOWN} planer till.")
    if stop is not None:
        what = "FHIR-servern svarar inte" if stop.temporary else "Skrivningen avbröts"
        console.print(f"[bold red]{what}:[/] {mask(stop.message)}")
    if open_left:
        console.print(
            f"{thousands(open_left)} resurser väntar i utkorgen; kör [bold]sip-fhir sync[/] "
            "när servern svarar igen."
        )
    if tally.dead:
        console.print("Se de avvisade resurserna med [bold]sip-fhir sync --failed[/].")


def _exit_code(tally: Tally, open_left: int, stop: SyncStop | None) -> int:
    if stop is not None or open_left:
        return EXIT_FAILED
    if tally.rows_rejected or tally.dead:
        return EXIT_REJECTED
    return EXIT_OK


# The options `import` and `sync` share.
BatchSizeOption = Annotated[
    int | None,
    typer.Option("--batch-size", min=1, help="Resurser per transaktion (SIP_FHIR_BATCH_SIZE)."),
]
WorkersOption = Annotated[
    int, typer.Option("--workers", min=1, max=8, help="Samtidiga transaktioner mot servern.")
]


def _client(settings: Settings, tally: Tally) -> FhirClient:
    return FhirClient(settings.endpoint(), on_retry=tally.client_retry)


@app.command("import")
def import_command(
    files: Annotated[
        list[Path], typer.Argument(help="Källfiler (prea60*.csv, plans*.jsonl, events*.csv, ...).")
    ],
    kind: Annotated[
        SourceKind | None,
        typer.Option("--kind", help="Filtyp för alla filer (standard: filnamnets början)."),
    ] = None,
    batch_size: BatchSizeOption = None,
    workers: WorkersOption = DEFAULT_WORKERS,
    force: Annotated[
        bool,
        typer.Option("--force", help="Skriv allt igen, även det servern redan har."),
    ] = False,
    report: Annotated[
        Path | None,
        typer.Option("--report", help="Fil för radfelen (standard: i datakatalogen)."),
    ] = None,
    show: Annotated[int, typer.Option("--show", min=0, help="Antal radfel att visa.")] = 20,
) -> None:
    """Läs källfiler, mappa till FHIR och skriv till FHIR-servern (via utkorgen)."""
    settings, sync_settings = _settings(batch_size, workers)
    out, err = Console(), Console(stderr=True)
    for path in files:
        if not path.is_file():
            err.print(f"[bold red]Filen finns inte:[/] {path}")
            raise typer.Exit(EXIT_FAILED)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    errors = ErrorReport(report or settings.data_dir / "reports" / f"import-{stamp}.csv", show)
    total = sum(_line_count(path) for path in files)
    with _progress(err, total) as progress_hooks:
        tally = Tally(combine(progress_hooks, metrics_hooks(), SyncHooks(row_error=errors.add)))
        try:
            touches = ImportTouches()
            with _client(settings, tally) as client:
                importer = Importer(
                    open_outbox(outbox_url(settings)),
                    client,
                    settings.mappings_dir,
                    tally,
                    sync_settings,
                    force=force,
                    admit=touches.admission(),
                    care_provider_hsa_id=settings.care_provider_hsa_id,
                )
                try:
                    result = importer.run(files, kind)
                finally:  # the worklists read these patients again (adapter/readmodel)
                    store_for(settings).record(touches.touched())
        except (ColumnMapError, MappingsError, OSError, ValueError) as error:
            err.print(f"[bold red]Importen kunde inte starta:[/] {mask(str(error))}")
            raise typer.Exit(EXIT_FAILED) from None
        finally:
            errors.close()
    errors.print(err)
    for reading in result.readings:
        encoding = encoding_name(reading.summary.encoding)
        out.print(f"{reading.file}: läst som {encoding}", soft_wrap=True, markup=False)
    _summary(tally, result.open_left, result.stop, out, result.check)
    for check in result.unconfirmed_runs:
        err.print(f"[bold yellow]Obekräftad körning:[/] {check.describe()}", highlight=False)
    if result.runs_unchecked:
        err.print(f"[yellow]{result.runs_unchecked}[/]", highlight=False)
    code = _exit_code(tally, result.open_left, result.stop)
    raise typer.Exit(EXIT_UNCONFIRMED if code == EXIT_OK and result.unconfirmed_runs else code)


@app.command("sync")
def sync_command(
    failed: Annotated[
        bool, typer.Option("--failed", help="Visa resurserna som servern avvisat (döda brev).")
    ] = False,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Lägg de avvisade i kö igen och skicka.")
    ] = False,
    batch_size: BatchSizeOption = None,
    workers: WorkersOption = DEFAULT_WORKERS,
    verify_all: Annotated[
        bool,
        typer.Option(
            "--verify",
            help="Jämför hela utkorgen med servern och skicka igen det som saknas där.",
        ),
    ] = False,
) -> None:
    """Skicka det som väntar i utkorgen till FHIR-servern (återupptar en avbruten import)."""
    settings, sync_settings = _settings(batch_size, workers)
    out = Console()
    try:
        outbox = open_outbox(outbox_url(settings))
    except OutboxOpenError as error:
        out.print(f"[bold red]Synkningen kunde inte starta:[/] {error}")
        raise typer.Exit(EXIT_FAILED) from None
    if failed:
        _dead_letters(outbox, out)
        return
    if retry_failed:
        out.print(f"{thousands(outbox.retry_dead())} avvisade resurser lagda i kö igen.")
    tally = Tally(metrics_hooks())
    try:
        with _client(settings, tally) as client:
            # With --verify the bulk comparison replaces the spot check.
            check = checked_server(outbox, client, spot_check=not verify_all)
            if verify_all:
                _print_verify(verify(outbox, client), out)
            stop = SyncEngine(outbox, client, tally, sync_settings).drain()
            counted_run(outbox, client, tally, stop)
    except FhirError as error:
        out.print(f"[bold red]Synkningen misslyckades:[/] {error}")
        raise typer.Exit(EXIT_FAILED) from None
    open_left = outbox.open_count()
    _summary(tally, open_left, stop, out, check)
    raise typer.Exit(_exit_code(tally, open_left, stop))


def _print_verify(result: VerifyResult, console: Console) -> None:
    table = Table(title="Jämförelse med servern", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("Resurser kontrollerade", thousands(result.checked))
    table.add_row("Saknas på servern", thousands(result.missing))
    table.add_row("Äldre version på servern", thousands(result.stale))
    for resource_type, count in sorted(result.by_type.items()):
        table.add_row(f"  varav {resource_type}", thousands(count))
    table.add_row("Skickas igen", thousands(result.requeued))
    console.print(table)


def _dead_letters(outbox: Outbox, console: Console) -> None:
    letters = outbox.dead_letters()
    if not letters:
        console.print("Inga avvisade resurser.")
        return
    console.print(f"[bold]Avvisade av FHIR-servern: {thousands(len(letters))}[/]")
    for letter in letters:
        key = mask(letter.match_url.partition("?")[2])
        # Not a table: the server's messages are long and must stay whole (and greppable).
        console.print(
            f"{letter.resource_type} {key} (försök {letter.attempts}, {letter.updated_at})",
            markup=False,
            soft_wrap=True,
        )
        console.print(f"  {mask(letter.error)}", markup=False, soft_wrap=True)
    console.print("Rätta källdata och importera igen, eller försök på nytt: sync --retry-failed")
