"""The server enforces one resource per business identifier (profiles/SearchParameter-business-
identifier-unique.json, a HAPI unique combo index), whatever the timing of concurrent writers.

The race it closes (seen on HAPI over PostgreSQL): HAPI guards a conditional create with a unique
row per match URL (HFJ_RES_SEARCH_URL), but deletes that row once the resource is updated. A long
transaction resolves its conditional PUTs first (no match yet), then writes them one by one; if
meanwhile another writer creates the resource and a third updates it, the long transaction
creates a second one. With the rule the server refuses it (409, HAPI-1093) and a retry matches.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from typer.testing import CliRunner

from adapter.canonical import ID_PROCEDURE
from adapter.cli import app
from adapter.fhirclient import Conflict, FhirClient
from adapter.mapping.fhir import Json
from adapter.settings import EndpointSettings
from tests.support.business_ids import WRITTEN

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("profiles_installed")]

FILLERS = 400  # resources the long transaction writes before the contested ones
TARGETS = 3  # contested identifiers per round
# When the fast writes start, as a share of how long such a transaction takes on this server now:
# after the long one resolved its conditional URLs, before it reaches the contested entries.
FRACTIONS = (0.1, 0.2, 0.05, 0.3, 0.4)
MAX_ROUNDS = 10
UNIQUE_REFUSAL = "HAPI-1093"


def procedure(value: str, note: str) -> Json:
    return {
        "resourceType": "Procedure",
        "status": "completed",
        "identifier": [{"system": ID_PROCEDURE, "value": value}],
        "subject": {"identifier": {"system": "urn:example:patient", "value": "race"}},
        "note": [{"text": note}],
    }


def criteria(value: str) -> str:
    return f"identifier={ID_PROCEDURE}|{value}"


def transaction(values: list[str], note: str) -> Json:
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": procedure(value, note),
                "request": {"method": "PUT", "url": f"Procedure?{criteria(value)}"},
            }
            for value in values
        ],
    }


def counts(client: FhirClient, values: list[str]) -> Counter[str]:
    tokens = ",".join(f"{ID_PROCEDURE}|{value}" for value in values)
    params = {"identifier": tokens, "_elements": "identifier", "_count": str(4 * len(values))}
    return Counter(
        r["identifier"][0]["value"] for r in client.search("Procedure", params, post=True)
    )


@dataclass
class Round:
    long_answer: str  # "200" or the 409's message
    fast_writes: int  # conditional PUTs that landed while the long transaction ran
    counts: Counter[str]


@pytest.fixture
def second_client(hapi_base_url: str) -> Iterator[FhirClient]:
    with FhirClient(EndpointSettings(base_url=hapi_base_url)) as client:
        yield client


def race_round(long_client: FhirClient, fast: FhirClient, delay: float) -> Round:
    """One long transaction (fillers, then the targets) against a create and an update of each
    target by single conditional PUTs, sent while the long one is still writing its fillers."""
    targets = [uuid.uuid4().hex for _ in range(TARGETS)]
    fillers = [uuid.uuid4().hex for _ in range(FILLERS)]
    answer: list[str] = []

    def long_write() -> None:
        try:
            long_client.transaction(transaction(fillers + targets, "long"))
            answer.append("200")
        except Conflict as error:
            answer.append(error.message)

    thread = threading.Thread(target=long_write)
    thread.start()
    time.sleep(delay)
    landed = 0
    for note in ("create", "update"):
        for value in targets:
            try:
                fast.conditional_update(procedure(value, note), criteria(value))
            except Conflict:  # the long transaction's row was first: it holds the identifier
                continue
            landed += thread.is_alive()
    thread.join(timeout=300)
    return Round(answer[0], landed, counts(fast, targets))


def long_transaction_seconds(client: FhirClient) -> float:
    started = time.monotonic()
    client.transaction(transaction([uuid.uuid4().hex for _ in range(FILLERS + TARGETS)], "time"))
    return time.monotonic() - started


def test_a_long_transaction_never_creates_a_second_resource_of_an_identifier(
    fhir_client: FhirClient, second_client: FhirClient
) -> None:
    seconds = long_transaction_seconds(second_client)
    rounds: list[Round] = []
    while len(rounds) < MAX_ROUNDS:
        delay = FRACTIONS[len(rounds) % len(FRACTIONS)] * seconds
        round_ = race_round(second_client, fhir_client, delay)
        rounds.append(round_)
        assert set(round_.counts.values()) == {1}, (delay, round_)  # without the rule: 2
        if UNIQUE_REFUSAL in round_.long_answer and round_.fast_writes:
            return  # the race was run, and the server refused the second create
    pytest.fail(f"no round raced ({seconds:.1f} s per transaction): {rounds}")


def test_concurrent_conditional_writers_leave_one_resource_and_retries_match_it(
    fhir_client: FhirClient, hapi_base_url: str
) -> None:
    value, writers = uuid.uuid4().hex, 8
    start = threading.Barrier(writers)
    results: list[str] = []

    def write(number: int) -> None:
        with FhirClient(EndpointSettings(base_url=hapi_base_url)) as client:
            start.wait()
            # A 409 is retried, as the sync engine does; eight writers updating one resource also
            # meet version conflicts among themselves (seen on PostgreSQL), so the budget is wide.
            for attempt in range(30):
                try:
                    result = client.conditional_update(
                        procedure(value, f"writer {number}"), criteria(value)
                    )
                except Conflict:
                    time.sleep(min(0.05 * (attempt + 1), 0.5))
                    continue
                results.append("created" if result.created else "updated")
                return

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)

    assert counts(fhir_client, [value]) == Counter({value: 1})
    assert sorted(results) == ["created"] + ["updated"] * (writers - 1)


def keyed(resource_type: str, system: str, value: str) -> Json:
    """A minimal resource of the type carrying the business identifier (Provenance: its tag)."""
    if resource_type == "Provenance":  # its key is a meta.tag; other tags are not keys
        return {
            "resourceType": "Provenance",
            "meta": {"tag": [{"system": system, "code": value}]},
            "recorded": "2026-12-04T10:00:00Z",
            "target": [{"identifier": {"system": "urn:example:target", "value": value}}],
            "agent": [{"who": {"display": "test"}}],
        }
    return {"resourceType": resource_type, "identifier": [{"system": system, "value": value}]}


@pytest.mark.parametrize(("resource_type", "system"), sorted(WRITTEN))
def test_a_second_resource_with_the_identifier_is_refused_for_every_written_type(
    fhir_client: FhirClient, resource_type: str, system: str
) -> None:
    value = uuid.uuid4().hex
    first = fhir_client.create(keyed(resource_type, system, value))
    with pytest.raises(Conflict) as caught:
        fhir_client.create(keyed(resource_type, system, value))
    assert caught.value.status == 409 and UNIQUE_REFUSAL in caught.value.message
    assert first.id in caught.value.message  # it names the resource that holds the identifier
    other = fhir_client.create(keyed(resource_type, "urn:example:other-system", value))
    assert other.created  # another system's identifier is not ours to constrain


def test_server_check_says_the_server_enforces_unique_identifiers(hapi_base_url: str) -> None:
    args = ["server", "check", "--base-url", hapi_base_url, "--hook-wait", "0"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    (row,) = [line for line in result.output.splitlines() if "Unika affärsidentifierare" in line]
    assert "ja" in row and "profiles install" not in result.output
