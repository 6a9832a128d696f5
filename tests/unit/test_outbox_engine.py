"""The engine's answers to faults a real server will not produce on demand (persistent 409, 413,
401): simulated with `responses`. What a real server does is tested in tests/integration."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
import responses

from adapter.fhirclient import FhirClient
from adapter.settings import EndpointSettings
from adapter.sync import Outbox, State, SyncEngine, SyncSettings, Tally
from tests.support.engine_replies import BASE, Reply, created, entries_of, outcome, procedure


@pytest.fixture
def outbox(tmp_path: Path) -> Outbox:
    box = Outbox.in_dir(tmp_path)
    box.enqueue([[procedure(f"p{i}")] for i in range(6)])
    return box


def drain(outbox: Outbox, reply: Callable[[requests.PreparedRequest], Reply]) -> tuple[Any, Tally]:
    tally = Tally()
    endpoint = EndpointSettings(base_url=BASE, max_attempts=1)
    with responses.RequestsMock() as mock, FhirClient(endpoint) as client:
        mock.add_callback(responses.POST, BASE, callback=reply)
        engine = SyncEngine(
            outbox,
            client,
            tally,
            SyncSettings(batch_size=6, workers=1, conflict_pause=0.0),
            sleep=lambda _s: None,
        )
        return engine.drain(), tally


def test_a_passing_409_is_resent_until_it_lands(outbox: Outbox) -> None:
    calls: list[int] = []

    def reply(request: requests.PreparedRequest) -> Reply:
        calls.append(entries_of(request))
        return outcome(409, "HAPI-0550: version conflict") if len(calls) <= 2 else created(request)

    stop, tally = drain(outbox, reply)
    assert stop is None
    assert calls == [6, 6, 6]  # the same Bundle, re-sent
    assert (tally.retries, tally.created, tally.dead) == (2, 6, 0)
    assert outbox.stats().counts == {State.DONE: 6}


def test_a_lasting_409_stops_the_run_and_loses_nothing(outbox: Outbox) -> None:
    stop, tally = drain(outbox, lambda _r: outcome(409, "HAPI-0550: version conflict"))
    assert stop is not None and stop.temporary
    assert tally.dead == 0  # not the data's fault: no dead letters
    assert outbox.stats().counts == {State.PENDING: 6}


def test_a_too_large_bundle_is_split_until_it_fits(outbox: Outbox) -> None:
    sizes: list[int] = []

    def reply(request: requests.PreparedRequest) -> Reply:
        sizes.append(entries_of(request))
        return created(request) if sizes[-1] <= 2 else (413, {}, "Payload Too Large")

    stop, tally = drain(outbox, reply)
    assert stop is None
    assert sizes[0] == 6 and max(sizes[1:]) <= 3
    assert tally.created == 6
    assert outbox.stats().counts == {State.DONE: 6}


def test_refused_credentials_stop_everything_and_keep_it_pending(outbox: Outbox) -> None:
    stop, tally = drain(outbox, lambda _r: outcome(403, "forbidden"))
    assert stop is not None and not stop.temporary
    assert "forbidden" in stop.message
    assert tally.dead == 0
    assert outbox.stats().counts == {State.PENDING: 6}


def test_an_answer_that_does_not_fit_the_bundle_is_not_taken_as_success(outbox: Outbox) -> None:
    def reply(_request: requests.PreparedRequest) -> Reply:
        return 200, {}, json.dumps({"resourceType": "Bundle", "type": "transaction-response"})

    stop, _ = drain(outbox, reply)
    assert stop is not None and not stop.temporary
    assert outbox.stats().counts == {State.PENDING: 6}
