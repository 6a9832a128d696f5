"""`sip-fhir map FILE... --out DIR`: source files → FHIR transaction Bundles on disk, no server.

One Bundle per input file (`<name>.bundle.json`) and the rejected rows in `radfel.csv`, so a region
can see what an import would write before it writes anything. Exit codes: 0 every row mapped;
2 some rows rejected; 1 a file or the mappings could not be used.

Streaming: a file is read, mapped and written in Bundles of at most `--bundle-size` resources
(plus the last record's), each written as soon as it is full, so memory stays flat whatever the
file's size. A larger file gives `<name>.bundle.json`, `<name>.2.bundle.json`, ... in order: posted
in that order they write what one Bundle would (a plan version in a later Bundle supersedes an
older one in an earlier Bundle; an older version after a newer one is dropped, as within a Bundle).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from adapter.cli.app import app
from adapter.cli.rowerrors import ErrorReport
from adapter.domain import Plan, Record, RowError
from adapter.mapping import (
    MappedResource,
    MappingError,
    Mappings,
    MappingsError,
    load_mappings,
    map_record,
    transaction_bundle,
)
from adapter.mapping.r4 import check_structure
from adapter.personnummer import mask
from adapter.settings import get_settings
from adapter.sources import ColumnMapError, SourceKind, read_file
from adapter.sources.textfile import encoding_name

EXIT_OK, EXIT_FAILED, EXIT_REJECTED = 0, 1, 2
REPORT_NAME = "radfel.csv"
SUFFIX = ".bundle.json"
BUNDLE_SIZE = 5000  # resources per Bundle file: ~10 MB of JSON, a few tens of MB while built


@dataclass(slots=True)
class FileResult:
    name: str
    rows: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    older_versions: int = 0
    failed: bool = False  # the file as a whole could not be read
    encoding: str | None = None  # how the file was decoded (None: not read as text)
    resources: Counter[str] = field(default_factory=Counter)
    bundle_paths: list[Path] = field(default_factory=list)


class _Collector:
    """Resources in record order, one Bundle's worth at a time; of several versions of one plan
    only the newest is kept (within a Bundle; across Bundles by `written`, see the docstring)."""

    def __init__(self) -> None:
        self.by_record: dict[object, tuple[int, list[MappedResource]]] = {}
        self.size = 0  # resources added since the last `take`
        self.older = 0
        self.written: dict[str, int] = {}  # plan key -> version in an earlier Bundle

    def add(self, record: Record, resources: list[MappedResource]) -> None:
        self.size += len(resources)
        if not isinstance(record, Plan):
            self.by_record[object()] = (0, resources)
            return
        done = self.written.get(record.key)
        if done is not None and done >= record.version:
            self.older += 1  # a newer version is already in an earlier Bundle
            return
        earlier = self.by_record.get(record.key)
        if earlier is not None or done is not None:
            self.older += 1  # one of the two versions is dropped or superseded
        if earlier is None or earlier[0] < record.version:
            self.by_record[record.key] = (record.version, resources)

    def take(self) -> list[MappedResource]:
        """The resources collected since the last call (and forget them)."""
        for key, (version, _) in self.by_record.items():
            if isinstance(key, str):
                self.written[key] = version
        taken = [r for _, resources in self.by_record.values() for r in resources]
        self.by_record, self.size = {}, 0
        return taken


class BundleFiles:
    """Where one source file's Bundles go: `<name>.bundle.json`, then `<name>.2.bundle.json`, ..."""

    def __init__(self, out: Path, source: Path, taken: set[Path]) -> None:
        self.out, self.source, self.taken = out, source, taken
        self.base = ""  # <name> of the first Bundle (with -2 if another input took the name)

    def write(self, bundle: dict[str, object], number: int) -> Path:
        if number == 1:
            path = _bundle_path(self.out, self.source, self.taken)
            self.base = path.name.removesuffix(SUFFIX)
        else:
            path = _bundle_path(self.out, Path(f"{self.base}.{number}.csv"), self.taken)
        with path.open("w", encoding="utf-8") as file:
            json.dump(bundle, file, ensure_ascii=False, indent=1)
            file.write("\n")
        return path


def _map(record: Record, mappings: Mappings, check: bool) -> list[MappedResource]:
    resources = map_record(record, mappings)
    if check:
        for resource in resources:
            try:
                check_structure(resource.resource)
            except ValueError as exc:  # a mapping bug, not bad data: say so plainly
                raise MappingError(
                    f"mappningen gav ogiltig FHIR-struktur för {resource.resource_type}: {exc}"
                ) from exc
    return resources


