"""Pure: indicator results → MeasureReports and patient Lists, and stored reports → numbers.

Per indicator, unit and period the adapter keeps two MeasureReports (profile
indicator-measurereport), both found again by their business identifier, never by server id:

- `summary`: counts and score only. Identifier `<indicator>:<unit>:<start>/<end>`. This is the
  report the trend reads and the one a registry gets (it names no patient).
- `subject-list`: the same counts, and each population's `subjectResults` points to a List
  (profile indicator-subject-list) of the subject-level reports of the patients in it, as R4 and
  DEQM define it. Identifier as above + `:subject-list`.
- `individual` (profile indicator-individual-measurereport), one per patient in any population:
  `subject` the Patient, the same measure, unit and period, and the patient's own counts (0/1 for
  the risk-group shares; for KVÅ and lus-sip-call the patient's events or notices). Identifier an
  opaque digest of indicator + unit + period + patient (`individual_key`); a share's report
  has the patient's own score (HAPI's validator requires one for a proportion).

A proportion's initial population is its denominator (no exclusions), so both point to one List.
Counts count what the indicator counts (events for KVÅ, notices for lus-sip-call): a population's
count is the sum of its individual reports' counts, and its List names each patient once. No
`date` element: the content is a function of the data and the period, so an unchanged re-run
writes identical resources and the server keeps the version.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any

from adapter.canonical import (
    CS_INDICATOR,
    EXT_DATA_ABSENT_REASON,
    EXT_QUALITY_SUMMARY,
    HSA_ID,
    ID_MEASURE_REPORT,
    ID_SUBJECT_LIST,
    LIST_EMPTY_REASON,
    MEASURE_IMPROVEMENT,
    MEASURE_POPULATION,
    PROFILE_INDIVIDUAL_REPORT,
    PROFILE_MEASURE_REPORT,
    PROFILE_SUBJECT_LIST,
    IndicatorCode,
    measure_url,
)
from adapter.domain import PersonId
from adapter.indicators.compute import IndicatorResult, Period, Scoring, percent
from adapter.indicators.distribution import BANDS, ScoreSummary
from adapter.mapping.bundle import transaction_bundle
from adapter.mapping.fhir import (
    Json,
    coding,
    concept,
    extension,
    hsa_reference,
    identifier,
    meta,
    patient_reference,
)
from adapter.mapping.fhir import period as fhir_period
from adapter.mapping.identifiers import match_url, stable_digest
from adapter.mapping.narrative import with_narrative
from adapter.mapping.resource import MappedResource

PatientRef = Callable[[PersonId], Json]
NOT_A_NUMBER = "not-a-number"  # data-absent-reason code
_PERCENT = Decimal("0.01")


class ReportType(StrEnum):
    SUMMARY = "summary"
    SUBJECT_LIST = "subject-list"
    INDIVIDUAL = "individual"


class Population(StrEnum):
    """Codes of the measure-population code system that our Measures use."""

    INITIAL = "initial-population"
    DENOMINATOR = "denominator"
    NUMERATOR = "numerator"


POPULATION_LABELS = {
    Population.INITIAL: "Ursprunglig population",
    Population.DENOMINATOR: "Nämnare",
    Population.NUMERATOR: "Täljare",
}


@dataclass(frozen=True, slots=True)
class _Group:
    population: Population
    count: int
    subjects: tuple[PersonId, ...]
    list_population: Population  # whose List holds the subjects (shared by equal populations)


def _groups(result: IndicatorResult) -> list[_Group]:
    # The Lists hold one entry per counted item: a subject-list report's count is its List's size.
    if result.scoring is Scoring.COHORT:
        return [
            _Group(Population.INITIAL, result.numerator, result.numerator_items, Population.INITIAL)
        ]
    denominator = result.denominator or 0
    shared = result.denominator_items
    return [
        _Group(Population.INITIAL, denominator, shared, Population.DENOMINATOR),
        _Group(Population.DENOMINATOR, denominator, shared, Population.DENOMINATOR),
        _Group(
            Population.NUMERATOR, result.numerator, result.numerator_items, Population.NUMERATOR
        ),
    ]


# --- business identifiers ---


def period_key(period: Period) -> str:
    """ISO 8601 interval, as in identifiers and on the command line: `2024-10-01/2024-12-31`."""
    return f"{period.start.isoformat()}/{period.end.isoformat()}"


def parse_period(text: str) -> Period:
    """`START/END` (ISO dates) → Period; ValueError (Swedish) if it is not one."""
    start, _, end = text.partition("/")
    try:
        first, last = date.fromisoformat(start.strip()), date.fromisoformat(end.strip())
    except ValueError:
        raise ValueError(
            f"ogiltig period {text!r}: ange START/SLUT som ÅÅÅÅ-MM-DD/ÅÅÅÅ-MM-DD"
        ) from None
    return Period(first, last)  # a start after the end is refused there


def report_key(
    indicator: IndicatorCode, unit_hsa_id: str, period: Period, report_type: ReportType
) -> str:
    key = f"{indicator.value}:{unit_hsa_id}:{period_key(period)}"
    return key if report_type is ReportType.SUMMARY else f"{key}:{report_type.value}"


def list_key(
    indicator: IndicatorCode, unit_hsa_id: str, period: Period, population: Population
) -> str:
    return f"{indicator.value}:{unit_hsa_id}:{period_key(period)}:{population.value}"


def individual_key(result: IndicatorResult, person: PersonId) -> str:
    """A patient's individual report: opaque (never the personnummer), the same on every run."""
    return stable_digest(
        result.indicator.value, result.unit_hsa_id, period_key(result.period), person
    )


