"""The common layer of the CSV formats: column maps, header matching, rows, repeats.

A format (`CsvFormat`) declares its columns and a `build` function that turns one `CsvRow`
into a record; `CsvFormat.read` does the rest, streaming row by row:

- encoding and binary/empty detection (`textfile`); a row on a line with a byte that is not
  valid in the file's encoding is rejected alone, naming the byte;
- delimiter `;`, `,` or tab from the header line (the most frequent of them; `;` wins a tie);
- header names matched against `mappings/columns/<kind>.json` case-insensitively, with blanks
  trimmed and inner runs of blanks folded; unknown headers are ignored; a required column that
  is missing is a file-level error naming it and the headers found;
- blank rows (and rows of empty cells, as Excel leaves them) are skipped; a row with fewer
  cells than the header, or more non-empty ones, is rejected whole;
- a row repeating an earlier row cell for cell is skipped and reported as a repeat
  (`RowError.duplicate_of`); an `IdentityRule` rejects a row whose identity (e.g. the
  Meddelande-id) an earlier row had with other values.
"""

from __future__ import annotations

import csv
import itertools
import json
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from adapter import personnummer
from adapter.domain import PersonId, Record, RowError, SourceRef
from adapter.sources.reading import (
    Decoded,
    Outcome,
    Reading,
    RowResult,
    SourceKind,
    repeat,
    shown,
)
from adapter.sources.repeats import RepeatCheck, digest
from adapter.sources.textfile import (
    FileProblem,
    Source,
    invalid_reason,
    open_text,
    source_name,
)
from adapter.sources.values import InvalidValue

T = TypeVar("T")
R = TypeVar("R", bound=Record)

_DELIMITERS = (";", "\t", ",")  # in order of preference on a tie
_DELIMITER_NAMES = {";": "semikolon", "\t": "tabb", ",": "komma"}


@dataclass(frozen=True, slots=True)
class Column:
    """A logical field of a format. Required: the column must exist and every row fill it."""

    field: str
    required: bool = True


@dataclass(frozen=True, slots=True)
class IdentityRule(Generic[R]):
    """What identifies a record within one file; the same identity with other values is an
    error. `reason` is Swedish with `{line}` for the earlier line."""

    field: str
    key: Callable[[R], str]
    reason: str


class ColumnMapError(ValueError):
    """A column map in mappings/columns/ is broken: a setup fault, not a data fault."""


class _ColumnMapFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = ""
    columns: dict[str, list[str]]


def header_key(name: str) -> str:
    """How headers are compared: Unicode NFC, blanks trimmed and folded, case-insensitive."""
    return " ".join(unicodedata.normalize("NFC", name).split()).casefold()


def load_column_map(
    kind: SourceKind, columns: Sequence[Column], mappings_dir: Path
) -> dict[str, tuple[str, ...]]:
    """Field -> accepted header names, from `<mappings_dir>/columns/<kind>.json`.

    The JSON is `{"description": "...", "columns": {"<field>": ["Header", "Other header"]}}`;
    every field of the format must be listed, with at least one header name."""
    path = mappings_dir / "columns" / f"{kind}.json"
    try:
        parsed = _ColumnMapFile.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise ColumnMapError(f"Kolumnkartan {path} kan inte läsas ({exc.strerror})") from None
    except ValidationError as exc:
        raise ColumnMapError(f"Kolumnkartan {path} är felaktig: {exc}") from None
    known = {c.field for c in columns}
    unknown = sorted(set(parsed.columns) - known)
    missing = sorted(f for f in known if not parsed.columns.get(f))
    if unknown or missing:
        raise ColumnMapError(
            f"Kolumnkartan {path}: okända fält {unknown or '-'}, fält utan rubriker "
            f"{missing or '-'}; fälten är {sorted(known)}"
        )
    owner: dict[str, str] = {}
    for field, headers in parsed.columns.items():
        for header in headers:
            other = owner.setdefault(header_key(header), field)
            if other != field:
                raise ColumnMapError(
                    f"Kolumnkartan {path}: rubriken {json.dumps(header, ensure_ascii=False)} "
                    f"står både under {other} och {field}"
                )
    return {field: tuple(headers) for field, headers in parsed.columns.items()}


