"""Row errors of `import` and `map`: a CSV report, the first few shown. Readers mask what they
report; every text is masked again here (`personnummer.mask`), whatever put it there."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TextIO

from rich.console import Console

from adapter.domain import RowError
from adapter.personnummer import mask

_REPORT_COLUMNS = ("Fil", "Rad", "Kolumn", "Orsak", "Värde", "Upprepar rad")


def thousands(value: int) -> str:
    """12 345: Swedish digit grouping."""
    return f"{value:,}".replace(",", " ")


class ErrorReport:
    """Row errors streamed to a CSV report (`;`, UTF-8 with BOM for Excel); the first few kept."""

    def __init__(self, path: Path, keep: int) -> None:
        self.path = path
        self.keep = keep
        self.first: list[RowError] = []
        self.count = 0
        self._file: TextIO | None = None
        self._writer: csv.DictWriter[str] | None = None

    def add(self, error: RowError) -> None:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("w", encoding="utf-8-sig", newline="")
            self._writer = csv.DictWriter(self._file, _REPORT_COLUMNS, delimiter=";")
            self._writer.writeheader()
        self.count += 1
        if len(self.first) < self.keep:
            self.first.append(error)
        row = (
            mask(error.file),
            error.line,
            mask(error.column or ""),
            mask(error.reason),
            mask(error.value or ""),
            error.duplicate_of or "",
        )
        self._writer.writerow(dict(zip(_REPORT_COLUMNS, row, strict=True)))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()

    def print(self, console: Console) -> None:
        """The first errors on screen, and where the report with all of them is."""
        if not self.count:
            return
        for error in self.first:
            where = f"{error.file}:{error.line}" + (f" [{error.column}]" if error.column else "")
            value = f" ({error.value})" if error.value else ""
            console.print(mask(f"{where}: {error.reason}{value}"), markup=False)
        if self.count > len(self.first):
            console.print(f"… och {thousands(self.count - len(self.first))} till.")
        console.print(f"Alla radfel: {self.path}")
