"""Indicators read and counted in chunks against the real HAPI server (issue "Region scale" 5):
exactly the results of reading every patient at once and counting them together, with chunks
small enough that the patients of a unit span several, and no more round trips.

The one-shot way below is what `indicators_from_server` did before: the same scope, every state
from `load_states`, then `compute_units`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

from adapter.fhirclient import FhirClient
from adapter.followup.load import CHUNK_SIZE, load_states
from adapter.followup.rulesfile import load_rules
from adapter.indicators.compute import IndicatorResult
from adapter.indicators.store import compute_units, indicator_scope, indicators_from_server
from adapter.settings import REPO_ROOT, EndpointSettings
from tests.support.indicators import GROUP, MAPPINGS, PERIOD, WITH_PLAN, Scenario, on_server

pytestmark = pytest.mark.integration

RULES = load_rules(REPO_ROOT / "mappings" / "rules.json")


BATCH = ("POST", "fhir")  # a batch Bundle to the base: the absent runs (load._absent_runs)
# A search's next page. Chunks of persons (not of Patient ids, as load_states's) may split a
# type's resources over pages differently: one page more or less, not one search.
PAGE = ("GET", "fhir")


class Requests:
    """A FhirClient `on_request` callback: the requests by method and resource type."""

    def __init__(self) -> None:
        self.made: Counter[tuple[str, str]] = Counter()

    def __call__(self, method: str, path: str, status: int | None, seconds: float) -> None:
        parts = path.rstrip("/").split("/")
        self.made[(method, parts[-2] if parts[-1] == "_search" else parts[-1])] += 1


@pytest.fixture(scope="module")
def scenario(fhir_client: FhirClient) -> Scenario:
    return on_server(fhir_client)


@pytest.fixture
def counted(hapi_base_url: str) -> Iterator[tuple[FhirClient, Requests]]:
    requests = Requests()
    with FhirClient(EndpointSettings(base_url=hapi_base_url), on_request=requests) as client:
        yield client, requests


def _one_shot(
    client: FhirClient, units: list[str]
) -> tuple[list[IndicatorResult], dict[object, str]]:
    refs, chosen = indicator_scope(client, units, PERIOD, RULES)
    loaded = load_states(
        client, as_of=PERIOD.end, rules=RULES, patient_refs=refs, mappings=MAPPINGS
    )
    states = list(loaded.states().values())
    references = {person: patient.reference for person, patient in loaded.patients.items()}
    return compute_units(states, chosen, PERIOD, RULES), references


@pytest.mark.parametrize("chunk_size", [1, 7])
def test_indicators_in_chunks_equal_the_one_shot_count(
    fhir_client: FhirClient, scenario: Scenario, chunk_size: int
) -> None:
    units = [scenario.unit, scenario.empty_unit, scenario.other_unit]
    expected, expected_references = _one_shot(fhir_client, units)
    results, references = indicators_from_server(
        fhir_client, units, PERIOD, RULES, mappings=MAPPINGS, chunk_size=chunk_size
    )
    assert results == expected  # counts, subjects, items, scores, targets, in the same order
    assert references == expected_references
    # Several chunks: the unit's risk group alone is GROUP patients.
    assert len(references) > 2 * chunk_size
    coverage = results[0]
    assert (coverage.unit_hsa_id, coverage.numerator, coverage.denominator) == (
        scenario.unit,
        WITH_PLAN,
        GROUP,
    )


def test_indicators_in_chunks_make_no_more_round_trips(
    counted: tuple[FhirClient, Requests], scenario: Scenario
) -> None:
    client, requests = counted
    units = [scenario.unit, scenario.other_unit]
    _one_shot(client, units)
    before = Counter(requests.made)
    requests.made.clear()
    _, references = indicators_from_server(client, units, PERIOD, RULES, mappings=MAPPINGS)
    after = requests.made
    assert after[("POST", "Patient")] >= 1 and after[("POST", "Procedure")] >= 2  # scope + chunk
    # The same searches: per CHUNK_SIZE Patients one Patient search, per chunk one per type (a
    # Patient without personnummer is in no chunk: fewer, never more).
    searches = set(before) | set(after)
    assert all(after[k] <= before[k] for k in searches - {BATCH, PAGE}), (before, after)
    # The absent runs: a later chunk asks only for gaps no earlier one asked (usually none).
    chunks = -(-len(references) // CHUNK_SIZE)
    assert after[BATCH] <= before[BATCH] + chunks - 1
