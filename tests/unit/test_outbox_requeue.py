"""The outbox's side of the server check (adapter/sync/servercheck.py): queueing again what the
server lost, each with what it refers to, and forgetting what `purge` deleted on purpose."""

from __future__ import annotations

from pathlib import Path

from adapter.mapping.resource import MappedResource
from adapter.sync.outbox import Outbox, ServerEpoch, State
from tests.support import outbox as outbox_support
from tests.support.outbox import change, resource, rows, send_all, state_of

where = outbox_support.where  # the fixture: each test runs on SQLite and PostgreSQL


def referring(resource_type: str, value: str, target: MappedResource) -> MappedResource:
    item = resource(resource_type, value)
    item.resource["subject"] = {"reference": target.match_url}
    return item


def records(outbox: Outbox) -> list[list[str]]:
    """The open records' members, in order."""
    grouped: dict[int, list[str]] = {}
    for record_id, url in rows(
        outbox, "SELECT record_id, match_url FROM member ORDER BY record_id, position"
    ):
        grouped.setdefault(record_id, []).append(url)
    return list(grouped.values())


def test_requeue_sends_each_lost_resource_with_the_lost_ones_it_refers_to(
    where: str | Path,
) -> None:
    outbox = Outbox(where)
    patient = resource("Patient", "p1")
    first, second = referring("Procedure", "e1", patient), referring("Procedure", "e2", patient)
    outbox.enqueue([[patient, first], [second]])  # the second record holds no Patient
    send_all(outbox)
    assert outbox.done_count() == 3

    assert outbox.requeue() == 3  # all lost: the Patient rides along with the second record too
    assert records(outbox) == [
        [patient.match_url, first.match_url],
        [patient.match_url, second.match_url],  # dependencies first
    ]
    send_all(outbox)

    assert outbox.requeue([second.match_url]) == 1  # only it lost: the Patient stays done
    assert state_of(outbox, patient) == State.DONE
    assert records(outbox) == [[second.match_url]]
    assert send_all(outbox) == [[second.match_url]]
    assert outbox.requeue(["Patient?identifier=nobody|x"]) == 0


def test_requeue_forgets_seen_rows_so_a_reimport_counts_them_as_written(where: str | Path) -> None:
    outbox = Outbox(where)
    outbox.enqueue_seen([([resource("Patient", "p1")], "digest-1")])
    send_all(outbox)
    assert outbox.seen(["digest-1"]) == {"digest-1": 1}
    outbox.requeue()
    assert outbox.seen(["digest-1"]) == {}


def test_forget_drops_only_the_purged_server_ids(where: str | Path) -> None:
    outbox = Outbox(where)
    kept, purged = resource("Patient", "p1"), resource("Patient", "p2")
    outbox.enqueue([[kept], [purged]])
    send_all(outbox)  # send_all confirms everything as server id "1": give p2 its own
    change(outbox, "UPDATE resource SET server_id = '2' WHERE id_value = 'p2'")
    assert outbox.forget("Patient", ["2"]) == 1
    assert outbox.done_count() == 1 and state_of(outbox, kept) == State.DONE
    assert outbox.forget("Procedure", ["1"]) == 0


def test_server_epochs_are_kept_per_base_url(where: str | Path) -> None:
    outbox = Outbox(where)
    assert outbox.server_epoch("http://a/fhir") is None
    outbox.record_server_epoch("http://a/fhir", ServerEpoch("e1", 2, "7"))
    outbox.record_server_epoch("http://b/fhir", ServerEpoch("e2", 1, None))
    assert Outbox(where).server_epoch("http://a/fhir") == ServerEpoch("e1", 2, "7")
    outbox.forget_server_epoch("http://a/fhir")
    assert outbox.server_epoch("http://a/fhir") is None
    assert outbox.server_epoch("http://b/fhir") == ServerEpoch("e2", 1, None)
