"""What the follow-up loader read: per patient their facts and server Tasks (pure, no I/O).

The read models (adapter/worklist) and the reconciler read these; `adapter.followup.load`
builds them from the server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from adapter.domain import PersonId
from adapter.followup.facts import PatientFacts
from adapter.followup.rules import OpenTask
from adapter.followup.state import PatientState
from adapter.followup.tasks import ServerTask


def _age(task: ServerTask) -> tuple[str, int, str]:
    """Oldest first: authored earlier, else the lower server id."""
    return (str(task.resource.get("authoredOn", "")), len(task.id), task.id)


@dataclass(slots=True)
class LoadedPatient:
    """One patient: `reference` to their Patient (the oldest, if the server holds duplicates)."""

    reference: str
    facts: PatientFacts

    @property
    def state(self) -> PatientState:
        return self.facts.state

    @property
    def person(self) -> PersonId:
        return self.facts.state.patient

    @property
    def tasks(self) -> list[ServerTask]:
        return self.facts.tasks

    def open_by_key(self) -> dict[str, ServerTask]:
        """The open Task of each key (the oldest, if a key has several)."""
        chosen: dict[str, ServerTask] = {}
        for task in sorted((t for t in self.tasks if t.is_open), key=_age):
            chosen.setdefault(task.key, task)
        return chosen

    def duplicate_tasks(self) -> list[ServerTask]:
        """Open Tasks whose key already has an older open Task."""
        kept = {t.id for t in self.open_by_key().values()}
        return [t for t in self.tasks if t.is_open and t.id not in kept]

    def open_tasks(self) -> list[OpenTask]:
        return [
            task.open_task(self.facts.focus.focus(task.focus_reference))
            for task in self.open_by_key().values()
        ]

    def closed_keys(self) -> set[str]:
        return {t.key for t in self.tasks if not t.is_open}


@dataclass(slots=True)
class LoadedStates:
    """What `load_states` read. `unit_runs`: the runs per unit that decide the loaded patients'
    risk-group streaks on `as_of` (`_absent_runs`); `newest_runs`: each scanned unit's newest."""

    as_of: date
    patients: dict[PersonId, LoadedPatient] = field(default_factory=dict)
    unit_runs: dict[str, tuple[date, ...]] = field(default_factory=dict)
    newest_runs: dict[str, date] = field(default_factory=dict)
    without_person: int = 0  # Patients without personnummer/samordningsnummer: not evaluated

    def states(self) -> dict[PersonId, PatientState]:
        return {person: loaded.state for person, loaded in self.patients.items()}


__all__ = ["LoadedPatient", "LoadedStates"]
