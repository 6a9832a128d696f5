"""`python -m tests.support.scheduler_probe <sip-fhir arguments>`: the real `sip-fhir` command with
one more scheduled job, every second, that writes a row per run into the shared database
(SIP_FHIR_DATABASE_URL): a job run twice for one trigger shows as two rows of the same second.
The follow-up jobs keep their own (weekly, daily) times and do not run during a test.

With SIP_FHIR_TEST_PROBE_SECONDS=N the probe is a slow job instead: each run writes a span row
(its start and end on the database's clock) and lasts N seconds, so runs of two processes that
overlap show as overlapping spans."""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime

from sqlalchemy import Column, DateTime, Integer, MetaData, Table, Text, func, insert, update

from adapter import database, scheduler

PROBE = "test-probe-every-second"
_METADATA = MetaData()
RUNS = Table(
    "probe_run",
    _METADATA,
    Column("fired", Text, nullable=False),  # the trigger's second, UTC
    Column("pid", Integer, nullable=False),
)


SPANS = Table(
    "probe_span",
    _METADATA,
    Column("id", Integer, primary_key=True),
    Column("pid", Integer, nullable=False),
    Column("started", DateTime(timezone=True), nullable=False),
    Column("ended", DateTime(timezone=True)),
)
SLOW = "SIP_FHIR_TEST_PROBE_SECONDS"


def record_span() -> None:
    """The slow probe job: a span row, started now, ended SIP_FHIR_TEST_PROBE_SECONDS later."""
    made = database.open_tables(os.environ["SIP_FHIR_DATABASE_URL"], _METADATA)
    with made.begin() as connection:
        started = insert(SPANS).values(pid=os.getpid(), started=func.clock_timestamp())
        span = connection.execute(started.returning(SPANS.c.id)).scalar_one()
    time.sleep(float(os.environ[SLOW]))
    with made.begin() as connection:
        ended = update(SPANS).where(SPANS.c.id == span).values(ended=func.clock_timestamp())
        connection.execute(ended)


def record_run() -> None:
    """The probe job: one row per run."""
    url = os.environ["SIP_FHIR_DATABASE_URL"]
    fired = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    with database.open_tables(url, _METADATA).begin() as connection:
        connection.execute(insert(RUNS).values(fired=fired, pid=os.getpid()))


def main() -> None:
    function = "record_span" if os.environ.get(SLOW) else "record_run"
    job = f"tests.support.scheduler_probe:{function}"
    probe = scheduler.JobSpec(PROBE, job, {"second": "*"}, "Testjobb")
    scheduler.JOBS = (*scheduler.JOBS, probe)
    from adapter.cli import app

    app(args=sys.argv[1:], prog_name="sip-fhir")


if __name__ == "__main__":
    main()
