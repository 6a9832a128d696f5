"""`Reading`: what every reader returns. Records and row errors in file order, plus a summary."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum

from adapter.domain import ReadSummary, Record, RowError
from adapter.personnummer import mask

_MAX_SHOWN = 80


class SourceKind(StrEnum):
    """The four source formats; also the file name prefix and the column map's name."""

    PREA60 = "prea60"
    PLANS = "plans"
    EVENTS = "events"
    DISCHARGES = "discharges"


@dataclass(frozen=True, slots=True)
class RowResult:
    """One data row: its record, or the reasons it was rejected (or skipped as a repeat)."""

    line: int
    record: Record | None
    errors: tuple[RowError, ...] = ()


@dataclass(frozen=True, slots=True)
class Decoded:
    """The encoding the file is read in (`textfile`: utf-8, utf-8-sig, cp1252); comes first."""

    encoding: str


# A bare RowError is a file-level problem: it belongs to no row.
Outcome = RowResult | RowError | Decoded


class Reading(Iterable[Record | RowError]):
    """Iterate once: yields each `RowError` and `Record` in file order, and keeps `summary`
    (rows read, records accepted, every error, the encoding) up to date as it goes. Lazy:
    nothing is read before iteration starts, and nothing is held but the current row."""

    def __init__(self, file: str, kind: SourceKind | None, outcomes: Iterable[Outcome]) -> None:
        self.file = file
        self.kind = kind
        self.summary = ReadSummary(file=file)
        self._outcomes: Iterable[Outcome] | None = outcomes

    def __iter__(self) -> Iterator[Record | RowError]:
        outcomes, self._outcomes = self._outcomes, None
        if outcomes is None:
            raise RuntimeError(f"{self.file} has already been read")
        summary = self.summary
        for outcome in outcomes:
            if isinstance(outcome, Decoded):
                summary.encoding = outcome.encoding
                continue
            if isinstance(outcome, RowError):
                summary.errors.append(outcome)
                yield outcome
                continue
            summary.rows += 1
            summary.errors.extend(outcome.errors)
            yield from outcome.errors
            if outcome.record is not None:
                summary.accepted += 1
                yield outcome.record

    def records(self) -> Iterator[Record]:
        """Only the records; the errors are still collected in `summary.errors`."""
        for item in self:
            if not isinstance(item, RowError):
                yield item


def repeat(file: str, line: int, earlier: int) -> RowResult:
    """A row that repeats an earlier one exactly: skipped, and said so (nothing is lost)."""
    reason = f"Upprepning av rad {earlier}: hoppas över"
    return RowResult(line, None, (RowError(file, line, None, reason, duplicate_of=earlier),))


def shown(raw: str) -> str:
    """A raw value as it may appear in an error report: personnummer masked, length capped."""
    text = mask(raw)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 1] + "…"
