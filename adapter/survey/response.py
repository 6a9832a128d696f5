"""An answer → QuestionnaireResponse without a subject (pure).

What it holds: the Questionnaire's canonical, the answers, `authored` = the first day of the
meeting's quarter (the indicator is per quarter; a meeting date, or a time of answering, could
single out the patient of a unit that held one SIP that day), and the unit as a meta.tag
(HSA-id system). No subject, no author, no source, no identifier, nothing
of the code: the server cannot tell who answered.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from adapter.canonical import HSA_ID
from adapter.mapping.fhir import Json
from adapter.survey.questionnaire import Survey


class AnswerError(ValueError):
    """A question without an allowed answer (Swedish, for the form)."""


@dataclass(frozen=True, slots=True)
class Answers:
    by_question: dict[str, str]  # linkId → option code


def parse_answers(survey: Survey, form: Mapping[str, str]) -> Answers:
    """The form's answers, every question answered with one of its options."""
    chosen: dict[str, str] = {}
    for question in survey.questions:
        code = (form.get(question.link_id) or "").strip()
        if question.option(code) is None:
            raise AnswerError(f"Svara på frågan: {question.text}")
        chosen[question.link_id] = code
    return Answers(chosen)


def questionnaire_response(
    survey: Survey, answers: Answers, unit_hsa_id: str, meeting_date: date
) -> Json:
    items = []
    for question in survey.questions:
        option = question.option(answers.by_question[question.link_id])
        if option is None:  # parse_answers lets none through
            raise AnswerError(f"Svara på frågan: {question.text}")
        coding = {"system": option.system, "code": option.code, "display": option.display}
        items.append(
            {
                "linkId": question.link_id,
                "text": question.text,
                "answer": [{"valueCoding": coding}],
            }
        )
    quarter_start = date(meeting_date.year, 3 * ((meeting_date.month - 1) // 3) + 1, 1).isoformat()
    return {
        "resourceType": "QuestionnaireResponse",
        "meta": {"tag": [{"system": HSA_ID, "code": unit_hsa_id}]},
        "text": {
            "status": "generated",
            "div": '<div xmlns="http://www.w3.org/1999/xhtml">'
            f"<p>Anonymt svar på enkäten om SIP-mötet, kvartalet från {quarter_start}</p></div>",
        },
        "questionnaire": survey.canonical,
        "status": "completed",
        "authored": quarter_start,
        "item": items,
    }
