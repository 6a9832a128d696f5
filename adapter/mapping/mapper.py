"""Dispatch: any domain record → its FHIR resources, dependencies first (the Patient first)."""

from __future__ import annotations

from adapter.domain import DischargeNotice, Event, Plan, Prea60Row, Record
from adapter.mapping.codes import Mappings
from adapter.mapping.discharge import map_discharge
from adapter.mapping.events import map_event
from adapter.mapping.narrative import with_narrative
from adapter.mapping.plans import map_plan
from adapter.mapping.prea60 import map_prea60
from adapter.mapping.resource import MappedResource


def map_record(record: Record, mappings: Mappings) -> list[MappedResource]:
    """Pure: the same record and mappings always give the same resources, each with its
    generated narrative (added here, once, rather than in every mapper)."""
    resources = _mapped(record, mappings)
    for resource in resources:
        with_narrative(resource.resource)
    return resources


def _mapped(record: Record, mappings: Mappings) -> list[MappedResource]:
    match record:
        case Prea60Row():
            return map_prea60(record)
        case Plan():
            return map_plan(record, mappings)
        case Event():
            return map_event(record, mappings)
        case DischargeNotice():
            return map_discharge(record)
    raise TypeError(f"no mapping for {type(record).__name__}")
