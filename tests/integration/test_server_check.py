"""The server check against the real server (issue 12.3): a restore from an older backup, a
spot check that finds holes, an outbox meeting a server for the first time.

Each scenario removes resources directly on the server, then shows that the adapter notices and
re-sends exactly enough that every resource is there once. (Wiping a whole server, with a server
of its own: test_server_lost_data.py.)
"""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

from adapter.canonical import ID_OUTBOX_EPOCH
from adapter.fhirclient import FhirClient
from adapter.mapping import MappedResource
from adapter.settings import EndpointSettings
from adapter.sync import Importer, SyncEngine, SyncSettings, Tally, open_outbox
from adapter.sync.outbox import Outbox, ServerEpoch
from adapter.sync.servercheck import (
    CheckResult,
    ServerState,
    check_server,
    marker_resource,
    verify,
)
from tests.support.sync import MAPPINGS_DIR, assert_exactly_once, expected_resources, write_events

pytestmark = pytest.mark.integration


def drained(outbox: Outbox, client: FhirClient) -> Tally:
    """Send what the outbox holds; what was written (nothing may stay stuck)."""
    tally = Tally()
    assert SyncEngine(outbox, client, tally).drain() is None
    return tally


def run_import(
    base_url: str, data_dir: Path, paths: list[Path]
) -> tuple[Tally, CheckResult | None]:
    tally = Tally()
    with FhirClient(EndpointSettings(base_url=base_url)) as client:
        importer = Importer(
            open_outbox(data_dir), client, MAPPINGS_DIR, tally, SyncSettings(batch_size=50)
        )
        result = importer.run(paths)
    assert result.complete, result.stop
    return tally, result.check


def delete_some(client: FhirClient, expected: dict[str, MappedResource], count: int) -> set[str]:
    """Delete `count` Procedures on the server (leaves: nothing refers to them)."""
    leaves = [m for m in expected.values() if m.resource_type == "Procedure"][:count]
    for leaf in leaves:
        (found,) = client.search(
            "Procedure", {"identifier": f"{leaf.identifier_system}|{leaf.identifier_value}"}
        )
        client.delete("Procedure", found["id"])
    return {leaf.match_url for leaf in leaves}


@pytest.fixture
def events(tmp_path: Path) -> Path:
    rng = random.Random()
    return write_events(tmp_path / "events-check.csv", rows=40, patients=10, rng=rng).path


def test_a_restore_from_an_older_backup_is_noticed_and_everything_resent(
    hapi_base_url: str, fhir_client: FhirClient, tmp_path: Path, events: Path
) -> None:
    expected = expected_resources([events])
    first, check = run_import(hapi_base_url, tmp_path, [events])
    assert first.created == len(expected)
    assert check is not None and check.state is ServerState.FIRST_CONTACT
    recorded = open_outbox(tmp_path).server_epoch(hapi_base_url)
    assert recorded is not None and recorded.generation == 2  # marked, then the run counted

    # The restore: the marker as it was before the run, and the run's writes partly gone.
    older = marker_resource(ServerEpoch(recorded.epoch, 1, None))
    fhir_client.conditional_update(older, f"identifier={ID_OUTBOX_EPOCH}|{recorded.epoch}")
    gone = delete_some(fhir_client, expected, 3)

    again, check = run_import(hapi_base_url, tmp_path, [events])
    assert check is not None and check.state is ServerState.LOST
    assert check.requeued == len(expected)
    assert again.created == len(gone)  # the rest: written, the server already had it
    assert again.created + again.noop == len(expected)
    assert_exactly_once(fhir_client, expected)
    after = open_outbox(tmp_path).server_epoch(hapi_base_url)
    assert after is not None and after.generation > recorded.generation


def test_the_spot_check_finds_holes_and_only_they_are_resent(
    hapi_base_url: str, fhir_client: FhirClient, tmp_path: Path, events: Path
) -> None:
    expected = expected_resources([events])
    run_import(hapi_base_url, tmp_path, [events])
    gone = delete_some(fhir_client, expected, 2)
    outbox = open_outbox(tmp_path)

    result = check_server(outbox, fhir_client, spot_check_size=len(expected))  # sample = all
    assert (result.state, result.requeued) == (ServerState.PARTLY_LOST, len(gone))
    tally = drained(outbox, fhir_client)
    assert (tally.created, tally.updated, tally.noop) == (len(gone), 0, 0)
    assert_exactly_once(fhir_client, expected)

    quiet = check_server(outbox, fhir_client, spot_check_size=len(expected))
    assert (quiet.state, quiet.requeued) == (ServerState.KNOWN, 0)


def test_an_outbox_meeting_a_server_it_has_no_marker_on_checks_before_trusting(
    hapi_base_url: str, fhir_client: FhirClient, tmp_path: Path, events: Path
) -> None:
    """An outbox from before this check, or SIP_FHIR_BASE_URL pointed at another server."""
    expected = expected_resources([events])
    run_import(hapi_base_url, tmp_path, [events])
    outbox = open_outbox(tmp_path)
    outbox.forget_server_epoch(hapi_base_url)
    delete_some(fhir_client, expected, 1)

    result = check_server(outbox, fhir_client, spot_check_size=len(expected))
    assert (result.state, result.requeued) == (ServerState.FIRST_CONTACT, len(expected))
    assert outbox.server_epoch(hapi_base_url) is not None
    tally = drained(outbox, fhir_client)
    assert tally.created == 1
    assert_exactly_once(fhir_client, expected)


def test_verify_resends_what_the_server_holds_in_an_older_version(
    hapi_base_url: str, fhir_client: FhirClient, tmp_path: Path, events: Path
) -> None:
    """A backup from before the last update: the server's version is below the confirmed one."""
    expected = expected_resources([events])
    run_import(hapi_base_url, tmp_path, [events])
    outbox = open_outbox(tmp_path)
    older = [item for chunk in outbox.iter_done() for item in chunk][:2]
    with sqlite3.connect(outbox.path) as db:  # as if the server had confirmed version 7
        db.executemany(
            "UPDATE resource SET server_version = '7' WHERE match_url = ?",
            [(item.match_url,) for item in older],
        )
    result = verify(outbox, fhir_client)
    assert (result.checked, result.missing, result.stale) == (len(expected), 0, 2)
    assert result.requeued == 2 and outbox.open_count() == 2
    tally = drained(outbox, fhir_client)
    assert tally.written == 2
    again = verify(outbox, fhir_client)
    assert (again.missing, again.stale, again.requeued) == (0, 0, 0)
    assert_exactly_once(fhir_client, expected)


def test_rows_without_a_server_id_are_looked_up_by_identifier_in_a_batch(
    hapi_base_url: str, fhir_client: FhirClient, tmp_path: Path, events: Path
) -> None:
    """Personnummer included: they travel in the batch body, never in a URL."""
    expected = expected_resources([events])
    run_import(hapi_base_url, tmp_path, [events])
    outbox = open_outbox(tmp_path)
    with sqlite3.connect(outbox.path) as db:
        db.execute("UPDATE resource SET server_id = NULL, server_version = NULL")
    gone = delete_some(fhir_client, expected, 1)
    result = verify(outbox, fhir_client)
    assert (result.checked, result.missing, result.requeued) == (len(expected), 1, 1)
    assert result.by_type == {"Procedure": 1}
    tally = drained(outbox, fhir_client)
    assert tally.created == len(gone) == 1
    assert_exactly_once(fhir_client, expected)
