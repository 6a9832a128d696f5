"""A stand-in for the FHIR server's answers to the follow-up loader (no tests here).

`adapter.followup.load` asks for Patients by `_id`, for each per-patient type by `subject`, and
for absent Prea60 runs in batch Bundles. `LoaderServer` answers those from memory, so a test or a
benchmark can run the loader (and what reads through it) over many patients without HAPI, and
counts the searches. `region(...)` builds such a server from domain records with the real mapping.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from adapter.domain import PersonId, Record
from adapter.fhirclient import FhirClient
from adapter.mapping import Mappings, map_record
from adapter.mapping.fhir import Json, patient_reference

PNR = "http://electronichealth.se/identifier/personnummer"


class LoaderServer:
    """The loader's FhirClient calls, answered from `owned` (`Patient/<id>` → its resources).
    Each Patient of `patients` (id → person) carries the person's personnummer."""

    def __init__(self, patients: Mapping[str, PersonId], owned: Mapping[str, list[Json]]) -> None:
        self.patients = dict(patients)
        self.owned = dict(owned)
        self.searches: Counter[str] = Counter()
        self._lock = threading.Lock()  # the loader searches from several threads

    @property
    def refs(self) -> set[str]:
        return {f"Patient/{key}" for key in self.patients}

    def search(
        self, resource_type: str, params: Iterable[tuple[str, str]], post: bool = False
    ) -> list[Json]:
        with self._lock:
            self.searches[resource_type] += 1
        values = dict(params)
        if resource_type == "Patient":
            return [
                {
                    "resourceType": "Patient",
                    "id": key,
                    "identifier": [{"system": PNR, "value": self.patients[key].digits}],
                }
                for key in values["_id"].split(",")
            ]
        return [
            resource
            for ref in values["subject"].split(",")
            for resource in self.owned.get(ref, ())
            if resource["resourceType"] == resource_type
        ]

    batch_reads = FhirClient.batch_reads  # the real client's batching, on this batch()

    def batch(self, bundle: Json) -> Json:
        """Every search of the batch (the absent runs) finds nothing."""
        with self._lock:
            self.searches["batch"] += 1
        empty = {"resourceType": "Bundle", "type": "searchset", "entry": []}
        return {
            "entry": [
                {"resource": empty, "response": {"status": "200 OK"}} for _ in bundle["entry"]
            ]
        }


def _with_literal_patients(value: Any, refs: Mapping[str, str]) -> Any:
    """`value` with each conditional Patient reference (`Patient?identifier=...`) made literal,
    as the server's transaction resolves it."""
    if isinstance(value, dict):
        reference = value.get("reference")
        if isinstance(reference, str) and reference in refs:
            return {**value, "reference": refs[reference]}
        return {key: _with_literal_patients(item, refs) for key, item in value.items()}
    if isinstance(value, list):
        return [_with_literal_patients(item, refs) for item in value]
    return value


def region(records: Iterable[Record], mappings: Mappings) -> LoaderServer:
    """The records mapped as the importer maps them, one Patient per person (ids from 1, in
    order of first appearance), every other resource with an id and a literal subject."""
    ids: dict[PersonId, str] = {}
    refs: dict[str, str] = {}
    owned: dict[str, list[Json]] = defaultdict(list)
    count = 0
    for record in records:
        person = record.patient
        if person not in ids:
            ids[person] = str(len(ids) + 1)
            refs[str(patient_reference(person)["reference"])] = f"Patient/{ids[person]}"
        for mapped in map_record(record, mappings):
            if mapped.resource_type == "Patient":
                continue
            count += 1
            resource = _with_literal_patients({**mapped.resource, "id": f"r{count}"}, refs)
            owned[f"Patient/{ids[person]}"].append(resource)
    return LoaderServer({key: person for person, key in ids.items()}, owned)
