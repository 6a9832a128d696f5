"""Helpers of the sync tests: generated source files, the resources they must give, and what
the server holds for them (counted per business identifier, so duplicates show)."""

from __future__ import annotations

import json
import os
import random
import subprocess
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import islice
from pathlib import Path

import requests

from adapter.fhirclient import FhirClient
from adapter.mapping import MappedResource, load_mappings, map_record
from adapter.settings import REPO_ROOT, EndpointSettings
from adapter.sources import read_file
from adapter.sync import Importer, SyncSettings, Tally, open_outbox, plan_version
from tests.support.formats import EVENTS_LINE as EVENT_HEADER
from tests.support.people import EVENTS_ONLY, fictional_personnummer
from tests.support.processes import SIP_FHIR

MAPPINGS_DIR = REPO_ROOT / "mappings"
CODES = ("AU124", "AU125", "AW010", "UPPF", "SIPKALL")
CONTACTS = ("besök", "telefon", "video", "hembesök")


def unit_hsa_id(rng: random.Random) -> str:
    """A fictional unit of this test alone: the events' identifiers depend on it."""
    return f"SE2321000057-E{rng.randrange(10**11):011d}"


@dataclass(frozen=True)
class Generated:
    path: Path
    rows: int
    patients: list[str]


def write_events(path: Path, rows: int, patients: int, rng: random.Random) -> Generated:
    """An events CSV of `rows` distinct rows over `patients` patients."""
    people: list[str] = []
    while len(people) < patients:  # distinct: the rows must be
        if (person := fictional_personnummer(rng, EVENTS_ONLY)) not in people:
            people.append(person)
    unit = unit_hsa_id(rng)
    start = date(2024, 1, 1)
    lines = [EVENT_HEADER]
    for i in range(rows):
        day = start + timedelta(days=i // patients)  # row i: distinct (patient, day) pairs
        lines.append(
            f"{people[i % patients]};{day.isoformat()};{rng.choice(CODES)};{unit};"
            f"{rng.choice(CONTACTS)};"
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Generated(path, rows, people)


def plan_line(
    plan_id: str, version: int, patient: str, *, title: str = "SIP", goals: int = 2
) -> str:
    """One plans.jsonl line: a SIP with goals, actions and participants."""
    return json.dumps(
        {
            "source_system": "synctest",
            "plan_id": plan_id,
            "version": version,
            "kind": "sip",
            "patient": patient,
            "status": "active",
            "title": title,
            "created": "2024-10-01",
            "updated": f"2024-10-{version + 1:02d}",
            "kva": "AU124",
            "unit_hsa_id": "SE2321000057-E00000000001",
            "what_matters": "Att kunna bo kvar hemma",
            "overall_responsibility": "region",
            "goals": [
                {"id": f"g{g}", "text": f"Mål {g} v{version}", "expressed_by": "patient"}
                for g in range(goals)
            ],
            "actions": [
                {
                    "text": "Hemtjänst morgon och kväll",
                    "responsible": "kommun",
                    "role": "hemtjanst",
                },
                {"text": "Träna dagligen", "responsible": "patient", "goal": "g0"},
            ],
            "participants": [
                {
                    "role": "fast-vardkontakt",
                    "name": "Karin Ek",
                    "hsa_id": "SE2321000057-P00000000011",
                    "organization": "Aneby vårdcentral",
                    "huvudman": "region",
                }
            ],
        },
        ensure_ascii=False,
    )


def expected_resources(paths: Iterable[Path]) -> dict[str, MappedResource]:
    """What importing `paths` must leave on the server: by match URL, newest plan version."""
    mappings = load_mappings(MAPPINGS_DIR)
    found: dict[str, MappedResource] = {}
    versions: dict[str, int] = {}
    for path in paths:
        for record in read_file(path, mappings_dir=MAPPINGS_DIR).records():
            resources = map_record(record, mappings)
            plan = next((v for r in resources if (v := plan_version(r)) is not None), None)
            key = next((r.match_url for r in resources if r.resource_type == "CarePlan"), "")
            if plan is not None:
                if plan < versions.get(key, plan):
                    continue
                versions[key] = plan
            for resource in resources:
                earlier = found.get(resource.match_url)
                if earlier is None or not resource.create_only or earlier.create_only:
                    found[resource.match_url] = resource
    return found


def _chunks(items: Sequence[MappedResource], size: int) -> Iterator[list[MappedResource]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def server_matches(
    client: FhirClient, expected: Iterable[MappedResource]
) -> tuple[Counter[str], list[dict[str, object]]]:
    """How many server resources carry each expected identifier, and those resources.

    Searched by identifier lists (POST _search: personnummer stay out of URLs), so only this
    test's data counts, however much else the shared server holds.
    """
    counts: Counter[str] = Counter()
    resources: list[dict[str, object]] = []
    by_type: dict[tuple[str, str], list[MappedResource]] = {}
    for item in expected:
        by_type.setdefault((item.resource_type, item.identifier_system), []).append(item)
    for (resource_type, system), items in by_type.items():
        wanted = {item.identifier_value: item.match_url for item in items}
        for chunk in _chunks(items, 100):
            values = ",".join(f"{system}|{_escape(i.identifier_value)}" for i in chunk)
            params = {"identifier": values, "_count": "500"}
            for resource in client.search(resource_type, params, post=True):
                resources.append(resource)
                for ident in resource.get("identifier", []):
                    if ident.get("system") == system and ident.get("value") in wanted:
                        counts[wanted[ident["value"]]] += 1
    return counts, resources


def _escape(value: str) -> str:
    for char in ("\\", "|", ",", "$"):
        value = value.replace(char, "\\" + char)
    return value


def assert_exactly_once(client: FhirClient, expected: dict[str, MappedResource]) -> None:
    """Every expected resource is on the server exactly once: none missing, no duplicates."""
    counts, _ = server_matches(client, expected.values())
    missing = [url for url in expected if counts[url] == 0]
    duplicated = {url: n for url, n in counts.items() if n > 1}
    assert not missing, f"{len(missing)} of {len(expected)} missing, e.g. {missing[:3]}"
    assert not duplicated, f"duplicates: {list(duplicated.items())[:3]}"


def version_ids(client: FhirClient, expected: dict[str, MappedResource]) -> dict[str, str]:
    """meta.versionId of each expected resource on the server."""
    _, resources = server_matches(client, expected.values())
    by_key = {
        (m.resource_type, m.identifier_system, m.identifier_value): u for u, m in expected.items()
    }
    versions: dict[str, str] = {}
    for resource in resources:
        for ident in resource.get("identifier", []):  # type: ignore[union-attr]
            url = by_key.get((resource["resourceType"], ident.get("system"), ident.get("value")))
            if url:
                versions[url] = str(resource["meta"]["versionId"])  # type: ignore[index]
    return versions


def history_counts(base_url: str, resources: Iterable[dict[str, object]]) -> list[int]:
    """How many versions the server keeps of each resource (`_history`, by server id)."""
    counts = []
    with requests.Session() as session:
        for resource in resources:
            url = f"{base_url}/{resource['resourceType']}/{resource['id']}/_history"
            answer = session.get(url, params={"_summary": "count"}, timeout=60)
            answer.raise_for_status()
            counts.append(int(answer.json()["total"]))
    return counts


def importer(
    base_url: str, data_dir: Path, *, batch_size: int = 50, workers: int = 2
) -> tuple[Importer, Tally]:
    tally = Tally()
    client = FhirClient(EndpointSettings(base_url=base_url), on_retry=tally.client_retry)
    settings = SyncSettings(batch_size=batch_size, workers=workers)
    return Importer(open_outbox(data_dir), client, MAPPINGS_DIR, tally, settings), tally


def cli(data_dir: Path, base_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SIP_FHIR_BASE_URL": base_url,
        "SIP_FHIR_DATA_DIR": str(data_dir),
        "SIP_FHIR_MAX_RETRY_SECONDS": "30",
    }
    return subprocess.run(
        [SIP_FHIR, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
