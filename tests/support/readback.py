"""Records loaded into a fake server, read back as the rules see them."""

from __future__ import annotations

import copy
from typing import Any

from adapter.domain import Record
from adapter.followup.facts import (
    PatientFacts,
    Translations,
    patient_facts,
    person_of,
    with_unit_runs,
)
from adapter.followup.load import LoadedPatient
from adapter.followup.state import unit_runs_of
from adapter.followup.tasks import read_task
from adapter.mapping import MappedResource, load_mappings, map_record
from adapter.settings import REPO_ROOT
from tests.support.records import person
from tests.support.rules import RULES

Json = dict[str, Any]


MAPPINGS = load_mappings(REPO_ROOT / "mappings")


TRANSLATIONS = Translations.from_mappings(MAPPINGS)


PATIENT = person("194005059805")


UNIT = "SE2321000057-E00000000001"


def as_stored(resources: list[MappedResource]) -> list[Json]:
    """Resources as a server holds them: one per identifier, an id each, and every conditional
    reference to one of them resolved to `Type/id`."""
    unique: dict[str, MappedResource] = {}
    for resource in resources:
        if resource.match_url not in unique or not resource.create_only:
            unique[resource.match_url] = resource
    ids = {url: f"{r.resource_type}/{n}" for n, (url, r) in enumerate(unique.items(), start=1)}

    def resolve(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: ids.get(v, v) if k == "reference" and isinstance(v, str) else resolve(v)
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [resolve(v) for v in value]
        return value

    return [
        resolve(copy.deepcopy(r.resource)) | {"id": ids[url].split("/")[1]}
        for url, r in unique.items()
    ]


def server_copy(recs: list[Record]) -> list[Json]:
    return as_stored([m for record in recs for m in map_record(record, MAPPINGS)])


def facts_of(recs: list[Record]) -> PatientFacts:
    resources = server_copy(recs)
    patients = [r for r in resources if r["resourceType"] == "Patient"]
    owned = [r for r in resources if r["resourceType"] != "Patient"]
    facts = patient_facts(person_of(patients[0]), owned, TRANSLATIONS, RULES.calendar)  # type: ignore[arg-type]
    runs = {UNIT: [r.run_date for r in unit_runs_of(x for x in recs if hasattr(x, "run_date"))]}
    facts.state = with_unit_runs(facts.state, runs)
    return facts


def loaded(recs: list[Record], tasks: list[Json] = ()) -> LoadedPatient:  # type: ignore[assignment]
    facts = facts_of(recs)
    facts.tasks = [t for task in tasks if (t := read_task(task)) is not None]
    return LoadedPatient("Patient/1", facts)
