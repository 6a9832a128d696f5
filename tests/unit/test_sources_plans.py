"""Plans: the JSON Lines reader on files, API bodies and parsed objects; schema to domain."""

from __future__ import annotations

import io
from datetime import date
from typing import Any

import pytest

from adapter.domain import (
    ExpressedBy,
    Huvudman,
    ParticipantRole,
    Plan,
    PlanKind,
    Responsible,
    RowError,
)
from adapter.sources import PlanIn, read_plan_lines, read_plan_objects, read_plans
from adapter.sources.plans import json_path
from tests.support.plan_lines import SIP, lines


def only_plan(reading: Any) -> Plan:
    items = list(reading)
    assert [type(i) for i in items] == [Plan], items
    return items[0]  # type: ignore[no-any-return]


def test_a_sip_becomes_a_domain_plan() -> None:
    plan = only_plan(read_plan_lines(lines(SIP), name="api"))
    assert plan.key == "lifecare:SIP-1"
    assert plan.kind is PlanKind.SIP
    assert plan.patient.digits == "193309279887"
    assert plan.unit_hsa_id == "SE2321000057-E00000000101"  # normalised
    assert plan.what_matters == "Att bo kvar hemma"
    assert plan.overall_responsibility is Huvudman.KOMMUN
    assert plan.goals[0].due == date(2025, 3, 31)
    assert plan.goals[0].expressed_by is ExpressedBy.PATIENT
    assert [(a.responsible, a.role, a.goal) for a in plan.actions] == [
        (Responsible.KOMMUN, "hemtjanst", None),
        (Responsible.PATIENT, None, "g1"),
    ]
    assert plan.participant(ParticipantRole.SAMORDNINGSANSVARIG).huvudman is Huvudman.KOMMUN
    assert plan.participant("narstaende").name is None  # blank optional text -> None
    assert plan.agreed_appointments[0].with_whom == "arbetsterapeut"
    assert plan.source.file == "api" and plan.source.line == 1


def test_versions_are_all_yielded_in_order() -> None:
    v2 = {**SIP, "version": 2, "updated": "2024-12-01", "status": "completed"}
    reading = read_plan_lines(lines(v2, SIP), name="api")
    assert [(p.version, p.source.line) for p in reading.records()] == [(2, 1), (1, 2)]


def test_api_body_lines_with_crlf_and_blank_lines() -> None:
    body = "\r\n".join(["", *lines(SIP), "  ", *lines({**SIP, "plan_id": "SIP-2"}), ""])
    reading = read_plan_lines(io.StringIO(body), name="POST /plans")
    assert [p.source.line for p in reading.records()] == [2, 4]
    assert reading.summary.rows == 2


def test_parsed_objects_keep_the_callers_numbers() -> None:
    objects = [(1, SIP), (2, "not a plan"), (3, {**SIP, "status": "paused"})]
    reading = read_plan_objects(objects, name="body")
    items = list(reading)
    assert isinstance(items[0], Plan)
    assert [(e.line, e.column) for e in items[1:] if isinstance(e, RowError)] == [
        (2, None),
        (3, "status"),
    ]
    assert (reading.summary.rows, reading.summary.accepted) == (3, 1)


def test_a_binary_stream_is_read_like_a_file() -> None:
    data = ("\n".join(lines(SIP)) + "\n").encode("utf-8-sig")
    plan = only_plan(read_plans(io.BytesIO(data), name="upload.jsonl"))
    assert plan.source.file == "upload.jsonl"


@pytest.mark.parametrize(
    ("change", "column", "reason"),
    [
        ({"version": 0}, "version", "Ska vara minst 1"),
        ({"version": "två"}, "version", "Ska vara ett heltal"),
        ({"created": 1732060800}, "created", "Ska vara ett datum som text"),
        ({"goals": {"id": "g1"}}, "goals", "Ska vara en lista"),
        ({"actions": ["Hemtjänst"]}, "actions[0]", "Ska vara ett objekt"),
        ({"updated": "2024-11-19"}, "updated", "Ligger före created"),
        ({"valid_until": "2024-01-01"}, "valid_until", "Ligger före created"),
        ({"unit_hsa_id": "Aneby vc"}, "unit_hsa_id", "Ogiltigt HSA-id"),
        ({"patient": 3309279887}, "patient", "Ogiltigt personnummer"),
        (
            {"goals": [], "actions": [{"text": "x", "responsible": "patient", "goal": "g1"}]},
            "actions[0].goal",
            "Okänt mål (planen har inga mål)",
        ),
    ],
)
def test_field_errors_name_the_json_path(change: dict[str, Any], column: str, reason: str) -> None:
    items = list(read_plan_lines(lines({**SIP, **change}), name="api"))
    errors = [i for i in items if isinstance(i, RowError)]
    assert [e.column for e in errors] == [column]
    assert reason in errors[0].reason


def test_a_bad_personnummer_is_reported_even_when_the_schema_fails() -> None:
    bad = {**SIP, "updated": "never", "patient": "19330927-9888"}
    errors = list(read_plan_lines(lines(bad), name="api"))
    assert [(e.column, e.value) for e in errors] == [  # type: ignore[union-attr]
        ("updated", "never"),
        ("patient", "19330927-****"),
    ]


def test_personnummer_century_is_counted_from_updated() -> None:
    centenarian = {
        **SIP,
        "patient": "231105+9808",
        "updated": "2025-01-08",
        "created": "2025-01-08",
    }
    assert only_plan(read_plan_lines(lines(centenarian), name="api")).patient.digits.startswith(
        "1923"
    )


def test_the_input_schema_is_public_for_the_api() -> None:
    schema = PlanIn.model_json_schema()
    assert {"source_system", "plan_id", "version", "kind", "patient"} <= set(schema["required"])


@pytest.mark.parametrize(
    ("loc", "path"),
    [
        (("actions", 1, "goal"), "actions[1].goal"),
        (("kva",), "kva"),
        (("goals", 0), "goals[0]"),
        ((), ""),
    ],
)
def test_json_path(loc: tuple[str | int, ...], path: str) -> None:
    assert json_path(loc) == path
