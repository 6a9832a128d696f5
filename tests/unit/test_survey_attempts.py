"""The survey answer page's attempt limit holds across replicas: an address that spreads its
guesses over several `serve` processes on one database (SIP_FHIR_DATABASE_URL) gets the limit
once, not once per process (adapter/survey/ratelimit.py)."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from adapter.api import create_app
from adapter.settings import Settings
from adapter.survey.ratelimit import RateLimit

LIMIT = 4


def replica(tmp_path: Path, name: str, database_url: str | None) -> TestClient:
    settings = Settings(
        base_url="http://127.0.0.1:9/fhir",  # never reached: the guesses are refused before
        data_dir=tmp_path / ("shared" if database_url is None else name),
        database_url=database_url,
        scheduler=False,
        survey_attempts_per_10min=LIMIT,
    )
    return TestClient(create_app(settings, readiness_checks={}), raise_server_exceptions=False)


def guess(client: TestClient, code: str) -> int:
    """One guessed code, with a valid form (CSRF) but no answers: 400 unless limited."""
    page = client.get("/enkat")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token
    return client.post("/enkat", data={"code": code, "csrf": token[1]}).status_code


@pytest.fixture(params=["sqlite", "postgres"])
def shared_database(request: pytest.FixtureRequest) -> str | None:
    """None: two processes on one data directory (SQLite); else one PostgreSQL database."""
    if request.param == "sqlite":
        return None
    url: str = request.getfixturevalue("database_url")
    return url


def test_guesses_spread_over_two_replicas_are_limited_as_one(
    tmp_path: Path, shared_database: str | None
) -> None:
    one = replica(tmp_path, "a", shared_database)
    two = replica(tmp_path, "b", shared_database)
    statuses = [guess((one, two)[n % 2], f"AAAAA-AAAA{n}") for n in range(2 * LIMIT)]
    assert statuses == [400] * LIMIT + [429] * LIMIT
    assert guess(one, "BBBBB-BBBBB") == guess(two, "BBBBB-BBBBB") == 429


def test_simultaneous_attempts_on_two_replicas_never_pass_the_limit(
    database_url: str, tmp_path: Path
) -> None:
    limits = [RateLimit(database_url, limit=LIMIT) for _ in range(2)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        allowed = list(pool.map(lambda n: limits[n % 2].allow("203.0.113.7"), range(40)))
    assert allowed.count(True) == LIMIT
    assert limits[0].addresses() == 1
