"""Indicator results as FHIR: summary and subject-list MeasureReports, their Lists, reading back."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest

from adapter.canonical import (
    CS_INDICATOR,
    EXT_DATA_ABSENT_REASON,
    HSA_ID,
    ID_MEASURE_REPORT,
    ID_SUBJECT_LIST,
    PROFILE_INDIVIDUAL_REPORT,
    PROFILE_MEASURE_REPORT,
    PROFILE_SUBJECT_LIST,
    IndicatorCode,
    measure_url,
)
from adapter.domain import EventCode
from adapter.indicators.compute import Period, Scoring, kva_count, plan_coverage, sip_call_in_time
from adapter.indicators.reports import (
    Population,
    ReportFormatError,
    ReportType,
    collection_bundle,
    individual_key,
    parse_period,
    parse_report,
    period_key,
    report_resources,
    subject_list_report,
    summary_report,
)
from adapter.mapping import match_url, transaction_bundle
from adapter.mapping.r4 import check_structure
from tests.support.reports import PERIOD, RUN, aneby_states
from tests.support.rules import RULES, UNIT, d, entry, event, notice, person, state


def _by_type(resources: list, resource_type: str) -> list[dict]:
    return [r.resource for r in resources if r.resource_type == resource_type]


def _population(report: dict, code: Population) -> dict:
    group = report["group"][0]
    return next(p for p in group["population"] if p["code"]["coding"][0]["code"] == code.value)


def test_summary_report_of_aneby_17_of_19() -> None:
    result = plan_coverage(aneby_states(), UNIT, PERIOD, RULES)
    assert result.value == (Decimal(1700) / 19).quantize(Decimal("0.01")) == Decimal("89.47")
    report = summary_report(result).resource
    check_structure(report)
    assert report["meta"]["profile"] == [PROFILE_MEASURE_REPORT]
    assert report["identifier"] == [
        {
            "system": ID_MEASURE_REPORT,
            "value": f"plan-coverage:{UNIT}:2024-12-05/2024-12-11",
        }
    ]
    assert (report["type"], report["status"]) == ("summary", "complete")
    assert report["measure"] == measure_url("plan-coverage")
    assert report["reporter"]["identifier"] == {"system": HSA_ID, "value": UNIT}
    assert report["period"] == {"start": "2024-12-05", "end": "2024-12-11"}
    assert "date" not in report  # identical content on a re-run
    group = report["group"][0]
    assert group["code"]["coding"] == [{"system": CS_INDICATOR, "code": "plan-coverage"}]
    counts = {p["code"]["coding"][0]["code"]: p["count"] for p in group["population"]}
    assert counts == {"initial-population": 19, "denominator": 19, "numerator": 17}
    # FHIR's proportion score is 0..1 without a unit; 17/19 = 0.894736... → 0.8947.
    assert group["measureScore"] == {"value": 0.8947}
    assert all("subjectResults" not in p for p in group["population"])


def _individuals(resources: list) -> dict[str, dict]:
    """The individual reports by the personnummer in their `subject` (conditional reference)."""
    return {
        r["subject"]["reference"].rsplit("|", 1)[1]: r
        for r in _by_type(resources, "MeasureReport")
        if r["type"] == "individual"
    }


def _counts(report: dict) -> dict[str, int]:
    return {p["code"]["coding"][0]["code"]: p["count"] for p in report["group"][0]["population"]}


def _list_items(lst: dict) -> list[str]:
    return [e["item"]["reference"] for e in lst.get("entry", ())]


def test_subject_list_report_points_each_population_to_a_list_of_its_patients() -> None:
    result = plan_coverage(aneby_states(), UNIT, PERIOD, RULES)
    resources = subject_list_report(result)
    lists = _by_type(resources, "List")
    (report,) = [r for r in _by_type(resources, "MeasureReport") if r["type"] == "subject-list"]
    assert report["type"] == "subject-list"
    assert report["identifier"][0]["value"].endswith(":subject-list")
    by_key = {lst["identifier"][0]["value"]: lst for lst in lists}
    key = f"plan-coverage:{UNIT}:2024-12-05/2024-12-11"
    assert set(by_key) == {f"{key}:denominator", f"{key}:numerator"}
    # The initial population is the denominator (no exclusions): they share one List.
    shared = {Population.INITIAL: "denominator", Population.DENOMINATOR: "denominator"}
    for population in Population:
        list_key = f"{key}:{shared.get(population, 'numerator')}"
        reference = _population(report, population)["subjectResults"]["reference"]
        assert reference == match_url("List", ID_SUBJECT_LIST, list_key)
        assert len(by_key[list_key]["entry"]) == _population(report, population)["count"]
    numerator = by_key[f"{key}:numerator"]
    assert numerator["meta"]["profile"] == [PROFILE_SUBJECT_LIST]
    assert (numerator["status"], numerator["mode"]) == ("current", "snapshot")
    # R4 / DEQM: the List holds the patients' individual MeasureReports, one per patient.
    people = sorted((person(n) for n in range(17)), key=lambda p: p.digits)
    assert _list_items(numerator) == [
        match_url("MeasureReport", ID_MEASURE_REPORT, individual_key(result, p)) for p in people
    ]
    individuals = _individuals(resources)
    assert len(individuals) == 19  # everyone in the initial population
    with_plan, without = individuals[person(0).digits], individuals[person(18).digits]
    assert with_plan["meta"]["profile"] == [PROFILE_INDIVIDUAL_REPORT]
    assert with_plan["identifier"] == [
        {"system": ID_MEASURE_REPORT, "value": individual_key(result, person(0))}
    ]
    assert person(0).digits not in with_plan["identifier"][0]["value"]
    assert (with_plan["measure"], with_plan["period"]) == (report["measure"], report["period"])
    assert with_plan["reporter"] == report["reporter"]
    assert _counts(with_plan) == {"initial-population": 1, "denominator": 1, "numerator": 1}
    assert _counts(without) == {"initial-population": 1, "denominator": 1, "numerator": 0}
    assert with_plan["group"][0]["measureScore"] == {"value": 1.0}  # the patient's own share
    assert without["group"][0]["measureScore"] == {"value": 0.0}
    assert all("subjectResults" not in p for p in with_plan["group"][0]["population"])
    for resource in resources:
        check_structure(resource.resource)


def test_the_transaction_links_reports_to_lists_inside_the_bundle_and_hides_personnummer() -> None:
    result = plan_coverage(aneby_states(), UNIT, PERIOD, RULES)
    bundle = transaction_bundle(report_resources([result]))
    full_urls = {e["resource"]["identifier"][0]["value"]: e["fullUrl"] for e in bundle["entry"]}
    report = next(
        e["resource"] for e in bundle["entry"] if e["resource"].get("type") == "subject-list"
    )
    key = f"plan-coverage:{UNIT}:2024-12-05/2024-12-11"
    numerator_list = full_urls[f"{key}:numerator"]
    assert _population(report, Population.NUMERATOR)["subjectResults"] == {
        "reference": numerator_list
    }
    # 19 individual reports, 2 Lists, the subject-list and the summary report.
    assert [e["request"]["method"] for e in bundle["entry"]] == ["PUT"] * 23
    lists = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    individual = full_urls[individual_key(result, person(0))]
    assert individual in _list_items(lists[numerator_list])
    assert lists[individual]["type"] == "individual"
    digits = [person(n).digits for n in range(20)] + [person(99).digits]
    for entry_ in bundle["entry"]:
        url = entry_["request"]["url"]
        values = [i["value"] for i in entry_["resource"]["identifier"]]
        assert not any(p in url or any(p in v for v in values) for p in digits)


def test_resolved_patient_ids_replace_conditional_references() -> None:
    result = plan_coverage(aneby_states(), UNIT, PERIOD, RULES)
    resources = report_resources([result], lambda p: {"reference": f"Patient/{p.digits[-4:]}"})
    text = json.dumps([r.resource for r in resources])
    assert "personnummer" not in text
    assert "Patient/0000" in text


def test_an_empty_denominator_has_no_score_but_says_why() -> None:
    states = [state(patient=person(1), entries=(entry(RUN, "3.0"),))]
    result = plan_coverage(states, UNIT, PERIOD, RULES)
    assert (result.numerator, result.denominator, result.value) == (0, 0, None)
    resources = report_resources([result])
    summary = next(r for r in _by_type(resources, "MeasureReport") if r["type"] == "summary")
    score = summary["group"][0]["measureScore"]
    assert "value" not in score
    assert score["_value"]["extension"] == [
        {"url": EXT_DATA_ABSENT_REASON, "valueCode": "not-a-number"}
    ]
    for lst in _by_type(resources, "List"):
        assert "entry" not in lst and lst["emptyReason"]["coding"][0]["code"] == "nilknown"
        check_structure(lst)
    check_structure(summary)
    assert parse_report(summary).value is None


def test_a_count_lists_a_patient_once_and_counts_their_events_in_their_report() -> None:
    states = [
        state(
            patient=person(1),
            events=(event("2024-12-05", EventCode.AU124), event("2024-12-06", EventCode.AU124)),
        ),
        state(patient=person(2), events=(event("2024-12-11", EventCode.AU124),)),
        state(patient=person(3), events=(event("2024-12-04", EventCode.AU124),)),  # before
    ]
    result = kva_count(states, UNIT, PERIOD, IndicatorCode.KVA_AU124)
    resources = subject_list_report(result)
    (lst,) = _by_type(resources, "List")
    (report,) = [r for r in _by_type(resources, "MeasureReport") if r["type"] == "subject-list"]
    assert [p["code"]["coding"][0]["code"] for p in report["group"][0]["population"]] == [
        "initial-population"
    ]
    assert _population(report, Population.INITIAL)["count"] == 3
    assert "measureScore" not in report["group"][0]
    # The List names each patient's report once; the patient's own report counts their events.
    assert _list_items(lst) == [
        match_url("MeasureReport", ID_MEASURE_REPORT, individual_key(result, p))
        for p in (person(1), person(2))
    ]
    individuals = _individuals(resources)
    assert set(individuals) == {person(1).digits, person(2).digits}
    assert _counts(individuals[person(1).digits]) == {"initial-population": 2}
    assert _counts(individuals[person(2).digits]) == {"initial-population": 1}
    assert sum(_counts(r)["initial-population"] for r in individuals.values()) == 3


def test_a_notice_counts_once_per_notice_in_the_patients_report() -> None:

    states = [
        state(
            patient=person(1),
            entries=(entry(RUN),),
            notices=(notice("N1", "2024-12-02 10:00"), notice("N2", "2024-12-03 10:00")),
            events=(event("2024-12-04", EventCode.SIPKALL),),
        )
    ]
    december = Period(d("2024-12-01"), d("2024-12-31"))
    result = sip_call_in_time(states, UNIT, december, RULES)
    assert (result.numerator, result.denominator) == (2, 2)
    resources = subject_list_report(result)
    assert [len(lst["entry"]) for lst in _by_type(resources, "List")] == [1, 1]
    (own,) = _individuals(resources).values()
    assert _counts(own) == {"initial-population": 2, "denominator": 2, "numerator": 2}


@pytest.mark.parametrize("builder", ["plan", "kva", "empty"])
def test_a_stored_summary_reads_back_to_the_same_numbers(builder: str) -> None:
    if builder == "plan":
        result = plan_coverage(aneby_states(), UNIT, PERIOD, RULES)
    elif builder == "kva":
        states = [state(patient=person(1), events=(event("2024-12-06", EventCode.AW010),) * 2)]
        result = kva_count(states, UNIT, PERIOD, IndicatorCode.KVA_AW010)
    else:
        result = plan_coverage([], UNIT, PERIOD, RULES)
    stored = parse_report(summary_report(result).resource)
    assert (stored.indicator, stored.unit_hsa_id, stored.period) == (
        result.indicator,
        UNIT,
        PERIOD,
    )
    assert stored.report_type is ReportType.SUMMARY
    assert stored.scoring is result.scoring
    assert (stored.numerator, stored.denominator, stored.value) == (
        result.numerator,
        result.denominator,
        result.value,
    )


def test_parse_report_refuses_what_is_not_an_indicator_report() -> None:
    with pytest.raises(ReportFormatError, match="inte en indikatorrapport"):
        parse_report({"resourceType": "MeasureReport", "identifier": [{"value": "x"}]})


def test_periods_as_text() -> None:
    period = parse_period("2023-01-01/2023-12-31")
    assert period == Period(date(2023, 1, 1), date(2023, 12, 31))
    assert period_key(period) == "2023-01-01/2023-12-31"
    for bad in ("2023-01-01", "2023-13-01/2023-12-31", "2023/2024", ""):
        with pytest.raises(ValueError, match="ogiltig period"):
            parse_period(bad)
    with pytest.raises(ValueError, match="efter att den slutar"):
        parse_period("2024-02-01/2024-01-01")


def test_collection_bundle_has_no_requests_and_links_by_urn() -> None:
    result = plan_coverage(aneby_states(), UNIT, PERIOD, RULES)
    bundle = collection_bundle(report_resources([result]))
    assert bundle["type"] == "collection"
    assert all("request" not in e and e["fullUrl"].startswith("urn:uuid:") for e in bundle["entry"])
    assert Scoring.PROPORTION is result.scoring
