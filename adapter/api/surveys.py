"""The SIP meeting survey's state in the app, shared by its answer page (routes/survey.py), "Min
plan" (routes/minplan.py, which hands out the codes), the quarter report (routes/survey_report.py)
and the worklist pages (whether a code was handed out): the service layer below those routes."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from adapter.settings import Settings
from adapter.survey.codes import CodeStore
from adapter.survey.questionnaire import Survey, load_survey, survey_file
from adapter.survey.ratelimit import RateLimit

PATH = "/enkat"  # the answer page


@dataclass(frozen=True, slots=True)
class SurveyState:
    survey: Survey
    codes: CodeStore
    limit: RateLimit

    @classmethod
    def for_settings(cls, settings: Settings) -> SurveyState:
        """The Questionnaire from mappings/, the code store where the adapter keeps its state."""
        return cls(
            survey=load_survey(survey_file(settings)),
            codes=CodeStore.for_settings(settings),
            limit=RateLimit.for_settings(settings),
        )


def survey_state(request: Request) -> SurveyState:
    state: SurveyState = request.app.state.survey
    return state


def survey_url(request: Request) -> str:
    """Where a patient answers: SIP_FHIR_SURVEY_URL, else this service's own answer page."""
    settings: Settings = request.app.state.settings
    return settings.survey_url or f"{str(request.base_url).rstrip('/')}{PATH}"
