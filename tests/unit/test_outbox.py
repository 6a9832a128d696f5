"""The outbox on its own: states, hashes, records as the unit of batching, claims, dead letters.

No server: these are the outbox's own rules. What the server does with the Bundles is tested in
tests/integration/test_sync*.py.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from adapter.jsontext import canonical_json
from adapter.mapping.resource import MappedResource
from adapter.sync.outbox import (
    ClaimToken,
    Outbox,
    State,
    Written,
    content_hash,
)
from tests.support import outbox as outbox_support
from tests.support.outbox import SYSTEM, change, resource, send_all, state_of


def version_of(item: MappedResource) -> int | None:
    value = item.resource.get("version")
    return value if isinstance(value, int) else None


where = outbox_support.where  # the fixture: each test taking it runs on SQLite and PostgreSQL


@pytest.fixture
def outbox(where: str | Path) -> Outbox:
    return Outbox(where, version_of=version_of)


def test_canonical_hash_ignores_key_order() -> None:
    a = {"resourceType": "Patient", "name": [{"family": "Åberg"}], "active": True}
    b = {"active": True, "name": [{"family": "Åberg"}], "resourceType": "Patient"}
    assert canonical_json(a) == canonical_json(b)
    assert "Åberg" in canonical_json(a)  # UTF-8 kept, not \\u escapes
    assert content_hash(canonical_json(a)) != content_hash(canonical_json({**a, "active": False}))


def test_new_resources_are_pending_until_confirmed_then_unchanged(outbox: Outbox) -> None:
    patient, plan = resource("Patient", "p1"), resource("CarePlan", "c1")
    first = outbox.enqueue([[patient, plan]])
    assert (first.queued, first.unchanged) == (2, 0)
    assert outbox.stats().counts == {State.PENDING: 2}

    assert send_all(outbox) == [[patient.match_url, plan.match_url]]
    assert outbox.stats().counts == {State.DONE: 2}

    again = outbox.enqueue([[patient, plan]])
    assert (again.queued, again.unchanged) == (0, 2)
    assert outbox.claim("test:1:a", 100).batch is None  # nothing to send


def test_changed_content_is_queued_again_and_only_the_changed_resource(outbox: Outbox) -> None:
    patient, plan = resource("Patient", "p1"), resource("CarePlan", "c1")
    outbox.enqueue([[patient, plan]])
    send_all(outbox)

    edited = resource("CarePlan", "c1", note="ny version")
    result = outbox.enqueue([[patient, edited]])
    assert (result.queued, result.unchanged) == (1, 1)
    assert send_all(outbox) == [[plan.match_url]]


def test_content_back_to_what_the_server_holds_needs_no_write(outbox: Outbox) -> None:
    plan = resource("CarePlan", "c1")
    outbox.enqueue([[plan]])
    send_all(outbox)
    outbox.enqueue([[resource("CarePlan", "c1", note="ändrad")]])
    assert state_of(outbox, plan) == State.PENDING
    outbox.enqueue([[plan]])  # undone before it was sent
    assert state_of(outbox, plan) == State.DONE
    assert send_all(outbox) == []


def test_force_requeues_unchanged_resources(outbox: Outbox) -> None:
    plan = resource("CarePlan", "c1")
    outbox.enqueue([[plan]])
    send_all(outbox)
    assert outbox.enqueue([[plan]], force=True).queued == 1
    assert send_all(outbox) == [[plan.match_url]]


def test_stub_never_replaces_the_full_resource_but_full_replaces_stub(outbox: Outbox) -> None:
    stub = resource("Patient", "p1", create_only=True)
    full = resource("Patient", "p1", note="Lind, Åsa")
    outbox.enqueue([[stub]])
    outbox.enqueue([[full]])
    (entry,) = outbox.claim("t:1:a", 10).batch.entries  # type: ignore[union-attr]
    assert entry.resource["note"] == "Lind, Åsa" and not entry.create_only
    outbox.complete("t:1:a", [Written(entry, "1", "1")])

    assert outbox.enqueue([[stub]]).queued == 0  # a later stub changes nothing
    assert send_all(outbox) == []


def test_done_stub_is_not_written_again(outbox: Outbox) -> None:
    stub = resource("Patient", "p1", create_only=True)
    outbox.enqueue([[stub]])
    send_all(outbox)
    other_stub = MappedResource("Patient", SYSTEM, "p1", {**stub.resource, "x": 1}, True)
    assert outbox.enqueue([[other_stub]]).queued == 0


def test_older_plan_version_never_replaces_a_newer_one(outbox: Outbox) -> None:
    v2 = [resource("Goal", "g1", note="v2"), resource("CarePlan", "c1", version=2)]
    v1 = [resource("Goal", "g1", note="v1"), resource("CarePlan", "c1", version=1)]
    v3 = [resource("Goal", "g1", note="v3"), resource("CarePlan", "c1", version=3)]
    outbox.enqueue([v2])
    skipped = outbox.enqueue([v1])
    assert (skipped.older_skipped, skipped.queued) == (1, 0)  # the whole record, Goal included
    (claimed,) = send_all(outbox)
    assert claimed == [v2[0].match_url, v2[1].match_url]
    assert outbox.enqueue([v1]).older_skipped == 1  # after the write too
    assert outbox.enqueue([v3]).queued == 2


def test_a_record_is_never_split_between_bundles(outbox: Outbox) -> None:
    records = [[resource("Patient", f"p{i}"), resource("Procedure", f"e{i}")] for i in range(5)]
    outbox.enqueue(records)
    batch = outbox.claim("t:1:a", 3).batch
    assert batch is not None
    assert [len(group) for group in batch.groups] == [2]  # a third would split the next record
    big = [resource("Goal", f"g{i}") for i in range(7)]
    outbox.enqueue([big])
    sizes = [len(g) for g in send_all(outbox, size=3)]
    assert 7 in sizes  # a record larger than the batch size goes alone, whole


def test_shared_patient_is_sent_once_in_record_order(outbox: Outbox) -> None:
    patient = resource("Patient", "p1", create_only=True)
    outbox.enqueue([[patient, resource("Procedure", "e1")], [patient, resource("Procedure", "e2")]])
    (batch,) = [outbox.claim("t:1:a", 10).batch]
    assert batch is not None
    assert [e.match_url for e in batch.entries] == [
        patient.match_url,
        resource("Procedure", "e1").match_url,
        resource("Procedure", "e2").match_url,
    ]


def test_records_waiting_for_another_workers_write_are_blocked(outbox: Outbox) -> None:
    patient = resource("Patient", "p1")
    outbox.enqueue([[patient, resource("Procedure", "e1")]])
    outbox.enqueue([[patient, resource("Procedure", "e2")], [resource("Patient", "p2")]])
    mine = f"{ClaimToken.new()}"
    first = outbox.claim(mine, 2).batch
    assert first is not None and len(first) == 2

    theirs = f"{ClaimToken.new()}"
    other = outbox.claim(theirs, 10)
    assert other.blocked
    assert other.batch is not None
    assert [e.match_url for e in other.batch.entries] == [resource("Patient", "p2").match_url]

    outbox.complete(mine, [Written(e, "1", "1") for e in first.entries])
    outbox.complete(theirs, [Written(e, "2", "1") for e in other.batch.entries])
    after = outbox.claim(f"{ClaimToken.new()}", 10)
    assert after.batch is not None and not after.blocked
    assert [e.match_url for e in after.batch.entries] == [resource("Procedure", "e2").match_url]


def test_claim_waits_for_a_full_batch_when_asked(outbox: Outbox) -> None:
    outbox.enqueue([[resource("Patient", "p1")]])
    assert outbox.claim("t:1:a", 10, min_resources=10).batch is None
    assert outbox.claim("t:1:a", 10, min_resources=1).batch is not None


def test_a_batch_as_full_as_whole_records_allow_is_full_enough(outbox: Outbox) -> None:
    """Records of 2 resources never fill 5 exactly: waiting for 5 must not wait for ever (while
    an import was reading, its workers sent nothing: 199 + the next record's 2 > 200)."""
    outbox.enqueue(
        [[resource("Patient", f"p{n}"), resource("CarePlan", f"c{n}")] for n in range(4)]
    )
    claimed = outbox.claim("t:1:a", 5, min_resources=5)
    assert claimed.batch is not None
    assert len(claimed.batch.entries) == 4  # two whole records
    rest = outbox.claim("t:1:b", 5, min_resources=5)
    assert rest.batch is None  # the last 4 fit, and more may come: wait for them


def test_claims_of_a_dead_process_are_taken_over(outbox: Outbox) -> None:
    outbox.enqueue([[resource("Patient", "p1")]])
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_token = str(ClaimToken(ClaimToken.new().host, int(gone.stdout), "x"))
    assert outbox.claim(dead_token, 10).batch is not None
    taken = outbox.claim(str(ClaimToken.new()), 10)
    assert taken.batch is not None and not taken.blocked


def test_claims_of_a_live_worker_expire_after_the_lease(where: str | Path) -> None:
    now = [1000.0]
    outbox = Outbox(where, lease_seconds=60, clock=lambda: now[0])
    outbox.enqueue([[resource("Patient", "p1")]])
    remote = "other-host:4242:x"  # not this host: its pid cannot be checked
    assert outbox.claim(remote, 10).batch is not None
    assert outbox.claim("t:1:a", 10).blocked
    now[0] += 61
    assert outbox.claim("t:1:a", 10).batch is not None


def test_late_confirmation_of_a_taken_over_claim_is_ignored(outbox: Outbox) -> None:
    outbox.enqueue([[resource("Patient", "p1")]])
    old = outbox.claim("other-host:1:old", 10).batch
    assert old is not None
    outbox.release("other-host:1:old")
    new = outbox.claim("t:1:new", 10).batch
    assert new is not None
    outbox.complete("other-host:1:old", [Written(e, "9", "9") for e in old.entries])
    assert outbox.stats().counts == {State.IN_FLIGHT: 1}


def test_change_while_in_flight_stays_pending_after_the_write(outbox: Outbox) -> None:
    outbox.enqueue([[resource("CarePlan", "c1")]])
    batch = outbox.claim("t:1:a", 10).batch
    assert batch is not None
    outbox.enqueue([[resource("CarePlan", "c1", note="ändrad under tiden")]])
    outbox.complete("t:1:a", [Written(e, "1", "1") for e in batch.entries])
    assert outbox.stats().counts == {State.PENDING: 1}
    (again,) = send_all(outbox)
    assert again == [resource("CarePlan", "c1").match_url]


def test_release_gives_everything_back_with_the_reason(outbox: Outbox) -> None:
    outbox.enqueue([[resource("Patient", "p1"), resource("Procedure", "e1")]])
    assert outbox.claim("t:1:a", 10).batch is not None
    assert outbox.release("t:1:a", "Ingen kontakt med servern") == 2
    assert outbox.stats().counts == {State.PENDING: 2}
    assert outbox.claim("t:1:b", 10).batch is not None


def test_dead_letters_keep_the_message_and_do_not_block_the_rest(outbox: Outbox) -> None:
    bad, good = resource("Goal", "bad"), resource("Goal", "good")
    outbox.enqueue([[bad], [good]])
    batch = outbox.claim("t:1:a", 10).batch
    assert batch is not None
    by_url = {e.match_url: e for e in batch.entries}
    outbox.mark_dead("t:1:a", by_url[bad.match_url], "Goal.lifecycleStatus: saknas")
    outbox.complete("t:1:a", [Written(by_url[good.match_url], "2", "1")])
    outbox.close_records(batch.record_ids)

    assert outbox.stats().counts == {State.DEAD: 1, State.DONE: 1}
    (letter,) = outbox.dead_letters()
    assert (letter.match_url, letter.error, letter.attempts) == (
        bad.match_url,
        "Goal.lifecycleStatus: saknas",
        1,
    )
    assert outbox.claim("t:1:b", 10).batch is None
    assert outbox.enqueue([[bad]]).queued == 0  # the same content stays dead
    assert outbox.enqueue([[resource("Goal", "bad", note="rättad")]]).queued == 1


def test_retry_dead_queues_them_again_together(outbox: Outbox) -> None:
    goal, plan = resource("Goal", "g1"), resource("CarePlan", "c1")
    outbox.enqueue([[goal, plan]])
    batch = outbox.claim("t:1:a", 10).batch
    assert batch is not None
    for entry in batch.entries:
        outbox.mark_dead("t:1:a", entry, "nej")
    outbox.close_records(batch.record_ids)
    assert outbox.retry_dead() == 2
    assert send_all(outbox) == [[goal.match_url, plan.match_url]]
    assert outbox.dead_letters() == []


def test_outbox_survives_reopening_and_is_private(tmp_path: Path) -> None:
    first = Outbox.in_dir(tmp_path)
    first.enqueue([[resource("Patient", "p1")]])
    wal = first.path.with_name(first.path.name + "-wal")
    assert wal.exists() and stat.S_IMODE(os.stat(wal).st_mode) == 0o600  # SQLite copies the mode
    first.close()
    second = Outbox.in_dir(tmp_path)
    assert second.open_count() == 1
    assert stat.S_IMODE(os.stat(second.path).st_mode) == 0o600
    db = sqlite3.connect(second.path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_orphaned_pending_resources_get_a_record_on_open(where: str | Path) -> None:
    outbox = Outbox(where)
    outbox.enqueue([[resource("Patient", "p1")]])
    change(outbox, "DELETE FROM member")
    change(outbox, "DELETE FROM record")
    assert Outbox(where).claim("t:1:a", 10).batch is not None


def test_seen_digests_are_forgotten_when_the_mapping_changes(outbox: Outbox) -> None:
    outbox.use_fingerprint("mapping-1")
    outbox.enqueue_seen([([resource("Patient", "p1"), resource("Goal", "g1")], "d1")])
    assert outbox.seen(["d1", "d2"]) == {"d1": 2}
    outbox.use_fingerprint("mapping-1")
    assert outbox.seen(["d1"]) == {"d1": 2}
    outbox.use_fingerprint("mapping-2")
    assert outbox.seen(["d1"]) == {}


def test_concurrent_workers_never_hold_the_same_resource(outbox: Outbox) -> None:
    shared = [resource("Patient", f"p{i % 7}", create_only=True) for i in range(120)]
    outbox.enqueue([[p, resource("Procedure", f"e{i}")] for i, p in enumerate(shared)])
    sent: list[str] = []
    overlap: list[str] = []
    holding: set[str] = set()
    lock = threading.Lock()

    def worker() -> None:
        token = str(ClaimToken.new())
        while True:
            claimed = outbox.claim(token, 9)
            if claimed.batch is None:
                if not claimed.blocked:
                    break
                continue
            urls = [e.match_url for e in claimed.batch.entries]
            with lock:
                overlap.extend(u for u in urls if u in holding)
                holding.update(urls)
                sent.extend(urls)
            time.sleep(0.002)  # hold them a while: other workers claim meanwhile
            with lock:
                holding.difference_update(urls)
            outbox.complete(token, [Written(e, "1", "1") for e in claimed.batch.entries])
            outbox.close_records(claimed.batch.record_ids)
        outbox.close()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert overlap == []
    assert len(sent) == 127 and len(set(sent)) == 127  # 7 patients once each, 120 procedures
    assert outbox.stats().counts == {State.DONE: 127}