# --- building ---


def _score(scoring: Scoring, value: Decimal | None) -> Json | None:
    """A proportion's score: a unitless 0..1 (FHIR's rule); 4 decimals = the percent's 2.

    `value` in percent. An empty denominator has no score; the validator still requires the
    element (an individual report too), so its value is absent with the reason "not-a-number"
    (0/0). A cohort has no score: the count is the result.
    """
    if scoring is not Scoring.PROPORTION:
        return None
    if value is None:
        return {"_value": {"extension": [extension(EXT_DATA_ABSENT_REASON, "Code", NOT_A_NUMBER)]}}
    # JSON has no decimal type; four decimals survive float unchanged.
    return {"value": float(value / 100)}


SCORE_BAND = "score-band"  # the stratifier of plan-quality (Measure-plan-quality.json)


def _summary_extension(scores: ScoreSummary) -> Json:
    values = {
        "threshold": scores.threshold,
        "mean": scores.mean,
        "min": scores.minimum,
        "median": scores.median,
        "max": scores.maximum,
    }
    parts = [extension(k, "Decimal", float(v)) for k, v in values.items() if v is not None]
    return {"url": EXT_QUALITY_SUMMARY, "extension": parts}


def _bands(scores: ScoreSummary) -> Json:
    return {
        "code": [{"text": SCORE_BAND}],
        "stratum": [
            {
                "value": {"text": band},
                "population": [
                    {"code": concept(coding(MEASURE_POPULATION, Population.INITIAL)), "count": n}
                ],
            }
            for band, n in zip(BANDS, scores.bands, strict=True)
        ],
    }


def _read_scores(group: Mapping[str, Any]) -> ScoreSummary | None:
    """The plan-quality statistics and bands of a report's group; None if it has none."""
    summary = next(
        (e for e in group.get("extension", ()) if e.get("url") == EXT_QUALITY_SUMMARY), None
    )
    if summary is None:
        return None
    values: dict[str, Decimal] = {
        str(part.get("url")): Decimal(str(part["valueDecimal"]))
        for part in summary.get("extension", ())
        if "valueDecimal" in part
    }
    counts = {band: 0 for band in BANDS}
    for stratifier in group.get("stratifier", ()):
        if not any(c.get("text") == SCORE_BAND for c in stratifier.get("code", ())):
            continue
        for stratum in stratifier.get("stratum", ()):
            band = (stratum.get("value") or {}).get("text")
            if band in counts:
                counts[band] = sum(int(p.get("count", 0)) for p in stratum.get("population", ()))
    return ScoreSummary(
        threshold=values["threshold"],
        mean=values.get("mean"),
        minimum=values.get("min"),
        median=values.get("median"),
        maximum=values.get("max"),
        bands=tuple(counts.values()),
    )


@dataclass(frozen=True, slots=True)
class _Subject:
    """Who an individual report is about: its key, the Patient reference, their counts."""

    key: str
    reference: Json
    counts: Mapping[Population, int]