def detect_delimiter(header_line: str) -> str:
    counts = {d: header_line.count(d) for d in _DELIMITERS}
    return max(_DELIMITERS, key=lambda d: counts[d])  # max keeps the first on a tie


class CsvRow:
    """One data row, by logical field. Parsing methods record a `RowError` per bad cell and
    return None for it, so one row reports every bad cell at once."""

    __slots__ = ("_cells", "_headers", "errors", "file", "line")

    def __init__(self, file: str, line: int, cells: Mapping[str, str], headers: Mapping[str, str]):
        self.file = file
        self.line = line
        self._cells = cells
        self._headers = headers  # field -> the header as written in this file
        self.errors: list[RowError] = []

    @property
    def source(self) -> SourceRef:
        return SourceRef(self.file, self.line)

    def text(self, field: str) -> str:
        """The stripped cell, "" if blank or the column is absent."""
        return self._cells.get(field, "")

    def required(self, field: str, parse: Callable[[str], T]) -> T | None:
        raw = self._cells.get(field, "")
        if not raw:
            self.fail(field, "Värde saknas")
            return None
        return self._parse(field, raw, parse)

    def optional(self, field: str, parse: Callable[[str], T]) -> T | None:
        raw = self._cells.get(field, "")
        return self._parse(field, raw, parse) if raw else None

    def person(self, field: str, reference: date | None) -> PersonId | None:
        """The personnummer; `reference` None (the row's date is bad) still checks its form."""
        raw = self.text(field)
        if not raw:
            self.fail(field, "Värde saknas")
            return None
        try:
            if reference is None:
                personnummer.check(raw)
                return None
            return personnummer.parse(raw, reference)
        except personnummer.PersonnummerError as exc:
            self.fail(field, exc.reason, personnummer.mask(raw, whole=True))
            return None

    def fail(self, field: str, reason: str, value: str | None = None) -> None:
        column = self._headers.get(field, field)
        self.errors.append(RowError(self.file, self.line, column, reason, value))

    def _parse(self, field: str, raw: str, parse: Callable[[str], T]) -> T | None:
        try:
            return parse(raw)
        except InvalidValue as exc:
            self.fail(field, str(exc), shown(raw))
            return None


@dataclass(frozen=True, slots=True)
class CsvFormat(Generic[R]):
    """One CSV source format: its columns, how a row becomes a record, what identifies one."""

    kind: SourceKind
    columns: Sequence[Column]
    build: Callable[[CsvRow], R | None]
    identity: IdentityRule[R] | None = None

    def read(self, source: Source, *, mappings_dir: Path, name: str | None = None) -> Reading:
        """A `Reading` of one source. The column map is loaded now from `mappings_dir`
        (`ColumnMapError` at once); the file is read lazily during iteration."""
        column_map = load_column_map(self.kind, self.columns, mappings_dir)
        file = source_name(source, name)
        return Reading(file, self.kind, _outcomes(source, file, self, column_map))


@dataclass(frozen=True, slots=True)
class _Layout:
    """What the header told about one file."""

    file: str
    width: int  # cells in the header
    delimiter: str
    fields: Mapping[int, str]  # cell index -> field
    headers: Mapping[str, str]  # field -> header as written in the file


