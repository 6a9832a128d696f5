"""The raw HAPI limit: prebuilt transaction Bundles of disjoint records, posted by a thread pool.

Disjoint: every resource (match URL) is in exactly one Bundle, so parallel posts never race on
the same conditional create or update. A record's resources reference only its own Patient and
each other, so grouping every record of one Patient into one Bundle makes the Bundles disjoint
(`disjoint_batches` checks it).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import requests

from adapter.mapping import MappedResource

FHIR_JSON = "application/fhir+json"
T = TypeVar("T")
HTTP_TIMEOUT = 600  # seconds: a 200-entry transaction on a loaded 2-core machine can be slow


def _patient_key(resources: list[MappedResource]) -> str:
    for resource in resources:
        if resource.resource_type == "Patient":
            return resource.match_url
    return resources[0].match_url


def patient_groups(records: Iterable[list[MappedResource]]) -> list[list[MappedResource]]:
    """Every record of one Patient together, in first-seen order (record order kept inside)."""
    groups: dict[str, list[MappedResource]] = {}
    for resources in records:
        if resources:
            groups.setdefault(_patient_key(resources), []).extend(resources)
    return list(groups.values())


def disjoint_batches(
    records: Iterable[list[MappedResource]], size: int
) -> Iterator[list[MappedResource]]:
    """Whole Patients' groups up to `size` distinct resources; no resource in two batches."""
    owner: dict[str, int] = {}
    batch: list[MappedResource] = []
    keys: set[str] = set()
    number = 0

    def close() -> list[MappedResource]:
        nonlocal batch, keys, number
        for key in keys:
            if owner.setdefault(key, number) != number:
                raise ValueError(f"{key} in two Bundles: the records are not disjoint")
        done, batch, keys, number = batch, [], set(), number + 1
        return done

    for group in patient_groups(records):
        fresh = {r.match_url for r in group} - keys
        if keys and len(keys) + len(fresh) > size:
            yield close()
        batch.extend(group)
        keys.update(r.match_url for r in group)
    if batch:
        yield close()


def post_parallel(base_url: str, bodies: Sequence[bytes], workers: int) -> float:
    """Post every Bundle, `workers` at a time (one session per thread); seconds taken."""
    local = threading.local()
    sessions: list[requests.Session] = []
    lock = threading.Lock()

    def post(body: bytes) -> None:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
            session.headers.update({"Content-Type": FHIR_JSON, "Accept": FHIR_JSON})
            with lock:
                sessions.append(session)
        response = session.post(base_url, data=body, timeout=HTTP_TIMEOUT)
        if response.status_code >= 300:
            raise RuntimeError(f"HTTP {response.status_code}: {response.text[:2000]}")

    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            started = time.perf_counter()
            for _ in pool.map(post, bodies):
                pass
            return time.perf_counter() - started
    finally:
        for session in sessions:
            session.close()


def split(items: Sequence[T], parts: int) -> list[Sequence[T]]:
    """`parts` contiguous slices of nearly equal length."""
    size, extra = divmod(len(items), parts)
    out: list[Sequence[T]] = []
    start = 0
    for index in range(parts):
        end = start + size + (1 if index < extra else 0)
        out.append(items[start:end])
        start = end
    return out
