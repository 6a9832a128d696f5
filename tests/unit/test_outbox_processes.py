"""Several processes on one outbox (a SQLite file, or the shared PostgreSQL database): every
resource is handed to exactly one of them, and a killed process's claims are taken over."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from adapter.sync.outbox import Outbox, State
from adapter.sync.outboxdb import Tx
from tests.support import outbox as outbox_support
from tests.support.outbox import resource, rows

where = outbox_support.where  # the fixture: each test runs on SQLite and PostgreSQL

# A worker process: claims small batches until nothing is left, holds each a moment (as a
# request to the server would), confirms it, and prints what it sent, one JSON list a line.
WORKER = """
import json, sys, time
from pathlib import Path
from adapter.sync.outbox import ClaimToken, Outbox, Written
where = sys.argv[1]
outbox = Outbox(where if "://" in where else Path(where))
token = str(ClaimToken.new())
idle = 0
while idle < 20:
    claimed = outbox.claim(token, 7)
    if claimed.batch is None:
        idle = 0 if claimed.blocked else idle + 1
        time.sleep(0.01)
        continue
    idle = 0
    print(json.dumps([e.match_url for e in claimed.batch.entries]), flush=True)
    time.sleep(float(sys.argv[2]))
    outbox.complete(token, [Written(e, "1", "1") for e in claimed.batch.entries])
    outbox.close_records(claimed.batch.record_ids)
"""


def worker(location: str | Path, hold: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, str(location), str(hold)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )


def sent_by(process: subprocess.Popen[str]) -> list[str]:
    out, err = process.communicate(timeout=120)
    assert process.returncode in (0, -signal.SIGKILL), err
    return [url for line in out.splitlines() for url in json.loads(line)]


def test_processes_sharing_an_outbox_never_send_the_same_resource(where: str | Path) -> None:
    outbox = Outbox(where)
    # Records share Patients: a record whose Patient another process is sending must wait.
    records = [
        [resource("Patient", f"p{i % 11}", create_only=True), resource("Procedure", f"e{i}")]
        for i in range(150)
    ]
    outbox.enqueue(records)
    processes = [worker(where, 0.005) for _ in range(3)]
    sent = [url for process in processes for url in sent_by(process)]
    assert sorted(sent) == sorted(
        {url for record in records for url in (r.match_url for r in record)}
    )
    assert outbox.stats().counts == {State.DONE: 161}


def test_a_killed_process_claims_are_taken_over_by_the_next(where: str | Path) -> None:
    outbox = Outbox(where)
    outbox.enqueue([[resource("Patient", f"p{i}"), resource("Goal", f"g{i}")] for i in range(40)])
    slow = worker(where, 30)  # takes one batch and holds it
    assert slow.stdout is not None
    held = json.loads(slow.stdout.readline())
    assert outbox.stats().counts[State.IN_FLIGHT] == len(held)
    slow.send_signal(signal.SIGKILL)
    slow.wait(timeout=30)  # reaped: its pid is gone, so is its claim

    survivor = worker(where, 0)
    sent = sent_by(survivor)
    assert set(held) <= set(sent)
    assert len(sent) == len(set(sent)) == 80  # every resource, the killed one's included
    assert outbox.stats().counts == {State.DONE: 80}


def test_a_deadlocked_transaction_is_run_again(database_url: str) -> None:
    """Two writers lock two resources in opposite orders: PostgreSQL aborts one (deadlock),
    the outbox runs it again, and both writes land."""
    outbox = Outbox(database_url)
    outbox.enqueue([[resource("Patient", "a")], [resource("Patient", "b")]])
    first_tries = threading.Barrier(2)
    attempts: list[str] = []

    def writer(name: str, order: tuple[str, str]) -> None:
        def work(db: Tx) -> None:
            attempts.append(name)
            for i, value in enumerate(order):
                db.execute(
                    "UPDATE resource SET last_error = :name WHERE id_value = :value",
                    {"name": name, "value": value},
                )
                if i == 0 and attempts.count(name) == 1:
                    first_tries.wait(timeout=30)  # both hold their first row

        outbox._db.write(work)

    threads = [
        threading.Thread(target=writer, args=("x", ("a", "b"))),
        threading.Thread(target=writer, args=("y", ("b", "a"))),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(attempts) in (["x", "x", "y"], ["x", "y", "y"])  # one ran twice
    last = attempts[-1]  # the one run again wrote last, both rows
    assert [r.last_error for r in rows(outbox, "SELECT last_error FROM resource")] == [last, last]