def _report(
    result: IndicatorResult,
    report_type: ReportType,
    with_lists: bool,
    subject: _Subject | None = None,
) -> Json:
    populations = []
    for group in _groups(result):
        population: Json = {
            "code": concept(coding(MEASURE_POPULATION, group.population.value)),
            "count": group.count if subject is None else subject.counts.get(group.population, 0),
        }
        if with_lists:
            key = list_key(
                result.indicator, result.unit_hsa_id, result.period, group.list_population
            )
            # A match URL; transaction_bundle turns it into the in-Bundle List's urn:uuid.
            population["subjectResults"] = {"reference": match_url("List", ID_SUBJECT_LIST, key)}
        populations.append(population)
    group_json: Json = {
        "code": concept(coding(CS_INDICATOR, result.indicator.value)),
        "population": populations,
    }
    if subject is None:
        score = _score(result.scoring, result.value)
    else:  # the patient's own share: 0 or 1, or of their notices
        own = subject.counts
        score = _score(
            result.scoring,
            percent(own.get(Population.NUMERATOR, 0), own.get(Population.DENOMINATOR, 0)),
        )
    if score is not None:
        group_json["measureScore"] = score
    if result.scores is not None and subject is None:  # the unit's scores, not a patient's
        group_json["extension"] = [_summary_extension(result.scores)]
        group_json["stratifier"] = [_bands(result.scores)]
    elif result.scores is not None:
        # HAPI wants every stratifier the Measure names; a patient's report has no strata.
        group_json["stratifier"] = [{"code": [{"text": SCORE_BAND}]}]
    if subject is None:
        profile = PROFILE_MEASURE_REPORT
        key = report_key(result.indicator, result.unit_hsa_id, result.period, report_type)
    else:
        profile, key = PROFILE_INDIVIDUAL_REPORT, subject.key
    report: Json = {
        "resourceType": "MeasureReport",
        "meta": meta(profile),
        "identifier": [identifier(ID_MEASURE_REPORT, key)],
        "status": "complete",
        "type": report_type.value,
        "measure": measure_url(result.indicator.value),
    }
    if subject is not None:
        report["subject"] = subject.reference
    report.update(
        {
            "reporter": hsa_reference("Organization", result.unit_hsa_id),
            "period": fhir_period(result.period.start, result.period.end),
            "improvementNotation": concept(coding(MEASURE_IMPROVEMENT, "increase")),
            "group": [group_json],
        }
    )
    return report


def _mapped_report(result: IndicatorResult, report_type: ReportType) -> MappedResource:
    resource = _report(result, report_type, with_lists=report_type is ReportType.SUBJECT_LIST)
    with_narrative(resource)
    return MappedResource(
        "MeasureReport", ID_MEASURE_REPORT, resource["identifier"][0]["value"], resource
    )


def summary_report(result: IndicatorResult) -> MappedResource:
    """The summary MeasureReport: counts and score, no patient."""
    return _mapped_report(result, ReportType.SUMMARY)


def individual_reports(
    result: IndicatorResult, patient_ref: PatientRef = patient_reference
) -> list[MappedResource]:
    """One report per patient in any population: `subject` the Patient, their own counts."""
    counts: dict[PersonId, Counter[Population]] = {}
    for group in _groups(result):
        for person in group.subjects:  # one entry per counted item
            counts.setdefault(person, Counter())[group.population] += 1
    reports = []
    for person, own in counts.items():
        subject = _Subject(individual_key(result, person), patient_ref(person), own)
        resource = with_narrative(_report(result, ReportType.INDIVIDUAL, False, subject))
        reports.append(MappedResource("MeasureReport", ID_MEASURE_REPORT, subject.key, resource))
    return reports


def _distinct(people: Iterable[PersonId]) -> list[PersonId]:
    return list(dict.fromkeys(people))


def subject_list(result: IndicatorResult, group: _Group) -> MappedResource:
    """The List of a population: one entry per patient, their individual report."""
    key = list_key(result.indicator, result.unit_hsa_id, result.period, group.list_population)
    resource: Json = {
        "resourceType": "List",
        "meta": meta(PROFILE_SUBJECT_LIST),
        "identifier": [identifier(ID_SUBJECT_LIST, key)],
        "status": "current",
        "mode": "snapshot",
        "title": (
            f"{POPULATION_LABELS[group.list_population]}: {result.indicator.value}, "
            f"{result.unit_hsa_id}, {result.period.start} – {result.period.end}"
        ),
        "code": concept(coding(MEASURE_POPULATION, group.list_population.value)),
    }
    if group.subjects:
        resource["entry"] = [
            {"item": {"reference": match_url("MeasureReport", ID_MEASURE_REPORT, individual)}}
            for individual in (individual_key(result, p) for p in _distinct(group.subjects))
        ]
    else:
        resource["emptyReason"] = concept(coding(LIST_EMPTY_REASON, "nilknown"))
    return MappedResource("List", ID_SUBJECT_LIST, key, with_narrative(resource))


