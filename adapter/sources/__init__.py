"""Readers: source files and API bodies -> domain records, plus row errors.

API (all lazy and streaming: a 50 MB file is read row by row in flat memory)::

    read_file(source, kind=None, *, mappings_dir, name=None) -> Reading
    read_prea60(source, *, mappings_dir, name=None) -> Reading
    read_events(source, *, mappings_dir, name=None) -> Reading
    read_discharges(source, *, mappings_dir, name=None) -> Reading
    read_plans(source, *, name=None) -> Reading                  # JSON Lines file
    read_plan_lines(lines: Iterable[str], *, name) -> Reading     # e.g. an API body
    read_plan_objects(objects: Iterable[tuple[int, Any]], *, name) -> Reading

- `source` is a path or a seekable binary stream (an upload); `name` is what error reports
  call it (default: the path or the stream's name). `read_file` takes the kind from the file
  name's prefix (`prea60`, `plans`, `events`, `discharges`) unless `kind` is given.
- A `Reading` is iterated once. It yields `Record | RowError` in file order: for each data
  row either its record or its errors (every bad cell of the row), never both. A file-level
  problem (missing, binary, empty, UTF-16, missing or doubled columns, a kind the file name
  does not tell, a field past the csv module's size limit) is a `RowError` with line 0 (before
  any line) or the header's line and column None; nothing follows it. An unknown `kind`
  string is the caller's error: ValueError. `reading.summary` (`ReadSummary`: rows,
  accepted, errors, the encoding a file was read in) is complete once the iteration ends;
  `reading.records()` yields the records alone.
- A line with a byte invalid in the file's encoding, or JSON nested deeper than
  `adapter.safejson.MAX_DEPTH`, is a row error on its line; the other lines are read
  (`textfile` tells how the encoding is chosen).
- A row that repeats an earlier row exactly is skipped and reported as a `RowError` with
  `duplicate_of` = the earlier line: a notice, nothing is lost. The same identity with other
  values (a Meddelande-id, a patient in one Prea60 run and unit, a plan version) is an error.
- `RowError.column` is the header as written in the file (CSV) or the JSON path (plans);
  `reason` is Swedish; `value` is the offending value with any personnummer masked.
- CSV column names come from `mappings/columns/<kind>.json` (`mappings_dir`, passed by
  the caller): `{"description": "...", "columns": {"<field>": ["Header", "Alias", ...]}}`. A broken
  map raises `ColumnMapError` when the reader is created (a setup fault, not a data fault).
- A personnummer's century is counted back from the row's own date (Beräkningsdatum, Datum,
  Utskrivningsklar, a plan's `updated`).
- Plans: every version is yielded; that a later version replaces an earlier one is mapping's
  business. Each format's rules are in its module's docstring.
"""

from adapter.sources.csvfile import ColumnMapError
from adapter.sources.discharges import read_discharges
from adapter.sources.dispatch import kind_of, read_file
from adapter.sources.events import read_events
from adapter.sources.plans import PlanIn, read_plan_lines, read_plan_objects, read_plans
from adapter.sources.prea60 import read_prea60
from adapter.sources.reading import Reading, SourceKind

__all__ = [
    "ColumnMapError",
    "PlanIn",
    "Reading",
    "SourceKind",
    "kind_of",
    "read_discharges",
    "read_events",
    "read_file",
    "read_plan_lines",
    "read_plan_objects",
    "read_plans",
    "read_prea60",
]
