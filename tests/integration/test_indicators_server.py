"""Indicators against the real local HAPI server: computed from what the server holds, stored as
profiled MeasureReports and Lists (valid, once, unchanged on a re-run), recounted with plain FHIR
searches, and read back as a weekly trend with charts. The data: test_indicators_support."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from adapter.canonical import (
    CS_LOCAL_ACTIVITY,
    EXT_DISCHARGE_SUPPORT,
    EXT_PLAN_QUALITY,
    EXT_READY_FOR_DISCHARGE,
    HSA_ID,
    ID_DISCHARGE,
    ID_MEASURE_REPORT,
    KVA,
    IndicatorCode,
)
from adapter.cli import app
from adapter.fhirclient import FhirClient
from adapter.followup.rulesfile import load_rules
from adapter.followup.state import states_from_records
from adapter.indicators.compute import Period
from adapter.indicators.store import (
    compute_units,
    indicators_from_server,
    loaded_reference,
    read_reports,
    store_reports,
    store_snapshot,
)
from adapter.indicators.trend import unit_trends
from adapter.settings import REPO_ROOT, get_settings
from tests.support.indicators import (
    AU124,
    AU125,
    AW010,
    CALLED_IN_TIME,
    DEADLINES,
    FOLLOWED_UP,
    GROUP,
    MAPPINGS,
    NOTICES_DECIDED,
    PERIOD,
    WITH_PLAN,
    Scenario,
    hand_percent,
    on_server,
    use_servers,
)

pytestmark = pytest.mark.integration

RULES = load_rules(REPO_ROOT / "mappings" / "rules.json")
Json = dict[str, Any]
IC = IndicatorCode


@pytest.fixture(scope="module")
def scenario(fhir_client: FhirClient) -> Scenario:
    return on_server(fhir_client)


@pytest.fixture
def cli_env(hapi_base_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    use_servers(monkeypatch, base_url=hapi_base_url)
    yield
    get_settings.cache_clear()


def _numbers(results: list) -> dict[IndicatorCode, tuple]:
    return {r.indicator: (r.numerator, r.denominator, r.value) for r in results}


def test_indicators_from_the_server_match_the_hand_count(
    fhir_client: FhirClient, scenario: Scenario
) -> None:
    results, loaded = indicators_from_server(
        fhir_client, [scenario.unit], PERIOD, RULES, mappings=MAPPINGS
    )
    assert hand_percent(WITH_PLAN, GROUP) == hand_percent(17, 19)
    assert _numbers(results) == {
        IC.PLAN_COVERAGE: (17, 19, hand_percent(17, 19)),
        IC.FOLLOWUP_90D: (13, 19, hand_percent(13, 19)),
        IC.KVA_AU124: (3, None, 3),
        IC.KVA_AU125: (1, None, 1),
        IC.KVA_AW010: (10, None, 10),
        IC.LUS_SIP_CALL: (1, 2, hand_percent(1, 2)),
        # The unit's 19 active plans (16 + the joiner's + "below" + "left") are one shape of
        # patientkontrakt: fast vårdkontakt 2 + care and patient 2 + what matters 1 + the
        # patient's goal 1 = 6 of 12 = 0.50, under the threshold 0.8.
        IC.PLAN_QUALITY: (0, 19, hand_percent(0, 19)),
    }
    assert str(hand_percent(17, 19)) == "89.47"
    by = {r.indicator: r for r in results}
    assert set(by[IC.PLAN_COVERAGE].denominator_subjects) == set(scenario.group)
    assert set(by[IC.PLAN_COVERAGE].numerator_subjects) == set(scenario.planned)
    assert set(by[IC.FOLLOWUP_90D].numerator_subjects) == set(scenario.followed_up)
    assert scenario.joiner in by[IC.FOLLOWUP_90D].numerator_subjects  # joined mid-period
    assert all(loaded[p].startswith("Patient/") for p in scenario.group)
    # The same numbers as from the records themselves, without the server.
    states = list(states_from_records(scenario.records, MAPPINGS.plan_quality).values())
    assert _numbers(compute_units(states, [scenario.unit], PERIOD, RULES)) == _numbers(results)


def test_an_empty_risk_group_has_no_share(fhir_client: FhirClient, scenario: Scenario) -> None:
    results, _ = indicators_from_server(
        fhir_client, [scenario.empty_unit], PERIOD, RULES, mappings=MAPPINGS
    )
    numbers = _numbers(results)
    assert numbers[IC.PLAN_COVERAGE] == (0, 0, None)
    assert numbers[IC.FOLLOWUP_90D] == (0, 0, None)


def test_the_region_run_reports_every_unit_even_an_empty_one(
    fhir_client: FhirClient, scenario: Scenario
) -> None:
    results, _ = indicators_from_server(fhir_client, None, PERIOD, RULES, mappings=MAPPINGS)
    units = {r.unit_hsa_id for r in results}
    assert {scenario.unit, scenario.empty_unit, scenario.other_unit} <= units
    mine = [r for r in results if r.unit_hsa_id == scenario.unit]
    assert _numbers(mine)[IC.PLAN_COVERAGE] == (17, 19, hand_percent(17, 19))
    assert _numbers(mine)[IC.LUS_SIP_CALL] == (1, 2, hand_percent(1, 2))
    empty = [r for r in results if r.unit_hsa_id == scenario.empty_unit]
    assert _numbers(empty)[IC.PLAN_COVERAGE] == (0, 0, None)


def _reports_of(client: FhirClient, unit: str, period: Period) -> list[Json]:
    suffix = f":{unit}:{period.start}/{period.end}"
    return [
        r
        for r in client.search("MeasureReport", {"unit": f"{HSA_ID}|{unit}", "_count": "500"})
        if r["identifier"][0]["value"].removesuffix(":subject-list").endswith(suffix)
    ]


def _lists_of(client: FhirClient, reports: list[Json]) -> list[Json]:
    refs = {
        p["subjectResults"]["reference"]
        for r in reports
        for g in r["group"]
        for p in g["population"]
        if "subjectResults" in p
    }
    return [client.read(*ref.split("/")) for ref in sorted(refs)]


def _individuals_of(client: FhirClient, lists: list[Json]) -> list[Json]:
    """The individual MeasureReports the Lists name (each once)."""
    refs = {e["item"]["reference"] for lst in lists for e in lst.get("entry", [])}
    return [client.read(*ref.split("/")) for ref in sorted(refs)]


def _errors(outcome: Json) -> list[str]:
    return [
        str(i.get("diagnostics"))
        for i in outcome.get("issue", [])
        if i.get("severity") in ("error", "fatal")
    ]


def test_reports_are_stored_once_valid_and_unchanged_on_a_rerun(
    fhir_client: FhirClient, scenario: Scenario
) -> None:
    results, loaded = indicators_from_server(
        fhir_client, [scenario.unit], PERIOD, RULES, mappings=MAPPINGS
    )
    first = store_reports(fhir_client, results, loaded_reference(loaded))
    assert first.transactions == 1
    reports = _reports_of(fhir_client, scenario.unit, PERIOD)
    assert len(reports) == 2 * len(IndicatorCode)
    n = len(IndicatorCode)
    assert sorted(r["type"] for r in reports) == ["subject-list"] * n + ["summary"] * n
    lists = _lists_of(fhir_client, reports)
    assert len(lists) == 4 * 2 + 3  # per share numerator + denominator; per count one
    individuals = _individuals_of(fhir_client, lists)
    assert {r["type"] for r in individuals} == {"individual"}
    assert len(individuals) >= GROUP * 2  # the risk group, in plan-coverage and followup-90d
    written = reports + lists + individuals
    versions = {f"{r['resourceType']}/{r['id']}": r["meta"]["versionId"] for r in written}

    again, reloaded = indicators_from_server(
        fhir_client, [scenario.unit], PERIOD, RULES, mappings=MAPPINGS
    )
    second = store_reports(fhir_client, again, loaded_reference(reloaded))
    assert not second.created  # updates in place
    reports_after = _reports_of(fhir_client, scenario.unit, PERIOD)
    lists_after = _lists_of(fhir_client, reports_after)
    after = {f"{r['resourceType']}/{r['id']}": r["meta"]["versionId"] for r in reports_after}
    after |= {f"List/{r['id']}": r["meta"]["versionId"] for r in lists_after}
    after |= {
        f"MeasureReport/{r['id']}": r["meta"]["versionId"]
        for r in _individuals_of(fhir_client, lists_after)
    }
    assert after == versions  # no duplicates, no new versions of unchanged content

    for resource in written:
        outcome = fhir_client.validate(resource, resource["meta"]["profile"][0])
        assert _errors(outcome) == [], (resource["identifier"], _errors(outcome))
    # R4: each population's List holds subject-level (individual) MeasureReports; each names its
    # Patient on this server by id, and no personnummer appears anywhere.
    digits = {p.digits for p in scenario.people}
    by_ref = {f"MeasureReport/{r['id']}": r for r in individuals}
    for report in (r for r in reports if r["type"] == "subject-list"):
        for population in report["group"][0]["population"]:
            lst = next(
                x for x in lists if population["subjectResults"]["reference"] == f"List/{x['id']}"
            )
            code = population["code"]["coding"][0]["code"]
            own = [by_ref[e["item"]["reference"]] for e in lst.get("entry", [])]
            assert all(
                r["measure"] == report["measure"] and r["period"] == report["period"] for r in own
            )
            assert sum(_count_of(r, code) for r in own) == population["count"], code
    for resource in lists + individuals:
        assert not any(d in json.dumps(resource) for d in digits)
    assert all(r["subject"]["reference"].startswith("Patient/") for r in individuals)


def _count_of(report: Json, code: str) -> int:
    population = report["group"][0]["population"]
    return int(next(p["count"] for p in population if p["code"]["coding"][0]["code"] == code))


def _count(client: FhirClient, resource_type: str, params: list[tuple[str, str]]) -> int:
    bundle = next(client.search_bundles(resource_type, [*params, ("_summary", "count")], post=True))
    return int(bundle["total"])


def _search(client: FhirClient, resource_type: str, params: list[tuple[str, str]]) -> list[Json]:
    return list(client.search(resource_type, [*params, ("_count", "500")], post=True))


def _day(value: str) -> date:
    return date.fromisoformat(value[:10])


def _ext(resource: Json, url: str) -> Json:
    return next(e for e in resource.get("extension", []) if e["url"] == url)


def _recount(client: FhirClient, unit: str, period: Period) -> dict[IndicatorCode, tuple]:
    """Each indicator straight from FHIR searches, by the definitions in the Measures."""
    as_of, token = period.end, f"{HSA_ID}|{unit}"
    prea60 = [("unit", token), ("date", f"le{as_of}")]
    newest = max(_day(r["occurrenceDateTime"]) for r in _search(client, "RiskAssessment", prea60))
    group = {
        r["subject"]["reference"]
        for r in _search(
            client,
            "RiskAssessment",
            [("unit", token), ("date", str(newest)), ("probability", "ge15")],
        )
    }
    subjects = [("subject", ",".join(sorted(group)))]
    plans = _search(client, "CarePlan", [*subjects, ("status", "active")])
    planned = {p["subject"]["reference"] for p in plans if _day(p["created"]) <= as_of}
    marks: dict[str, list[date]] = {ref: [] for ref in planned}
    for plan in plans:
        marks[plan["subject"]["reference"]].append(_day(plan["created"]))
    follow_codes = f"{KVA}|AW010,{CS_LOCAL_ACTIVITY}|UPPF"
    for proc in _search(client, "Procedure", [*subjects, ("code", follow_codes)]):
        if proc["subject"]["reference"] in marks and _day(proc["performedDateTime"]) <= as_of:
            marks[proc["subject"]["reference"]].append(_day(proc["performedDateTime"]))
    interval = timedelta(days=RULES.params.follow_up.interval_days)
    followed = {ref for ref, days in marks.items() if max(days) + interval >= as_of}
    between = [("date", f"ge{period.start}"), ("date", f"le{period.end}")]
    counts = {
        code: _count(client, "Procedure", [("unit", token), ("code", f"{KVA}|{code}"), *between])
        for code in ("AU124", "AU125", "AW010")
    }
    # Notices of patients whose home unit is this one (all in its Prea60 lists here).
    listed = {r["subject"]["reference"] for r in _search(client, "RiskAssessment", prea60)}
    decided = in_time = 0
    listed_subjects = [("subject", ",".join(sorted(listed)))]
    notices = _search(client, "Encounter", [*listed_subjects, ("identifier", f"{ID_DISCHARGE}|")])
    for notice in notices:
        support = {
            e["url"]: e["valueBoolean"] for e in _ext(notice, EXT_DISCHARGE_SUPPORT)["extension"]
        }
        day = _day(_ext(notice, EXT_READY_FOR_DISCHARGE)["valueDateTime"])
        if not all(support.values()) or day not in period:
            continue
        deadline = DEADLINES[notice["identifier"][0]["value"].split("-", 1)[1]]
        calls = _search(
            client,
            "Procedure",
            [("subject", notice["subject"]["reference"]), ("code", f"{CS_LOCAL_ACTIVITY}|SIPKALL")],
        )
        call = min(
            (_day(c["performedDateTime"]) for c in calls if _day(c["performedDateTime"]) >= day),
            default=None,
        )
        if call is None and as_of <= deadline:
            continue
        decided += 1
        in_time += call is not None and call <= deadline
    # The unit's active plans and the scores stored on them (ext-plan-quality).
    unit_plans = [
        p
        for p in _search(client, "CarePlan", [("unit", token), ("status", "active")])
        if _day(p["created"]) <= as_of
    ]
    threshold = float(RULES.params.indicators.plan_quality.threshold)
    scores = [
        next(
            x["valueDecimal"] for x in _ext(p, EXT_PLAN_QUALITY)["extension"] if x["url"] == "score"
        )
        for p in unit_plans
    ]
    return {
        IC.PLAN_COVERAGE: (len(planned), len(group)),
        IC.FOLLOWUP_90D: (len(followed), len(group)),
        IC.KVA_AU124: (counts["AU124"], None),
        IC.KVA_AU125: (counts["AU125"], None),
        IC.KVA_AW010: (counts["AW010"], None),
        IC.LUS_SIP_CALL: (in_time, decided),
        IC.PLAN_QUALITY: (sum(score >= threshold for score in scores), len(scores)),
    }


def _stored_counts(report: Json) -> tuple[int, int | None]:
    counts = {
        p["code"]["coding"][0]["code"]: p["count"] for g in report["group"] for p in g["population"]
    }
    if "numerator" in counts:
        return counts["numerator"], counts["denominator"]
    return counts["initial-population"], None


def test_every_stored_report_equals_a_recount_with_fhir_searches(
    fhir_client: FhirClient, scenario: Scenario
) -> None:
    results, loaded = indicators_from_server(
        fhir_client, [scenario.unit], PERIOD, RULES, mappings=MAPPINGS
    )
    store_reports(fhir_client, results, loaded_reference(loaded))
    recount = _recount(fhir_client, scenario.unit, PERIOD)
    assert recount == {
        IC.PLAN_COVERAGE: (WITH_PLAN, GROUP),
        IC.FOLLOWUP_90D: (FOLLOWED_UP, GROUP),
        IC.KVA_AU124: (AU124, None),
        IC.KVA_AU125: (AU125, None),
        IC.KVA_AW010: (AW010, None),
        IC.LUS_SIP_CALL: (CALLED_IN_TIME, NOTICES_DECIDED),
        IC.PLAN_QUALITY: (0, 19),  # every plan 0.50 (see the hand count above)
    }
    reports = _reports_of(fhir_client, scenario.unit, PERIOD)
    assert len(reports) == 2 * len(IndicatorCode)
    for report in reports:
        indicator = IndicatorCode(report["identifier"][0]["value"].split(":")[0])
        assert _stored_counts(report) == recount[indicator], report["identifier"]
        assert report["identifier"][0]["system"] == ID_MEASURE_REPORT


def test_weekly_snapshots_make_a_trend_with_charts(
    fhir_client: FhirClient, scenario: Scenario, cli_env: None, tmp_path: Path
) -> None:
    for day in (date(2024, 12, 4), date(2024, 12, 11), date(2024, 12, 11)):
        store_snapshot(fhir_client, [scenario.unit], day, rules=RULES, mappings=MAPPINGS)
    (trend,) = unit_trends(read_reports(fhir_client, [scenario.unit]), RULES)
    everyone = unit_trends(read_reports(fhir_client), RULES)  # all units: by profile
    assert trend in everyone
    assert trend.days == (date(2024, 12, 4), date(2024, 12, 11))  # the long period left out
    # 2024-12-04: the run of 11-11 decides: 18 (not the joiner) + the one who later left, whose
    # plan is active but not followed up; notices of 12-02: one called, one still open.
    assert trend.series(IC.PLAN_COVERAGE) == [
        (date(2024, 12, 4), hand_percent(17, 19)),
        (date(2024, 12, 11), hand_percent(17, 19)),
    ]
    assert [v for _, v in trend.series(IC.FOLLOWUP_90D)] == [
        hand_percent(12, 19),
        hand_percent(13, 19),
    ]
    assert [v for _, v in trend.series(IC.KVA_AU124)] == [0, 1]
    assert [v for _, v in trend.series(IC.LUS_SIP_CALL)] == [hand_percent(1, 1), None]

    result = CliRunner().invoke(
        app,
        [
            "indicators",
            "--trend",
            "--unit",
            scenario.unit,
            "--format",
            "json",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body[0]["unit"] == scenario.unit
    coverage = [s for s in body[0]["snapshots"] if s["id"] == "plan-coverage"]
    assert [(s["day"], s["value"]) for s in coverage] == [
        ("2024-12-04", 89.47),
        ("2024-12-11", 89.47),
    ]
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".png", ".svg"]


def test_cli_json_for_one_unit_and_period(scenario: Scenario, cli_env: None) -> None:
    result = CliRunner().invoke(
        app,
        [
            "indicators",
            "--unit",
            scenario.unit,
            "--period",
            "2024-10-01/2024-12-11",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert (body["unit"], body["as_of"]) == (scenario.unit, "2024-12-11")
    by_id = {i["id"]: i for i in body["indicators"]}
    assert by_id["plan-coverage"] == {
        "id": "plan-coverage",
        "numerator": 17,
        "denominator": 19,
        "value": 89.47,
    }
    assert by_id["kva-AU124"] == {"id": "kva-AU124", "count": 3}
    assert by_id["lus-sip-call"]["value"] == 50.0


def test_cli_fhir_output_names_patients_by_server_id(scenario: Scenario, cli_env: None) -> None:
    args = ["indicators", "--unit", scenario.unit, "--as-of", "2024-12-11", "--format", "fhir"]
    result = CliRunner().invoke(app, [*args, "--store"])
    assert result.exit_code == 0, result.output
    bundle = json.loads(result.stdout)
    assert bundle["type"] == "collection"
    types = sorted(
        (e["resource"]["resourceType"], e["resource"].get("type", "")) for e in bundle["entry"]
    )
    assert types.count(("List", "")) == 4 * 2 + 3
    assert types.count(("MeasureReport", "summary")) == len(IndicatorCode)
    assert types.count(("MeasureReport", "subject-list")) == len(IndicatorCode)
    assert types.count(("MeasureReport", "individual")) >= GROUP * 2
    assert len(types) == len(set(e["fullUrl"] for e in bundle["entry"]))
    text = result.stdout
    assert '"reference": "Patient/' in text
    assert not any(person.digits in text for person in scenario.people)
    assert "Sparade på" in result.stderr
