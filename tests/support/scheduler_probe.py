"""`python -m tests.support.scheduler_probe <sip-fhir arguments>`: the real `sip-fhir` command with
one more scheduled job, every second, that writes a row per run into the shared database
(SIP_FHIR_DATABASE_URL): a job run twice for one trigger shows as two rows of the same second.
The follow-up jobs keep their own (weekly, daily) times and do not run during a test."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime

from sqlalchemy import Column, Integer, MetaData, Table, Text, insert

from adapter import database, scheduler

PROBE = "test-probe-every-second"
_METADATA = MetaData()
RUNS = Table(
    "probe_run",
    _METADATA,
    Column("fired", Text, nullable=False),  # the trigger's second, UTC
    Column("pid", Integer, nullable=False),
)


def record_run() -> None:
    """The probe job: one row per run."""
    url = os.environ["SIP_FHIR_DATABASE_URL"]
    fired = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    with database.open_tables(url, _METADATA).begin() as connection:
        connection.execute(insert(RUNS).values(fired=fired, pid=os.getpid()))


def main() -> None:
    job = "tests.support.scheduler_probe:record_run"
    probe = scheduler.JobSpec(PROBE, job, {"second": "*"}, "Testjobb")
    scheduler.JOBS = (*scheduler.JOBS, probe)
    from adapter.cli import app

    app(args=sys.argv[1:], prog_name="sip-fhir")


if __name__ == "__main__":
    main()
