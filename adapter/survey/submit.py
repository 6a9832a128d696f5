"""Store one answer for a one-time code: the answer page and `sip-fhir survey answer` (answers
given on paper, typed in by staff) go through this one function."""

from __future__ import annotations

from enum import StrEnum

from adapter.fhirclient import FhirClient
from adapter.survey.codes import CodeStore, normalize
from adapter.survey.questionnaire import Survey
from adapter.survey.response import Answers, questionnaire_response


class Outcome(StrEnum):
    STORED = "stored"
    UNKNOWN_CODE = "unknown-code"
    USED_CODE = "used-code"


def submit(
    client: FhirClient, codes: CodeStore, survey: Survey, code: str, answers: Answers
) -> Outcome:
    """Claim the code (one answer per code, atomically), then create the QuestionnaireResponse;
    if the server does not take it, the claim is released and the error raised."""
    typed = normalize(code)
    if not typed or codes.lookup(typed) is None:
        return Outcome.UNKNOWN_CODE
    claimed = codes.claim(typed)
    if claimed is None:
        return Outcome.USED_CODE
    resource = questionnaire_response(survey, answers, claimed.unit_hsa_id, claimed.meeting_date)
    try:
        client.create(resource)
    except BaseException:
        codes.release(typed)
        raise
    return Outcome.STORED
