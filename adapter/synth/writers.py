"""Streaming writers for the four source formats (/work/shared/formats/README.md).

Each file is written row by row as the generator walks the patients, so memory stays flat.
The encodings and delimiters vary the way real exports do: Diver's Prea60 in Windows-1252
with `;` and CRLF, one unit's own export in UTF-8 with BOM and `,`, the events in UTF-8 with
BOM, the discharge notices in plain UTF-8.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import IO, Any

PREA60_HEADER = (
    "Personnummer",
    "Namn",
    "Risk (%)",
    "Beräkningsdatum",
    "Listningsenhet HSA-id",
    "Listningsenhet",
    "Fast läkarkontakt HSA-id",
)
EVENTS_HEADER = (
    "Personnummer",
    "Datum",
    "Åtgärdskod",
    "Utförande enhet HSA-id",
    "Kontakttyp",
    "Plan-id",
)
DISCHARGES_HEADER = (
    "Meddelande-id",
    "Personnummer",
    "Utskrivningsklar",
    "Sjukhus",
    "Avdelning",
    "Insatser kommun",
    "Insatser region",
    "Samtycke SIP",
)
PLANS_FILE = "plans.jsonl"
EVENTS_FILE = "events.csv"
DISCHARGES_FILE = "discharges.csv"


@dataclass(frozen=True, slots=True)
class CsvFormat:
    encoding: str
    delimiter: str
    line_end: str
    compact_dates: bool = False  # YYYYMMDD instead of YYYY-MM-DD
    dashed_ids: bool = True  # personnummer as YYYYMMDD-NNNN (else YYYYMMDDNNNN)

    def day(self, value: date) -> str:
        return value.strftime("%Y%m%d") if self.compact_dates else value.isoformat()


DIVER = CsvFormat("cp1252", ";", "\r\n")
OWN_EXPORT = CsvFormat("utf-8-sig", ",", "\n", compact_dates=True, dashed_ids=False)
EVENTS = CsvFormat("utf-8-sig", ";", "\n")
DISCHARGES = CsvFormat("utf-8", ";", "\n")


def decimal_comma(value: float) -> str:
    return f"{value:.1f}".replace(".", ",")


class CsvSink:
    """One CSV file being written; counts its data rows."""

    def __init__(self, path: Path, fmt: CsvFormat, header: Sequence[str]) -> None:
        self.path, self.format, self.rows = path, fmt, 0
        # newline="" so the csv module's own line ends are written unchanged
        self._file: IO[str] = path.open("w", encoding=fmt.encoding, newline="")
        self._writer = csv.writer(self._file, delimiter=fmt.delimiter, lineterminator=fmt.line_end)
        self._writer.writerow(header)

    def write(self, row: Sequence[str]) -> None:
        self._writer.writerow(row)
        self.rows += 1

    def close(self) -> None:
        self._file.close()


class JsonLinesSink:
    def __init__(self, path: Path) -> None:
        self.path, self.rows = path, 0
        self._file: IO[str] = path.open("w", encoding="utf-8", newline="\n")

    def write(self, obj: dict[str, Any]) -> None:
        self._file.write(json.dumps(obj, ensure_ascii=False))
        self._file.write("\n")
        self.rows += 1

    def close(self) -> None:
        self._file.close()


def prea60_name(run: date, tag: str | None = None) -> str:
    return f"prea60-{run.isoformat()}-{tag}.csv" if tag else f"prea60-{run.isoformat()}.csv"
