"""The worklist rows a follow-up scan makes from the states it reads anyway.

Every scan journals its units, and the units' lists were then rebuilt from a second full load
from FHIR: at 100 000 patients that load took as long as the scan (tests/benchmarks/README.md).
Instead the scan hands each patient it read to `ScanRows`: a patient whose Tasks the scan does
not write gets their rows at once; the others are read again after the scan (their Tasks
changed). `Worklists.seed` (worklists.py) stores the result, or leaves the unit to the usual
rebuild when anything else was journalled while the scan ran.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from adapter.followup.loaded import LoadedPatient
from adapter.followup.rules import RuleSet
from adapter.worklist import WorklistRow
from adapter.worklist.rows import worklist_row


@dataclass(slots=True)
class ScanRows:
    units: tuple[str, ...]  # the units whose lists the scan makes
    as_of: date
    rules: RuleSet
    start_seq: int  # the journal's last entry before the scan read anything
    rows: dict[str, list[WorklistRow]] = field(default_factory=lambda: defaultdict(list))
    changed: set[str] = field(default_factory=set)  # Patients whose Tasks the scan writes

    def seen(self, patient: LoadedPatient, writes: bool) -> None:
        """A patient the scan read; `writes`: the scan plans to write their Tasks."""
        if writes:
            self.changed.add(patient.reference)
            return
        for unit in self.units:
            row = worklist_row(patient, unit, self.as_of, self.rules, None)
            if row is not None:
                self.rows[unit].append(row)
