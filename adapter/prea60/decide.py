"""A person's decision on an unconfirmed Prea60 run, written and audit-logged.

Who may decide (the API enforces it, adapter/api/routes/prea60.py): a vårdsamordnare of the unit
or an admin; never an integration key, the same hands that sent the run in. The CLI is run by
whoever operates the adapter's host, and logs the operating-system user.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from enum import StrEnum

from adapter.fhirclient import FhirClient
from adapter.logs import get_logger
from adapter.mapping.prea60 import RunStatus
from adapter.prea60.runs import set_run_status

_log = get_logger("adapter.prea60")


class Decision(StrEnum):
    CONFIRM = "confirm"
    REJECT = "reject"

    @property
    def status(self) -> RunStatus:
        return RunStatus.CONFIRMED if self is Decision.CONFIRM else RunStatus.REJECTED

    @property
    def swedish(self) -> str:
        return "bekräftad" if self is Decision.CONFIRM else "avvisad"


def decide_run(
    client: FhirClient,
    unit_hsa_id: str,
    day: date,
    decision: Decision,
    *,
    audit: Callable[[str], None],
) -> int:
    """Confirm or reject the run's unconfirmed rows; `audit(detail)` records who did it.

    Returns the rows changed; runs.RunNotFound if the run has none unconfirmed.
    """
    rows = set_run_status(client, unit_hsa_id, day, decision.status)
    audit(f"{decision.value} run={day.isoformat()} rows={rows}")
    _log.info("prea60 run decided", unit=unit_hsa_id, run=day.isoformat(), decision=decision.value)
    return rows


def decided_text(unit_hsa_id: str, day: date, decision: Decision, rows: int) -> str:
    """Swedish, for the CLI, the API and the worklist."""
    after = (
        "Den används från nästa genomgång av uppföljningen."
        if decision is Decision.CONFIRM
        else "Den används inte."
    )
    return (
        f"Prea60-körningen {day.isoformat()} för {unit_hsa_id} är {decision.swedish} "
        f"({rows} rader). {after}"
    )
