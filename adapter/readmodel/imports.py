"""What an import touched, for the read model's journal: the unit of a Prea60 list (a new run
moves the whole risk group), the patient of a plan, an event or a discharge notice."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from adapter.domain import Prea60Row, Record, RowError
from adapter.readmodel.store import Touched

Admission = Callable[[Record], RowError | None]


@dataclass(slots=True)
class ImportTouches:
    units: set[str] = field(default_factory=set)
    persons: set[str] = field(default_factory=set)

    def note(self, record: Record) -> None:
        if isinstance(record, Prea60Row):
            self.units.add(record.unit_hsa_id)
        else:
            self.persons.add(record.patient.digits)

    def admission(self, admit: Admission | None = None) -> Admission:
        """`admit` (or admit all) that notes each record it lets through."""

        def noting(record: Record) -> RowError | None:
            refused = admit(record) if admit is not None else None
            if refused is None:
                self.note(record)
            return refused

        return noting

    def touched(self) -> Touched:
        return Touched(units=frozenset(self.units), persons=frozenset(self.persons))
