"""What a new plan version makes stale: the Goals it no longer has (pure).

Every version of a plan maps to the same identifiers, so a new version replaces the CarePlan, its
CareTeam and the Goals it still has; a Goal the new version dropped would stay `active` on the
server. The outbox keeps what was last mapped for each business key, so the previous version's
CarePlan (its `goal` references are match URLs) tells which Goals were dropped, and their stored
bodies are written again as `cancelled`, in the same transaction as the new version.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from adapter.canonical import ID_GOAL
from adapter.mapping.readback import business_identifier
from adapter.mapping.resource import MappedResource

CANCELLED = "cancelled"

Stored = Callable[[str], dict[str, Any] | None]  # match URL → the body last mapped, or None


class _Mapped(Protocol):
    @property
    def resource_type(self) -> str: ...
    @property
    def resource(self) -> dict[str, Any]: ...
    @property
    def match_url(self) -> str: ...


def _goal_urls(care_plan: dict[str, Any]) -> list[str]:
    return [str(ref["reference"]) for ref in care_plan.get("goal", ()) if "reference" in ref]


def dropped_goals(resources: Sequence[_Mapped], stored: Stored) -> list[MappedResource]:
    """The Goals the stored version of the record's CarePlan had and this one has not, cancelled.

    Nothing when the plan was not mapped before, or a dropped Goal is already cancelled.
    """
    cancelled: list[MappedResource] = []
    for plan in (r for r in resources if r.resource_type == "CarePlan"):
        previous = stored(plan.match_url)
        if previous is None:
            continue
        kept = set(_goal_urls(plan.resource))
        for url in _goal_urls(previous):
            goal = stored(url) if url not in kept else None
            key = business_identifier(goal, ID_GOAL) if goal else None
            if goal is None or key is None or goal.get("lifecycleStatus") == CANCELLED:
                continue
            body = copy.deepcopy(goal)
            body["lifecycleStatus"] = CANCELLED
            cancelled.append(MappedResource("Goal", ID_GOAL, key, body))
    return cancelled