def _outcomes(
    source: Source, file: str, fmt: CsvFormat[R], column_map: Mapping[str, Sequence[str]]
) -> Iterator[Outcome]:
    start = 1  # the line the next row starts on
    try:
        with open_text(source) as text, RepeatCheck() as repeats:
            yield Decoded(text.encoding)
            # Header: the first non-blank line, which also tells the delimiter.
            header_line = ""
            for header_line in text:
                if header_line.strip():
                    break
                start += 1
            skipped = start - 1
            delimiter = detect_delimiter(header_line)
            reader = csv.reader(itertools.chain([header_line], text), delimiter=delimiter)
            header = next(reader)
            fields = _match_header(file, start, header, fmt.columns, column_map)
            invalid = text.invalid_in(1, skipped + reader.line_num)
            if isinstance(fields, RowError):
                if invalid is not None:
                    hint = invalid_reason(invalid[1], text.encoding)
                    fields = replace(fields, reason=f"{fields.reason} {hint}")
                yield fields
                return
            headers = {field: header[i].strip() for i, field in fields.items()}
            layout = _Layout(file, len(header), delimiter, fields, headers)
            start = skipped + reader.line_num + 1
            for cells in reader:
                line, start = start, skipped + reader.line_num + 1
                cells = [c.strip() for c in cells]
                invalid = text.invalid_in(line, start - 1)
                if invalid is not None:  # the row alone: its values cannot be trusted
                    reason = invalid_reason(invalid[1], text.encoding)
                    yield RowResult(line, None, (RowError(file, invalid[0], None, reason),))
                elif any(cells):
                    yield _row(layout, (line, start - 1), cells, repeats, fmt)
    except FileProblem as exc:
        yield RowError(file, exc.line, None, exc.reason)
    except csv.Error:
        # The parser's state is lost (e.g. a quote never closed): nothing after is trustworthy.
        reason = (
            "Raden kan inte tolkas (ett citattecken som aldrig avslutas?); "
            "resten av filen är inte läst"
        )
        yield RowError(file, start, None, reason)


def _match_header(
    file: str,
    line: int,
    header: Sequence[str],
    columns: Sequence[Column],
    column_map: Mapping[str, Sequence[str]],
) -> dict[int, str] | RowError:
    """Cell index -> field, or the file-level error (missing or doubled columns)."""
    wanted = {header_key(h): field for field, hs in column_map.items() for h in hs}
    fields: dict[int, str] = {}
    for i, cell in enumerate(header):
        field = wanted.get(header_key(cell))
        if field is None:
            continue
        if field in fields.values():
            return RowError(file, line, None, f"Kolumnen {cell.strip()!r} finns flera gånger")
        fields[i] = field
    missing = [
        column_map[c.field][0] for c in columns if c.required and c.field not in fields.values()
    ]
    if not missing:
        return fields
    found = ", ".join(shown(h.strip()) for h in header if h.strip()) or "(inga)"
    hint = "" if fields else " Saknar filen rubrikrad, eller är avgränsaren fel?"
    return RowError(
        file, line, None, f"Kolumner saknas: {', '.join(missing)}. Rubriker i filen: {found}.{hint}"
    )


def _row(
    layout: _Layout,
    lines: tuple[int, int],
    cells: list[str],
    repeats: RepeatCheck,
    fmt: CsvFormat[R],
) -> RowResult:
    """One row, found on `lines` (first, last: a quoted value may hold line breaks)."""
    line, last = lines
    width = layout.width
    values = {f: cells[i] for i, f in layout.fields.items() if i < len(cells)}
    row = CsvRow(layout.file, line, values, layout.headers)
    record: R | None = None
    if len(cells) < width or any(cells[width:]):
        reason = (
            f"Raden har {len(cells)} fält men rubriken {width} "
            f"(avgränsare: {_DELIMITER_NAMES[layout.delimiter]}; ett värde som innehåller "
            "avgränsaren måste stå inom citattecken)"
        )
        if last > line:
            reason += f"; raden når till rad {last}: ett citattecken som inte avslutas?"
        row.errors.append(RowError(layout.file, line, None, reason))
    else:
        record = fmt.build(row)
    identity = fmt.identity if record is not None and not row.errors else None
    key = identity.key(record) if identity is not None and record is not None else None
    earlier = repeats.earlier(key, digest("\x1f".join(cells)), line)
    if earlier is not None and earlier.same_content:
        return repeat(layout.file, line, earlier.line)
    if earlier is not None and identity is not None:
        reason = identity.reason.format(line=earlier.line)
        row.fail(identity.field, reason, shown(row.text(identity.field)))
    if record is None or row.errors:
        return RowResult(line, None, tuple(row.errors))
    return RowResult(line, record)
