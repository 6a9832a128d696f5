"""The sync engine against the real local HAPI server: import, re-import, plan versions, dead
letters, and concurrent imports — each checked by what the server then holds."""

from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path

import pytest

from adapter.domain import PersonId
from adapter.fhirclient import FhirClient
from adapter.followup.scope import patient_refs_of
from adapter.mapping import MappedResource
from adapter.settings import EndpointSettings
from adapter.sync import State, SyncEngine, SyncSettings, Tally, open_outbox
from tests.support.sync import (
    SIP_FHIR,
    assert_exactly_once,
    cli,
    expected_resources,
    history_counts,
    importer,
    plan_line,
    server_matches,
    version_ids,
    write_events,
)

pytestmark = pytest.mark.integration
TEST_SYSTEM = "https://sip-fhir.se/fhir/identifier/test"


def run_import(base_url: str, data_dir: Path, paths: list[Path], **kwargs: int) -> Tally:
    runner, tally = importer(base_url, data_dir, **kwargs)
    result = runner.run(paths)
    assert result.complete, result.stop
    return tally


@pytest.fixture
def events(tmp_path: Path, fhir_client: FhirClient) -> Path:
    """300 event rows of 60 patients the server does not hold yet. The tests count creations;
    an earlier test's random patient drawn again would be an unchanged write, not one (seen in
    CI: 378 created of 380)."""
    while True:
        generated = write_events(
            tmp_path / "events-sync.csv", rows=300, patients=60, rng=random.Random()
        )
        people = [PersonId(p.replace("-", "")) for p in generated.patients]
        if not patient_refs_of(fhir_client, people):
            return generated.path


