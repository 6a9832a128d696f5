"""Is a new Prea60 run to be trusted? Pure: the run and the unit's previous confirmed run in,
the verdict with its reasons (Swedish) out.

A run is stored unconfirmed (see adapter/mapping/prea60.py) when, against the unit's previous
confirmed run, it would
- drop more than `prea60_guard.max_dropped_share` of that run's risk group (patients in the group
  then who are not in the group of the new run: absent or below the threshold), or
- have fewer rows than `prea60_guard.min_size_ratio` of that run's rows ("far smaller").
A unit's first run, and a run the server already holds as confirmed, are trusted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from adapter.followup.params import Prea60GuardParams


@dataclass(frozen=True, slots=True)
class RunFigures:
    """What the guard compares of one run: its rows and its risk group (Patient references)."""

    run_date: date
    rows: int
    group: frozenset[str]


@dataclass(frozen=True, slots=True)
class RunCheck:
    """The verdict on one run of one unit."""

    unit_hsa_id: str
    run_date: date
    rows: int
    previous: RunFigures | None = None
    dropped: int = 0  # of the previous run's risk group
    reasons: tuple[str, ...] = ()  # Swedish; empty: trusted
    already_confirmed: bool = False

    @property
    def trusted(self) -> bool:
        return not self.reasons

    def describe(self) -> str:
        """One Swedish sentence for a person: what is held back, why, and what to do."""
        if self.trusted:
            return f"Prea60-körningen {self.run_date} för {self.unit_hsa_id} är bekräftad."
        return (
            f"Prea60-körningen {self.run_date} för {self.unit_hsa_id} ({self.rows} rader) är "
            f"lagrad som obekräftad och används inte: {'; '.join(self.reasons)}. "
            "En vårdsamordnare för enheten eller en administratör bekräftar den på "
            "arbetslistan, eller med `sip-fhir prea60 confirm --unit "
            f"{self.unit_hsa_id} --run {self.run_date}` (avvisa: `sip-fhir prea60 reject`)."
        )


def _percent(share: Decimal) -> str:
    return str((share * 100).quantize(Decimal("1"), ROUND_HALF_UP))


def check_run(
    unit_hsa_id: str,
    run: RunFigures,
    previous: RunFigures | None,
    params: Prea60GuardParams,
) -> RunCheck:
    """The verdict on `run` against `previous`, the unit's newest confirmed run before it."""
    if previous is None:
        return RunCheck(unit_hsa_id, run.run_date, run.rows)
    dropped = len(previous.group - run.group)
    reasons = []
    if previous.group and Decimal(dropped) / len(previous.group) > params.max_dropped_share:
        reasons.append(
            f"{dropped} av {len(previous.group)} patienter i riskgruppen från körningen "
            f"{previous.run_date} skulle falla bort (gränsen är "
            f"{_percent(params.max_dropped_share)} %)"
        )
    if run.rows < params.min_size_ratio * previous.rows:
        reasons.append(
            f"körningen har {run.rows} rader mot {previous.rows} i körningen "
            f"{previous.run_date} (gränsen är {_percent(params.min_size_ratio)} % av den)"
        )
    return RunCheck(unit_hsa_id, run.run_date, run.rows, previous, dropped, tuple(reasons))
