"""A Goal dropped by a new plan version is cancelled, through the outbox (issue 11.6)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from adapter.domain import Plan, PlanAction, Responsible
from adapter.mapping import load_mappings, map_record
from adapter.mapping.stale import dropped_goals
from adapter.settings import REPO_ROOT
from adapter.sync.importer import open_outbox
from adapter.sync.outbox import Outbox
from tests.support.outbox import rows
from tests.support.records import sip

MAPPINGS = load_mappings(REPO_ROOT / "mappings")


def _version(number: int, goal_ids: tuple[str, ...]) -> Plan:
    plan = sip()
    return replace(
        plan,
        version=number,
        goals=tuple(g for g in plan.goals if g.id in goal_ids),
        actions=(PlanAction("Samordna", Responsible.REGION),),
    )


def _goals(outbox: Outbox) -> dict[str, str]:
    goals = rows(outbox, "SELECT id_value, body FROM resource WHERE resource_type = 'Goal'")
    return {r.id_value: json.loads(r.body)["lifecycleStatus"] for r in goals}


def test_a_goal_dropped_by_the_next_version_is_cancelled_and_kept_ones_stay(
    tmp_path: Path,
) -> None:
    outbox = open_outbox(tmp_path)
    first = outbox.enqueue([map_record(_version(1, ("g1", "g2")), MAPPINGS)])
    assert first.queued == 5  # Patient, 2 Goals, CareTeam, CarePlan
    second = outbox.enqueue([map_record(_version(2, ("g1",)), MAPPINGS)])
    assert _goals(outbox) == {"lifecare:SIP-77:g1": "active", "lifecare:SIP-77:g2": "cancelled"}
    assert second.queued == 2  # the CarePlan (version, goal list) and the cancelled Goal
    again = outbox.enqueue([map_record(_version(2, ("g1",)), MAPPINGS)])
    assert again.queued == 0  # nothing new: the cancelled Goal is not written twice
    back = outbox.enqueue([map_record(_version(3, ("g1", "g2")), MAPPINGS)])
    assert _goals(outbox)["lifecare:SIP-77:g2"] == "active" and back.queued == 2


def test_an_older_version_arriving_late_cancels_nothing(tmp_path: Path) -> None:
    outbox = open_outbox(tmp_path)
    outbox.enqueue([map_record(_version(2, ("g1",)), MAPPINGS)])
    late = outbox.enqueue([map_record(_version(1, ("g1", "g2")), MAPPINGS)])
    assert late.older_skipped == 1
    assert _goals(outbox) == {"lifecare:SIP-77:g1": "active"}


def test_nothing_is_stale_for_a_plan_never_mapped_before() -> None:
    resources = map_record(_version(1, ("g1",)), MAPPINGS)
    assert dropped_goals(resources, lambda _url: None) == []
