"""The survey's Questionnaire (mappings/sip-meeting-survey.json): its questions and answer
options, and which answers count as positive (an answerOption's ordinalValue > 0).

A unit can replace the file with its own questions; the code reads them from it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from adapter.fhirclient import FhirClient
from adapter.mapping.fhir import Json
from adapter.settings import REPO_ROOT, Settings

SURVEY_FILE = "sip-meeting-survey.json"
ORDINAL_VALUE = "http://hl7.org/fhir/StructureDefinition/ordinalValue"


@dataclass(frozen=True, slots=True)
class Option:
    code: str
    display: str
    system: str
    positive: bool


@dataclass(frozen=True, slots=True)
class Question:
    link_id: str
    text: str
    options: tuple[Option, ...]

    def option(self, code: str) -> Option | None:
        return next((o for o in self.options if o.code == code), None)


@dataclass(frozen=True, slots=True)
class Survey:
    url: str
    version: str
    title: str
    questions: tuple[Question, ...]
    resource: Json

    @property
    def canonical(self) -> str:
        return f"{self.url}|{self.version}"


class SurveyError(ValueError):
    pass


def _option(path: Path, link_id: str, raw: Json) -> Option:
    coding = raw.get("valueCoding") or {}
    ordinal = next(
        (e.get("valueDecimal") for e in raw.get("extension", ()) if e.get("url") == ORDINAL_VALUE),
        None,
    )
    if not coding.get("code") or ordinal is None:
        raise SurveyError(
            f"{path}: item {link_id}: answerOption saknar valueCoding.code eller ordinalValue"
        )
    return Option(
        str(coding["code"]),
        str(coding.get("display") or coding["code"]),
        str(coding.get("system") or ""),
        Decimal(str(ordinal)) > 0,
    )


def survey_file(settings: Settings) -> Path:
    """The unit's survey in its mappings dir, else the project's own."""
    own = settings.mappings_dir / SURVEY_FILE
    return own if own.exists() else REPO_ROOT / "mappings" / SURVEY_FILE


def load_survey(path: Path) -> Survey:
    resource = json.loads(path.read_text(encoding="utf-8"))
    if resource.get("resourceType") != "Questionnaire" or not resource.get("url"):
        raise SurveyError(f"{path}: inte en Questionnaire med url")
    questions = []
    for item in resource.get("item", ()):
        link_id = str(item.get("linkId") or "")
        if item.get("type") != "choice" or not link_id:
            raise SurveyError(f"{path}: item {link_id or '?'}: bara frågor av typen choice stöds")
        options = tuple(_option(path, link_id, o) for o in item.get("answerOption", ()))
        if not options:
            raise SurveyError(f"{path}: item {link_id}: inga svarsalternativ")
        questions.append(Question(link_id, str(item.get("text") or link_id), options))
    return Survey(
        str(resource["url"]),
        str(resource.get("version") or "1"),
        str(resource.get("title") or ""),
        tuple(questions),
        resource,
    )


def install_survey(client: FhirClient, survey: Survey) -> str:
    """Create or update the Questionnaire by its canonical (url + version): idempotent."""
    result = client.conditional_update(
        survey.resource, f"url={survey.url}&version={survey.version}"
    )
    return str(result.id or "")