def subject_list_report(
    result: IndicatorResult, patient_ref: PatientRef = patient_reference
) -> list[MappedResource]:
    """The individual reports (one per patient), the Lists (one per distinct population), then
    the subject-list MeasureReport."""
    lists: dict[Population, MappedResource] = {}
    for group in _groups(result):
        if group.list_population not in lists:
            lists[group.list_population] = subject_list(result, group)
    individuals = individual_reports(result, patient_ref)
    return [*individuals, *lists.values(), _mapped_report(result, ReportType.SUBJECT_LIST)]


def report_resources(
    results: Iterable[IndicatorResult], patient_ref: PatientRef = patient_reference
) -> list[MappedResource]:
    """Everything the adapter keeps for `results`: per result the individual reports, the Lists
    and the subject-list and summary reports.

    `patient_ref` makes the individual reports' `subject`: by default a conditional reference
    (resolved by the server inside the transaction), or `Patient/<id>` when the ids are known.
    """
    resources: list[MappedResource] = []
    for result in results:
        resources.extend(subject_list_report(result, patient_ref))
        resources.append(summary_report(result))
    return resources


# --- reading back ---


@dataclass(frozen=True, slots=True)
class StoredReport:
    """The numbers of a stored summary MeasureReport."""

    indicator: IndicatorCode
    unit_hsa_id: str
    period: Period
    report_type: ReportType
    counts: Mapping[Population, int]
    value: Decimal | None  # percent (proportion), count (cohort), None if not computable
    scores: ScoreSummary | None = None  # plan-quality only

    @property
    def scoring(self) -> Scoring:
        return Scoring.PROPORTION if Population.NUMERATOR in self.counts else Scoring.COHORT

    @property
    def numerator(self) -> int:
        return self.counts.get(Population.NUMERATOR, self.counts.get(Population.INITIAL, 0))

    @property
    def denominator(self) -> int | None:
        return self.counts.get(Population.DENOMINATOR)


class ReportFormatError(ValueError):
    """A MeasureReport that is not one of ours (Swedish message)."""


def _code(element: Any, system: str) -> str:
    for item in (element or {}).get("coding", []):
        if item.get("system") == system:
            return str(item.get("code"))
    raise ValueError(f"ingen kod från {system}")


def parse_report(resource: Mapping[str, Any]) -> StoredReport:
    """Numbers of one of our MeasureReports (as the server returns it)."""
    try:
        group = resource["group"][0]
        indicator = IndicatorCode(_code(group.get("code"), CS_INDICATOR))
        reporter = resource["reporter"]["identifier"]
        if reporter.get("system") != HSA_ID:
            raise ValueError("reporter är inte ett HSA-id")
        period = Period(
            date.fromisoformat(resource["period"]["start"][:10]),
            date.fromisoformat(resource["period"]["end"][:10]),
        )
        counts = {
            Population(_code(p.get("code"), MEASURE_POPULATION)): int(p.get("count", 0))
            for p in group.get("population", [])
        }
        report_type = ReportType(resource["type"])
        scores = _read_scores(group)
    except (KeyError, IndexError, TypeError, ValueError, ArithmeticError) as exc:
        first: Mapping[str, Any] = next(iter(resource.get("identifier", [])), {})
        ident = first.get("value", "?")
        raise ReportFormatError(f"MeasureReport {ident}: inte en indikatorrapport ({exc})") from exc
    score = (group.get("measureScore") or {}).get("value")
    stored = StoredReport(indicator, reporter["value"], period, report_type, counts, None)
    if stored.scoring is Scoring.COHORT:
        value: Decimal | None = Decimal(stored.numerator)
    else:
        value = None if score is None else (Decimal(str(score)) * 100).quantize(_PERCENT)
    return StoredReport(indicator, reporter["value"], period, report_type, counts, value, scores)


def collection_bundle(resources: Iterable[MappedResource]) -> Json:
    """The resources as a collection Bundle, references between them as their urn:uuid."""
    bundle = transaction_bundle(resources)
    for entry in bundle["entry"]:
        del entry["request"]
    bundle["type"] = "collection"
    return bundle
