"""The import's gate for Prea60 runs: before a file is written, each run in it is checked against
the server (`runs.check_incoming`); the rows of a run the guard does not trust are written
unconfirmed (`mapping.prea60.as_unconfirmed`).

A run the server cannot be asked about (it does not answer) is written unconfirmed: the outbox
keeps the import durable, and a person confirms the run once the server is back.
The files are read twice (once here, counting rows and keeping the risk group per run, then by
the import), so memory stays flat in the files' size: the risk groups wait on disk
(`incoming.py`).
A row's outbox digest carries the verdict: the same row, once trusted, is written again.
Without the SearchParameters of profiles/ the server cannot be asked: the runs are then written
as they are and the import says so (the follow-up engine refuses to run on such a server).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from adapter.domain import Prea60Row, Record
from adapter.fhirclient import FhirClient, FhirError
from adapter.followup.params import RULES_FILE, RuleParams, load_rule_params
from adapter.followup.scope import missing_search_params
from adapter.mapping import MappedResource
from adapter.mapping.prea60 import as_unconfirmed
from adapter.prea60.guard import RunCheck
from adapter.prea60.incoming import IncomingRuns
from adapter.prea60.runs import check_incoming
from adapter.sources import SourceKind, kind_of, read_file


@dataclass(slots=True)
class RunGate:
    """The verdicts on the runs of one import, and how they change what is written."""

    checks: list[RunCheck] = field(default_factory=list)
    unchecked: str | None = None  # why the runs could not be checked (Swedish)
    _held: frozenset[tuple[str, date]] = frozenset()

    def __post_init__(self) -> None:
        self._held = frozenset((c.unit_hsa_id, c.run_date) for c in self.checks if not c.trusted)

    @property
    def unconfirmed(self) -> list[RunCheck]:
        return [c for c in self.checks if not c.trusted]

    def holds(self, record: Record) -> bool:
        return isinstance(record, Prea60Row) and (record.unit_hsa_id, record.run_date) in self._held

    def resources(self, record: Record, resources: list[MappedResource]) -> list[MappedResource]:
        return as_unconfirmed(resources) if self.holds(record) else resources

    def digest(self, record: Record, digest: str) -> str:
        if not self.holds(record):
            return digest
        return hashlib.sha256(f"{digest}:unconfirmed".encode()).hexdigest()


def _prea60_rows(paths: Sequence[Path], mappings_dir: Path) -> Iterator[Prea60Row]:
    for path in paths:
        reading = read_file(path, SourceKind.PREA60, mappings_dir=mappings_dir)
        yield from (r for r in reading.records() if isinstance(r, Prea60Row))


def run_gate(
    client: FhirClient,
    paths: Sequence[Path],
    kind: SourceKind | str | None,
    mappings_dir: Path,
) -> RunGate:
    """Check the Prea60 runs in `paths` (other files pass through)."""
    resolved = SourceKind(kind) if kind is not None else None
    lists = [p for p in paths if (resolved or kind_of(p)) is SourceKind.PREA60]
    if not lists:
        return RunGate()
    params = load_rule_params(mappings_dir / RULES_FILE)
    with IncomingRuns() as runs:
        runs.add(_prea60_rows(lists, mappings_dir), params.risk_group.threshold_percent)
        return _checked(client, runs, params) if runs else RunGate()


def _checked(client: FhirClient, runs: IncomingRuns, params: RuleParams) -> RunGate:
    try:
        missing = missing_search_params(client)
        if missing:
            return RunGate(
                unchecked=f"Prea60-körningarna kunde inte kontrolleras och skrevs som bekräftade: "
                f"sökparametern {', '.join(missing)} saknas på FHIR-servern (kör `sip-fhir "
                "profiles install`)."
            )
        return RunGate(check_incoming(client, runs, params))
    except FhirError as error:  # cannot compare: held until a person confirms (fail closed)
        reason = f"körningen kunde inte jämföras med förra körningen ({error.message})"
        return RunGate(
            [
                RunCheck(unit, day, rows, reasons=(reason,))
                for (unit, day), rows in runs.rows.items()
            ]
        )
