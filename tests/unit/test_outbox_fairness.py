"""Writers of one process take the outbox file in turn. SQLite's own wait for its write lock is
polling, so a thread that writes back to back kept the lock from the others: in a 100 000-patient
import the reader staged chunk after chunk and the sending workers waited until reading ended.
Counted in transactions, not seconds: how many of the busy writer's transactions go by between
another writer asking and getting in."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from adapter.database import sqlite_url
from adapter.sync.outboxdb import FifoLock, OutboxDb, Tx

HOLD = 0.02  # seconds each of the busy writer's transactions keeps the lock
ROUNDS = 3


def test_a_writer_waits_at_most_for_the_transactions_ahead_of_it(tmp_path: Path) -> None:
    db = OutboxDb.open(sqlite_url(tmp_path / "outbox.sqlite3"))
    done = 0  # the busy writer's committed transactions
    stop = threading.Event()

    def busy(tx: Tx) -> None:
        tx.execute("SELECT 1")
        time.sleep(HOLD)

    def stager() -> None:
        nonlocal done
        while not stop.is_set():
            db.write(busy)
            done += 1

    thread = threading.Thread(target=stager, daemon=True)
    thread.start()
    try:
        while done < 3:
            time.sleep(HOLD)
        for _ in range(ROUNDS):
            asked = done
            db.write(lambda tx: tx.execute("SELECT 1"))
            # the one running when asked, and at most one that took its turn just before
            assert done - asked <= 2
    finally:
        stop.set()
        thread.join(10)


def test_the_lock_is_granted_in_the_order_asked() -> None:
    lock = FifoLock()
    order: list[int] = []
    lock.__enter__()  # held, so the others queue
    threads = []
    for n in range(6):
        thread = threading.Thread(target=lambda n=n: _take(lock, order, n), daemon=True)
        thread.start()
        threads.append(thread)
        _until_queued(lock, n + 2)
    lock.__exit__(None, None, None)
    for thread in threads:
        thread.join(10)
    assert order == list(range(6))


def _take(lock: FifoLock, order: list[int], n: int) -> None:
    with lock:
        order.append(n)


def _until_queued(lock: FifoLock, issued: int) -> None:
    deadline = time.monotonic() + 10
    while lock._issued < issued:
        assert time.monotonic() < deadline
        time.sleep(0.001)
