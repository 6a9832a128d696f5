"""The survey's indicators per unit and quarter (pure, plus one read from the server):

- answers against SIPs held: QuestionnaireResponses of the unit whose meeting's quarter
  (authored) is the quarter, against the unit's AU124 + AU125 events in the quarter (counted by the
  same code as the kva-AU124/kva-AU125 indicators);
- codes handed out in the quarter (the adapter's own store), to see where answers are lost;
- per question, the share of positive answers (an option's ordinalValue > 0, see
  adapter/survey/questionnaire.py) among those who answered it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from adapter.canonical import HSA_ID, IndicatorCode
from adapter.fhirclient import FhirClient
from adapter.followup.load import load_states
from adapter.followup.rules import RuleSet
from adapter.indicators.compute import Period, kva_count, percent
from adapter.indicators.store import procedure_patients
from adapter.mapping import Mappings
from adapter.mapping.fhir import Json
from adapter.survey.codes import CodeStore
from adapter.survey.questionnaire import Survey

INDICATOR_ID = "sip-survey"
SIP_HELD = (IndicatorCode.KVA_AU124, IndicatorCode.KVA_AU125)
_QUARTER = re.compile(r"(\d{4})-?Q([1-4])", re.IGNORECASE)


def quarter(text: str) -> Period:
    """ "2025Q1" or "2025-Q1" → 2025-01-01..2025-03-31."""
    match = _QUARTER.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"ogiltigt kvartal '{text}': skriv t.ex. 2025Q1")
    year, number = int(match[1]), int(match[2])
    start = date(year, 3 * number - 2, 1)
    end = date(year + 1, 1, 1) if number == 4 else date(year, 3 * number + 1, 1)
    return Period(start, date.fromordinal(end.toordinal() - 1))


def quarter_of(day: date) -> Period:
    return quarter(f"{day.year}Q{(day.month - 1) // 3 + 1}")


@dataclass(frozen=True, slots=True)
class QuestionResult:
    link_id: str
    text: str
    answered: int
    positive: int

    @property
    def share_positive(self) -> Decimal | None:
        return percent(self.positive, self.answered)


@dataclass(frozen=True, slots=True)
class SurveyResult:
    unit_hsa_id: str
    period: Period
    sips_held: int
    codes_issued: int
    answers: int
    questions: tuple[QuestionResult, ...]

    @property
    def answer_rate(self) -> Decimal | None:
        """Answers per SIP held, in percent."""
        return percent(self.answers, self.sips_held)


def _answer_codes(response: Json) -> dict[str, str]:
    return {
        str(item.get("linkId")): str(answer["valueCoding"].get("code"))
        for item in response.get("item", ())
        for answer in item.get("answer", ())[:1]
        if isinstance(answer.get("valueCoding"), dict)
    }


def survey_result(
    survey: Survey,
    unit_hsa_id: str,
    period: Period,
    responses: Iterable[Json],
    *,
    sips_held: int,
    codes_issued: int,
) -> SurveyResult:
    """Count the responses of `unit_hsa_id` to `survey` with a meeting date in `period`."""
    mine = [
        r
        for r in responses
        if str(r.get("questionnaire", "")).split("|")[0] == survey.url
        and r.get("status") == "completed"
        and any(
            t.get("system") == HSA_ID and t.get("code") == unit_hsa_id
            for t in (r.get("meta") or {}).get("tag", ())
        )
        and _authored(r) in period
    ]
    answers = [_answer_codes(r) for r in mine]
    questions = []
    for question in survey.questions:
        chosen = [question.option(a[question.link_id]) for a in answers if question.link_id in a]
        known = [o for o in chosen if o is not None]
        questions.append(
            QuestionResult(
                question.link_id, question.text, len(known), sum(o.positive for o in known)
            )
        )
    return SurveyResult(unit_hsa_id, period, sips_held, codes_issued, len(mine), tuple(questions))


def _authored(response: Json) -> date | None:
    try:
        return date.fromisoformat(str(response.get("authored", ""))[:10])
    except ValueError:
        return None


def read_responses(client: FhirClient, unit_hsa_id: str, period: Period) -> list[Json]:
    """The unit's QuestionnaireResponses authored in `period` (any questionnaire)."""
    params = [
        ("_tag", f"{HSA_ID}|{unit_hsa_id}"),
        ("authored", f"ge{period.start.isoformat()}"),
        ("authored", f"le{period.end.isoformat()}"),
        ("_count", "1000"),
    ]
    return list(client.search("QuestionnaireResponse", params))


def sips_held(
    client: FhirClient, unit_hsa_id: str, period: Period, rules: RuleSet, *, mappings: Mappings
) -> int:
    """AU124 + AU125 performed by the unit in `period`, counted by the kva indicators' own code
    on just the patients with such events (no Prea60 scope, no notices: a quarter stays fast)."""
    refs = procedure_patients(client, [unit_hsa_id], period)
    if not refs:
        return 0
    loaded = load_states(
        client, as_of=period.end, rules=rules, patient_refs=refs, mappings=mappings
    )
    states = list(loaded.states().values())
    return sum(kva_count(states, unit_hsa_id, period, code).numerator or 0 for code in SIP_HELD)


def unit_survey(
    client: FhirClient,
    survey: Survey,
    codes: CodeStore,
    unit_hsa_id: str,
    period: Period,
    rules: RuleSet,
    *,
    mappings: Mappings,
) -> SurveyResult:
    """The indicator `sip-survey` of one unit and period, read from the server and the store."""
    return survey_result(
        survey,
        unit_hsa_id,
        period,
        read_responses(client, unit_hsa_id, period),
        sips_held=sips_held(client, unit_hsa_id, period, rules, mappings=mappings),
        codes_issued=codes.issued_count(unit_hsa_id, period.start, period.end),
    )


def survey_json(result: SurveyResult) -> dict[str, Any]:
    """The result as JSON (CLI `--format json` and the API): percentages as strings."""

    def pct(value: Decimal | None) -> str | None:
        return None if value is None else str(value)

    return {
        "indicator": INDICATOR_ID,
        "unit": result.unit_hsa_id,
        "period": {"start": result.period.start.isoformat(), "end": result.period.end.isoformat()},
        "sips_held": result.sips_held,
        "codes_issued": result.codes_issued,
        "answers": result.answers,
        "answer_rate_percent": pct(result.answer_rate),
        "questions": [
            {
                "link_id": q.link_id,
                "text": q.text,
                "answered": q.answered,
                "positive": q.positive,
                "share_positive_percent": pct(q.share_positive),
            }
            for q in result.questions
        ],
    }