def map_file(
    path: Path,
    kind: SourceKind | None,
    mappings: Mappings,
    mappings_dir: Path,
    report: ErrorReport,
    write: Callable[[dict[str, object], int], Path],
    check: bool = False,
    bundle_size: int = BUNDLE_SIZE,
) -> FileResult:
    """Read, map and bundle one file, `write(bundle, number)` each Bundle as soon as it is full
    (numbered from 1); row errors go to `report`. A file that cannot be read writes no Bundle;
    one whose rows were all rejected writes an empty one."""
    reading = read_file(path, kind, mappings_dir=mappings_dir)
    result = FileResult(name=str(path))
    collector = _Collector()

    def flush() -> None:
        bundle = transaction_bundle(collector.take())
        result.resources.update(e["resource"]["resourceType"] for e in bundle["entry"])
        result.bundle_paths.append(write(bundle, len(result.bundle_paths) + 1))

    for item in reading:
        if isinstance(item, RowError):
            report.add(item)
            continue
        try:
            collector.add(item, _map(item, mappings, check))
        except MappingError as error:
            result.rejected += 1
            report.add(RowError(item.source.file, item.source.line, error.field, error.reason))
            continue
        if collector.size >= bundle_size:
            flush()
    summary = reading.summary
    result.rows = summary.rows
    result.duplicates = summary.duplicates
    result.accepted = summary.accepted - result.rejected
    result.rejected += summary.rows - summary.accepted - summary.duplicates
    result.failed = summary.rows == 0 and len(summary.errors) > summary.duplicates
    result.older_versions = collector.older
    result.encoding = summary.encoding
    if collector.size or not (result.bundle_paths or result.failed):
        flush()
    return result


def _bundle_path(out: Path, source: Path, taken: set[Path]) -> Path:
    candidate = out / f"{source.stem}{SUFFIX}"
    number = 2
    while candidate in taken:  # two inputs with one name (from different folders)
        candidate = out / f"{source.stem}-{number}{SUFFIX}"
        number += 1
    taken.add(candidate)
    return candidate


def _summary(results: list[FileResult], report: ErrorReport, console: Console) -> None:
    table = Table(title="Mappning")
    for column in ("Fil", "Kodning", "Rader", "Godkända", "Avvisade", "Upprepade", "Resurser"):
        table.add_column(column, justify="left" if column in ("Fil", "Kodning") else "right")
    total: Counter[str] = Counter()
    for result in results:
        total.update(result.resources)
        table.add_row(
            Path(result.name).name + (" (kunde inte läsas)" if result.failed else ""),
            encoding_name(result.encoding),
            str(result.rows),
            str(result.accepted),
            str(result.rejected),
            str(result.duplicates),
            str(sum(result.resources.values())),
        )
    console.print(table)
    if total:
        by_type = ", ".join(f"{t} {n}" for t, n in sorted(total.items()))
        console.print(f"Resurser per typ: {by_type}")
    older = sum(r.older_versions for r in results)
    if older:
        console.print(f"Äldre planversioner som ersattes av nyare: {older}")
    for result in results:
        if result.bundle_paths:
            more = len(result.bundle_paths) - 1
            also = (
                f" (och {more} till, till och med {result.bundle_paths[-1].name})" if more else ""
            )
            console.print(f"Bundle: {result.bundle_paths[0]}{also}", highlight=False)
    report.print(console)


@app.command("map")
def map_command(
    files: Annotated[
        list[Path], typer.Argument(help="Källfiler (prea60*.csv, plans*.jsonl, events*.csv, ...).")
    ],
    out: Annotated[Path, typer.Option("--out", help="Katalog för Bundle-filerna och radfelen.")],
    kind: Annotated[
        SourceKind | None,
        typer.Option("--kind", help="Filtyp för alla filer (standard: filnamnets början)."),
    ] = None,
    check: Annotated[
        bool,
        typer.Option("--check", help="Kontrollera varje resurs mot FHIR R4-modellerna (långsamt)."),
    ] = False,
    show: Annotated[int, typer.Option("--show", min=0, help="Antal radfel att visa.")] = 20,
    bundle_size: Annotated[
        int,
        typer.Option(
            "--bundle-size",
            min=1,
            help="Högst så många resurser per Bundle-fil (en stor fil delas).",
        ),
    ] = BUNDLE_SIZE,
) -> None:
    """Mappa källfiler till FHIR-transaktioner på disk, utan att skriva till servern."""
    settings = get_settings()
    console, err = Console(), Console(stderr=True)
    missing = [path for path in files if not path.is_file()]
    if missing:
        err.print(f"[bold red]Filen finns inte:[/] {missing[0]}", highlight=False)
        raise typer.Exit(EXIT_FAILED)
    try:
        mappings = load_mappings(
            settings.mappings_dir, care_provider_hsa_id=settings.care_provider_hsa_id
        )
        out.mkdir(parents=True, exist_ok=True)
    except (MappingsError, OSError) as error:
        err.print(f"[bold red]Mappningen kunde inte starta:[/] {error}", highlight=False)
        raise typer.Exit(EXIT_FAILED) from None
    report = ErrorReport(out / REPORT_NAME, show)
    results: list[FileResult] = []
    taken: set[Path] = set()
    try:
        for path in files:
            files_of = BundleFiles(out, path, taken)
            results.append(
                map_file(
                    path,
                    kind,
                    mappings,
                    settings.mappings_dir,
                    report,
                    files_of.write,
                    check,
                    bundle_size,
                )
            )
    except (ColumnMapError, OSError) as error:
        err.print(f"[bold red]Mappningen avbröts:[/] {mask(str(error))}")
        raise typer.Exit(EXIT_FAILED) from None
    finally:
        report.close()
    _summary(results, report, console)
    if any(r.failed for r in results):
        raise typer.Exit(EXIT_FAILED)
    raise typer.Exit(EXIT_REJECTED if any(r.rejected for r in results) else EXIT_OK)
