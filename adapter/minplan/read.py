"""Read one CarePlan with the Goals and CareTeam it references: one search, `_include`d."""

from __future__ import annotations

from dataclasses import dataclass

from adapter.fhirclient import FhirClient
from adapter.followup.facts import reference_of
from adapter.mapping.fhir import Json


@dataclass(frozen=True, slots=True)
class PlanResources:
    care_plan: Json
    goals: tuple[Json, ...]
    team: Json | None


def read_plan(client: FhirClient, plan_id: str) -> PlanResources | None:
    """CarePlan/`plan_id` and what it references; None when there is no such CarePlan."""
    params = [
        ("_id", plan_id),
        ("_include", "CarePlan:goal"),
        ("_include", "CarePlan:care-team"),
    ]
    found: dict[str, Json] = {}
    for bundle in client.search_bundles("CarePlan", params):
        for entry in bundle.get("entry", ()):
            resource = entry.get("resource") or {}
            found[f"{resource.get('resourceType')}/{resource.get('id')}"] = resource
    care_plan = found.get(f"CarePlan/{plan_id}")
    if care_plan is None:
        return None
    goals = tuple(found[r] for g in care_plan.get("goal", ()) if (r := reference_of(g)) in found)
    teams = (found.get(reference_of(t) or "") for t in care_plan.get("careTeam", ()))
    return PlanResources(care_plan, goals, next((t for t in teams if t is not None), None))
