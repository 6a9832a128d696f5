"""Mapped resources posted to the server and validated against the profiles."""

from __future__ import annotations

import re
import warnings
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from adapter.domain import Record
from adapter.fhirclient import FhirClient
from adapter.mapping import (
    MappedResource,
    Mappings,
    map_record,
    transaction_bundle,
)
from tests.support.profiles import errors, problems

BATCH = 200  # resources per transaction, as the sync engine sends them


Json = dict[str, Any]


_DETAILS = re.compile(r" for '.*| @ .*| \(.*")  # which code, where: left out of the summary


def unique_resources(records: Iterable[Record], mappings: Mappings) -> list[MappedResource]:
    """What a transaction would hold: one per identifier, the last (or full) one."""
    chosen: dict[str, MappedResource] = {}
    for record in records:
        for resource in map_record(record, mappings):
            earlier = chosen.get(resource.match_url)
            if earlier is None or not resource.create_only or earlier.create_only:
                chosen[resource.match_url] = resource
    return list(chosen.values())


def report(outcomes: list[tuple[str, Json]], count: int) -> list[str]:
    """The errors of the outcomes; their warnings, one line per kind, as a pytest warning."""
    found = [f"{label}: {e}" for label, outcome in outcomes for e in errors(outcome)]
    kinds: Counter[str] = Counter()
    for label, outcome in outcomes:
        for message in problems(outcome, "warning"):
            # one line per kind of warning: codes and positions vary, the reason does not
            kinds[f"{label}: {_DETAILS.sub('', message)}"] += 1
    summary = "; ".join(f"{n} st {kind}" for kind, n in sorted(kinds.items()))
    if summary:
        warnings.warn(f"$validate: {count} resurser, varningar: {summary}", stacklevel=3)
    return found


def validate_all(client: FhirClient, resources: list[MappedResource]) -> list[str]:
    """`$validate` each resource against its profile (`?profile=`); returns the errors."""

    def one(resource: MappedResource) -> tuple[str, Json]:
        return resource.resource_type, client.validate(resource.resource, resource.profile)

    with ThreadPoolExecutor(max_workers=4) as pool:
        return report(list(pool.map(one, resources)), len(resources))


def post(client: FhirClient, resources: list[MappedResource]) -> list[Json]:
    """Post in transactions of BATCH resources; returns the response entries."""
    entries: list[Json] = []
    for start in range(0, len(resources), BATCH):
        response = client.transaction(transaction_bundle(resources[start : start + BATCH]))
        entries.extend(response["entry"])
    return entries
