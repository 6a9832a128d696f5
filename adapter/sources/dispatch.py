"""`read_file`: pick the reader by the kind given or by the file name's prefix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adapter.domain import RowError
from adapter.sources import discharges, events, prea60
from adapter.sources.csvfile import CsvFormat
from adapter.sources.plans import read_plans
from adapter.sources.reading import Reading, SourceKind
from adapter.sources.textfile import Source, source_name

_CSV_FORMATS: dict[SourceKind, CsvFormat[Any]] = {
    SourceKind.PREA60: prea60.FORMAT,
    SourceKind.EVENTS: events.FORMAT,
    SourceKind.DISCHARGES: discharges.FORMAT,
}


def kind_of(path: Path | str) -> SourceKind | None:
    """The kind a file name announces: `prea60*`, `plans*`, `events*`, `discharges*`."""
    stem = Path(path).name.casefold()
    return next((kind for kind in SourceKind if stem.startswith(kind.value)), None)


def read_file(
    source: Source,
    kind: SourceKind | str | None = None,
    *,
    mappings_dir: Path,
    name: str | None = None,
) -> Reading:
    """Read any of the four formats, the column maps from `mappings_dir`. Without `kind`, the
    file name decides; a name that says nothing gives a reading with one file-level error."""
    file = source_name(source, name)
    resolved = SourceKind(kind) if kind is not None else kind_of(file)
    if resolved is None:
        prefixes = ", ".join(k.value for k in SourceKind)
        reason = f"Okänd filtyp: filnamnet ska börja med {prefixes} (eller ange typen)"
        return Reading(file, None, [RowError(file, 0, None, reason)])
    if resolved is SourceKind.PLANS:
        return read_plans(source, name=name)
    return _CSV_FORMATS[resolved].read(source, mappings_dir=mappings_dir, name=name)
