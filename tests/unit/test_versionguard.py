"""The plan-version guard's pure parts: which records go, and how a held plan is written."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from adapter.canonical import EXT_PLAN_VERSION, SP_BUSINESS_ID_UNIQUE
from adapter.sync.importer import plan_version
from adapter.sync.outbox import OutboxEntry
from adapter.sync.versionguard import ServerPlan, UniqueRule, decide, guard_bundle

SYSTEM = "https://example.org/plan"


def entry(resource_type: str, value: str, body: dict[str, object]) -> OutboxEntry:
    body = {
        "resourceType": resource_type,
        "identifier": [{"system": SYSTEM, "value": value}],
        **body,
    }
    return OutboxEntry(
        match_url=f"{resource_type}?identifier={SYSTEM}|{value}",
        resource_type=resource_type,
        identifier_system=SYSTEM,
        identifier_value=value,
        body=json.dumps(body),
        hash=value,
        create_only=False,
        server_version=None,
    )


def plan(value: str, version: int) -> OutboxEntry:
    ext = [{"url": EXT_PLAN_VERSION, "valueInteger": version}]
    return entry("CarePlan", value, {"extension": ext, "status": "active"})


def test_a_record_older_than_the_server_is_left_out_whole() -> None:
    old = [entry("Goal", "g1", {}), plan("p1", 1)]
    new = [entry("Goal", "g2", {}), plan("p2", 3)]
    server = {(SYSTEM, "p1"): ServerPlan("7", "4", 2), (SYSTEM, "p2"): ServerPlan("8", "1", 3)}
    decision = decide([old, new], plan_version, server)
    assert decision.send == [new]
    (older,) = decision.older
    assert (older.group, older.ours, older.theirs) == (old, 1, 2)
    assert "version 1 skrevs inte" in older.message and "version 2" in older.message
    assert decision.held == {new[1].match_url: ServerPlan("8", "1", 3)}  # same version: written


def test_a_plan_the_server_lacks_is_marked_absent_to_be_created() -> None:
    group = [entry("Goal", "g1", {}), plan("p1", 1)]
    decision = decide([group], plan_version, {})
    assert (decision.send, decision.older, decision.held) == ([group], [], {})
    assert decision.absent == {group[1].match_url}  # the plan only, not its Goal


def test_an_absent_plan_is_posted_not_matched_and_other_entries_keep_their_put() -> None:
    goal, care_plan = entry("Goal", "g1", {}), plan("p1", 1)
    bundle = {
        "resourceType": "Bundle",
        "entry": [
            {
                "fullUrl": f"urn:uuid:{n}",
                "resource": e.resource,
                "request": {"method": "PUT", "url": e.match_url},
            }
            for n, e in enumerate((goal, care_plan))
        ],
    }
    guarded = guard_bundle(bundle, {}, {care_plan.match_url})
    first, second = guarded["entry"]
    assert first["request"] == {"method": "PUT", "url": goal.match_url}
    assert second["request"] == {"method": "POST", "url": "CarePlan"}
    assert second["fullUrl"] == "urn:uuid:1" and "id" not in second["resource"]


def test_a_held_plan_is_put_by_id_with_if_match_and_keeps_its_full_url() -> None:
    care_plan = plan("p1", 2)
    bundle = {
        "resourceType": "Bundle",
        "entry": [
            {
                "fullUrl": "urn:uuid:1",
                "resource": care_plan.resource,
                "request": {"method": "PUT", "url": care_plan.match_url},
            }
        ],
    }
    guarded = guard_bundle(bundle, {care_plan.match_url: ServerPlan("42", "5", 1)})
    (only,) = guarded["entry"]
    assert only["fullUrl"] == "urn:uuid:1"
    assert only["resource"]["id"] == "42"
    assert only["request"] == {"method": "PUT", "url": "CarePlan/42", "ifMatch": 'W/"5"'}


class Searches:
    """A stand-in for FhirClient.search: what the server holds, and the searches asked."""

    def __init__(self, found: list[dict[str, object]]) -> None:
        self.found = found
        self.asked: list[tuple[str, dict[str, str]]] = []

    def search(self, resource_type: str, params: dict[str, str]) -> Iterator[dict[str, object]]:
        self.asked.append((resource_type, params))
        return iter(self.found)


@pytest.mark.parametrize(
    ("found", "active"), [([{"id": "business-identifier-unique"}], True), ([], False)]
)
def test_the_unique_rule_is_asked_once_by_url_and_status(
    found: list[dict[str, object]], active: bool
) -> None:
    client = Searches(found)
    rule = UniqueRule(client)  # type: ignore[arg-type]
    assert (rule.active(), rule.active()) == (active, active)
    (asked,) = client.asked
    assert asked[0] == "SearchParameter"
    assert asked[1]["url"] == SP_BUSINESS_ID_UNIQUE and asked[1]["status"] == "active"