@pytest.fixture
def plans(tmp_path: Path, events: Path) -> Path:
    patients = [line.split(";")[0] for line in events.read_text("utf-8").splitlines()[1:6]]
    tag = os.urandom(4).hex()
    path = tmp_path / "plans-sync.jsonl"
    lines = [plan_line(f"P-{tag}-{i}", 1, patient) for i, patient in enumerate(patients)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_import_then_reimport_writes_nothing_new(
    hapi_base_url: str, fhir_client: FhirClient, tmp_path: Path, events: Path, plans: Path
) -> None:
    expected = expected_resources([events, plans])
    first = run_import(hapi_base_url, tmp_path / "data", [events, plans])
    assert first.created == len(expected)
    assert (first.rows_read, first.rows_rejected) == (305, 0)
    assert_exactly_once(fhir_client, expected)
    versions = version_ids(fhir_client, expected)
    assert set(versions.values()) == {"1"}

    again = run_import(hapi_base_url, tmp_path / "data", [events, plans])
    assert (again.written, again.queued, again.bundles) == (0, 0, 0)
    assert again.unchanged >= len(expected)
    assert version_ids(fhir_client, expected) == versions
    _, stored = server_matches(fhir_client, expected.values())
    sample = {r["resourceType"]: r for r in stored}.values()  # one of each type
    assert history_counts(hapi_base_url, sample) == [1] * len(sample)


def test_a_fresh_outbox_rewrites_without_new_versions(
    hapi_base_url: str, fhir_client: FhirClient, tmp_path: Path, events: Path
) -> None:
    expected = expected_resources([events])
    run_import(hapi_base_url, tmp_path / "one", [events])
    versions = version_ids(fhir_client, expected)

    other = run_import(hapi_base_url, tmp_path / "two", [events])  # knows nothing of the first
    assert other.created == 0
    assert other.noop == len(expected)  # conditional writes: the server changed nothing
    assert version_ids(fhir_client, expected) == versions
    assert_exactly_once(fhir_client, expected)


def test_changed_rows_update_only_their_resources(
    hapi_base_url: str, fhir_client: FhirClient, tmp_path: Path, events: Path
) -> None:
    run_import(hapi_base_url, tmp_path / "data", [events])
    lines = events.read_text("utf-8").splitlines()
    # Kontakttyp is not part of a Procedure's identity: changing it updates the Procedure.
    changed = [lines[0]] + [
        line.replace(";besök;", ";telefon;") if i < 20 else line for i, line in enumerate(lines[1:])
    ]
    edited = events.with_name("events-edited.csv")
    edited.write_text("\n".join(changed) + "\n", encoding="utf-8")
    touched = sum(1 for a, b in zip(lines[1:21], changed[1:21], strict=True) if a != b)
    before = version_ids(fhir_client, expected_resources([events]))

    tally = run_import(hapi_base_url, tmp_path / "data", [edited])
    assert (tally.updated, tally.created) == (touched, 0)
    after = version_ids(fhir_client, expected_resources([edited]))
    bumped = [url for url, version in after.items() if version != before[url]]
    assert len(bumped) == touched and all(after[url] == "2" for url in bumped)


def test_an_older_plan_version_never_overwrites_a_newer_one(
    hapi_base_url: str, fhir_client: FhirClient, tmp_path: Path, events: Path
) -> None:
    patient = events.read_text("utf-8").splitlines()[1].split(";")[0]
    plan_id = f"P-{os.urandom(4).hex()}"
    newer, older = tmp_path / "plans-v2.jsonl", tmp_path / "plans-v1.jsonl"
    newer.write_text(plan_line(plan_id, 2, patient, title="Version 2") + "\n", "utf-8")
    older.write_text(plan_line(plan_id, 1, patient, title="Version 1") + "\n", "utf-8")

    run_import(hapi_base_url, tmp_path / "data", [newer])
    tally = run_import(hapi_base_url, tmp_path / "data", [older])
    assert (tally.older_skipped, tally.written) == (1, 0)
    # Both in one run, newest first in the file order too.
    both = tmp_path / "plans-both.jsonl"
    both.write_text(newer.read_text("utf-8") + older.read_text("utf-8"), "utf-8")
    assert run_import(hapi_base_url, tmp_path / "other", [both]).older_skipped == 1

    expected = expected_resources([newer])
    (plan,) = [r for r in expected.values() if r.resource_type == "CarePlan"]
    _, found = server_matches(fhir_client, [plan])
    (stored,) = found
    assert stored["title"] == "Version 2"
    goals = [r for r in expected.values() if r.resource_type == "Goal"]
    _, goal_resources = server_matches(fhir_client, goals)
    assert all("v2" in g["description"]["text"] for g in goal_resources)  # type: ignore[index]


def procedure(value: str, status: str = "completed", subject: str | None = None) -> MappedResource:
    resource = {
        "resourceType": "Procedure",
        "identifier": [{"system": TEST_SYSTEM, "value": value}],
        "status": status,
        "subject": {"reference": subject} if subject else {"display": "test"},
    }
    return MappedResource("Procedure", TEST_SYSTEM, value, resource)


def test_rejected_resources_become_dead_letters_and_the_rest_lands(
    hapi_base_url: str, fhir_client: FhirClient, tmp_path: Path, events: Path
) -> None:
    expected = expected_resources([events])
    records: list[list[MappedResource]] = []
    for resource in expected.values():
        if resource.resource_type == "Procedure":
            records.append([resource])
        else:
            records.insert(0, [resource])
    bad = procedure(f"bad-{os.urandom(4).hex()}", status="inte-en-status")  # HAPI refuses it
    records.insert(len(records) // 2, [bad])
    outbox = open_outbox(tmp_path / "data")
    outbox.enqueue(records)

    tally = Tally()
    with FhirClient(EndpointSettings(base_url=hapi_base_url)) as client:
        engine = SyncEngine(outbox, client, tally, SyncSettings(batch_size=40, workers=2))
        assert engine.drain() is None
    assert tally.dead == 1
    assert outbox.stats().counts == {State.DONE: len(expected), State.DEAD: 1}
    (letter,) = outbox.dead_letters()
    assert letter.match_url == bad.match_url
    assert "inte-en-status" in letter.error  # the server's own reason
    assert_exactly_once(fhir_client, expected)

    listing = cli(tmp_path / "data", hapi_base_url, "sync", "--failed")
    assert listing.returncode == 0
    assert "inte-en-status" in listing.stdout and bad.identifier_value in listing.stdout


def test_unresolvable_reference_is_a_dead_letter_not_a_stop(
    hapi_base_url: str, tmp_path: Path
) -> None:
    value = f"orphan-{os.urandom(4).hex()}"
    orphan = procedure(value, subject=f"Patient?identifier={TEST_SYSTEM}|nobody-{value}")
    good = procedure(f"good-{value}")
    outbox = open_outbox(tmp_path / "data")
    outbox.enqueue([[orphan], [good]])
    tally = Tally()
    with FhirClient(EndpointSettings(base_url=hapi_base_url)) as client:
        assert SyncEngine(outbox, client, tally).drain() is None
    assert (tally.dead, tally.created) == (1, 1)
    (letter,) = outbox.dead_letters()
    assert letter.match_url == orphan.match_url and "match" in letter.error.lower()


def test_cli_import_exit_codes_and_masked_row_errors(
    hapi_base_url: str, tmp_path: Path, events: Path
) -> None:
    good = cli(tmp_path / "data", hapi_base_url, "import", str(events))
    assert good.returncode == 0, good.stdout + good.stderr
    assert "Resurser skapade" in good.stdout

    lines = events.read_text("utf-8").splitlines()
    good_pnr, rest = lines[1].split(";", 1)
    bad_pnr = good_pnr[:-1] + str((int(good_pnr[-1]) + 1) % 10)  # check digit wrong
    broken = events.with_name("events-broken.csv")
    broken.write_text("\n".join([*lines[:3], f"{bad_pnr};{rest}"]) + "\n", "utf-8")
    result = cli(tmp_path / "data", hapi_base_url, "import", str(broken))
    assert result.returncode == 2, result.stdout + result.stderr
    assert bad_pnr not in result.stdout + result.stderr  # masked everywhere
    assert bad_pnr[:8] + "-****" in result.stderr
    (report,) = (tmp_path / "data" / "reports").glob("import-*.csv")
    text = report.read_text("utf-8-sig")
    assert "events-broken.csv;4;Personnummer;" in text and bad_pnr not in text


def test_two_concurrent_imports_of_overlapping_data_leave_no_duplicates(
    hapi_base_url: str,
    fhir_client: FhirClient,
    profiles_installed: None,
    tmp_path: Path,
) -> None:
    rng = random.Random()
    both = write_events(tmp_path / "events-all.csv", rows=600, patients=120, rng=rng).path
    lines = both.read_text("utf-8").splitlines()
    header, rows = lines[0], lines[1:]
    first, second = tmp_path / "events-a.csv", tmp_path / "events-b.csv"
    first.write_text("\n".join([header, *rows[:450]]) + "\n", "utf-8")  # overlap: 150..450
    second.write_text("\n".join([header, *reversed(rows[150:])]) + "\n", "utf-8")
    expected = expected_resources([both])

    # Same outbox (SQLite locking) and separate outboxes (only the server's guards) at once.
    runs = [
        ("shared", first),
        ("shared", second),
        ("own-a", first),
        ("own-b", second),
    ]
    procs = [
        subprocess.Popen(
            [SIP_FHIR, "import", str(path)],
            env={
                **os.environ,
                "SIP_FHIR_BASE_URL": hapi_base_url,
                "SIP_FHIR_DATA_DIR": str(tmp_path / name),
                "SIP_FHIR_BATCH_SIZE": "30",
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, path in runs
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=500)
        assert proc.returncode == 0, out + err
    assert_exactly_once(fhir_client, expected)
