"""The engine's 409 retry (tenacity): the same Bundle again after a doubling, jittered pause; a
412 or the last attempt goes on to splitting at once."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
import responses

from adapter.fhirclient import FhirClient
from adapter.settings import EndpointSettings
from adapter.sync import Outbox, State, SyncEngine, SyncSettings, Tally
from tests.support.engine_replies import BASE, Reply, created, entries_of, outcome, procedure


def _drain(
    tmp_path: Path, replies: list[Reply | None], attempts: int = 4
) -> tuple[list[int], list[float], Tally, Outbox]:
    outbox = Outbox.in_dir(tmp_path)
    outbox.enqueue([[procedure(f"p{i}")] for i in range(4)])
    sizes: list[int] = []
    sleeps: list[float] = []

    def reply(request: requests.PreparedRequest) -> Reply:
        sizes.append(entries_of(request))
        planned = replies[len(sizes) - 1] if len(sizes) <= len(replies) else None
        return planned or created(request)

    tally = Tally()
    settings = SyncSettings(batch_size=4, workers=1, conflict_pause=1.0, conflict_attempts=attempts)
    endpoint = EndpointSettings(base_url=BASE, max_attempts=1)
    with responses.RequestsMock() as mock, FhirClient(endpoint) as client:
        mock.add_callback(responses.POST, BASE, callback=reply)
        assert SyncEngine(outbox, client, tally, settings, sleep=sleeps.append).drain() is None
    return sizes, sleeps, tally, outbox


def test_409_pauses_double_with_jitter_and_the_bundle_is_resent(tmp_path: Path) -> None:
    conflict = outcome(409, "HAPI-0550: version conflict")
    sizes, sleeps, tally, outbox = _drain(tmp_path, [conflict, conflict, conflict])
    assert sizes == [4, 4, 4, 4]
    assert len(sleeps) == 3
    for attempt, pause in enumerate(sleeps):
        assert 2**attempt <= pause <= 2 ** (attempt + 1)  # 1 s doubled, up to +100 % jitter
    assert (tally.bundles, tally.retries, tally.created) == (4, 3, 4)
    assert outbox.stats().counts == {State.DONE: 4}


def test_412_is_not_retried_but_split(tmp_path: Path) -> None:
    several = outcome(412, "HAPI-0958: multiple matches")
    sizes, sleeps, tally, _ = _drain(tmp_path, [several])
    assert sleeps == []
    assert sizes[0] == 4 and max(sizes[1:]) <= 2  # split at once, no second send of 4
    assert tally.retries == 0


@pytest.mark.parametrize("attempts", [1, 2])
def test_the_attempt_budget_bounds_the_resends(tmp_path: Path, attempts: int) -> None:
    conflict = outcome(409, "HAPI-0550: version conflict")
    sizes, sleeps, _, _ = _drain(tmp_path, [conflict] * attempts, attempts)
    assert sizes[:attempts] == [4] * attempts
    assert sizes[attempts] < 4  # then split
    assert len(sleeps) == attempts - 1
