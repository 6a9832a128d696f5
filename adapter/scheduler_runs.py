"""Which fire time of each scheduled job has been run: one row per job (`scheduler_job_run`,
beside the job store), so a fire time runs once across every process, even when two schedulers
both think they are due (a leader's last moments after losing its lock, and the new leader that
read the job store before the old one moved it on)."""

from __future__ import annotations

from datetime import datetime, timedelta

from apscheduler.triggers.base import BaseTrigger
from sqlalchemy import Column, Float, MetaData, Table, Text, insert, select, update

from adapter.database import open_tables

_METADATA = MetaData()
_RUNS = Table(
    "scheduler_job_run",
    _METADATA,
    Column("job_id", Text, primary_key=True),
    Column("started_at", Float, nullable=False),  # wall clock, seconds since the epoch
)


def claim_run(url: str, job_id: str, trigger: BaseTrigger, now: datetime) -> bool:
    """Record that `job_id` starts at `now` and say True, if a fire time of `trigger` has come
    since the job last started (this run is the first for it); else False (a run for this fire
    time has started already). The caller holds the job's lock, so two never claim at once."""
    with open_tables(url, _METADATA).begin() as connection:
        query = select(_RUNS.c.started_at).where(_RUNS.c.job_id == job_id)
        last = connection.execute(query).scalar()
        if last is not None:
            started = datetime.fromtimestamp(last, now.tzinfo) + timedelta(microseconds=1)
            due = trigger.get_next_fire_time(None, started)
            if due is None or due > now:
                return False
            moved = update(_RUNS).where(_RUNS.c.job_id == job_id)
            connection.execute(moved.values(started_at=now.timestamp()))
        else:
            connection.execute(insert(_RUNS).values(job_id=job_id, started_at=now.timestamp()))
        return True
