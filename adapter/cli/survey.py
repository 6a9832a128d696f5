"""`sip-fhir survey`: the SIP meeting survey (adapter/survey).

- `install`: the Questionnaire (mappings/sip-meeting-survey.json) onto the FHIR server;
- `issue --plan <CarePlan id>`: a one-time code for the SIP's latest meeting (printed once);
- `answer --code <code> --answer delaktig=ja-helt ...`: an answer given on paper, typed in by
  staff, stored exactly as the answer page stores it (anonymous, one per code);
- `report --unit <HSA-id> --quarter 2025Q1`: the indicator `sip-survey`: answers against SIPs
  held (AU124 + AU125), codes handed out, and the share of positive answers per question.

Exit codes: 0 done; 1 the FHIR server failed; 2 bad arguments (unknown or used code, not a SIP).
"""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from adapter.canonical import ID_PLAN
from adapter.cli.app import app
from adapter.fhirclient import FhirClient, FhirError
from adapter.followup.facts import reference_of
from adapter.followup.rulesfile import rules_of
from adapter.indicators.present import swedish
from adapter.mapping import load_mappings
from adapter.minplan import min_plan
from adapter.minplan.read import read_plan
from adapter.settings import Settings, get_settings
from adapter.survey.codes import CodeStore, shown
from adapter.survey.handout import NotASip, issue_for
from adapter.survey.indicators import (
    SurveyResult,
    quarter,
    survey_json,
    unit_survey,
)
from adapter.survey.questionnaire import Survey, install_survey, load_survey, survey_file
from adapter.survey.response import AnswerError, parse_answers
from adapter.survey.submit import Outcome, submit

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
survey_app = typer.Typer(help="Patientens enkät om SIP-mötet (anonym, engångskod).")
app.add_typer(survey_app, name="survey")


def _survey(settings: Settings) -> Survey:
    return load_survey(survey_file(settings))


def _codes(settings: Settings) -> CodeStore:
    return CodeStore.for_settings(settings)


def _fail(message: str, code: int = EXIT_FAILED) -> typer.Exit:
    Console(stderr=True).print(f"[bold red]{message}[/]", highlight=False)
    return typer.Exit(code)


@survey_app.command("install")
def install_command() -> None:
    """Installera enkätens Questionnaire på FHIR-servern (kan köras om)."""
    settings = get_settings()
    survey = _survey(settings)
    try:
        with FhirClient(settings.endpoint()) as client:
            resource_id = install_survey(client, survey)
    except FhirError as error:
        raise _fail(f"Enkäten kunde inte installeras: {error}") from None
    Console().print(f"Questionnaire/{resource_id}: {survey.canonical}", highlight=False)


@survey_app.command("issue")
def issue_command(
    plan: Annotated[str | None, typer.Option("--plan", help="SIP:ens CarePlan-id.")] = None,
    plan_key: Annotated[
        str | None,
        typer.Option("--plan-key", help="Eller källsystemets plan: källsystem:plan-id."),
    ] = None,
) -> None:
    """Dela ut en engångskod för SIP:ens senaste möte; koden skrivs ut en gång, med adressen
    till Min plan (som sidan skriver ut koden på)."""
    settings = get_settings()
    if (plan is None) == (plan_key is None):
        raise _fail("Ange --plan eller --plan-key", EXIT_USAGE)
    try:
        with FhirClient(settings.endpoint()) as client:
            if plan_key is not None:
                found_ids = [
                    str(r["id"])
                    for r in client.search("CarePlan", [("identifier", f"{ID_PLAN}|{plan_key}")])
                ]
                plan = found_ids[0] if len(found_ids) == 1 else None
            found = read_plan(client, plan) if plan else None
    except FhirError as error:
        raise _fail(f"Planen kunde inte läsas: {error}") from None
    if found is None:
        raise _fail(f"Planen {plan or plan_key} finns inte", EXIT_USAGE)
    view = min_plan(found.care_plan, found.goals, found.team, date.today())
    patient_id = (reference_of(found.care_plan.get("subject")) or "").rsplit("/", 1)[-1]
    try:
        code, meeting = issue_for(_codes(settings), view, patient_id, date.today())
    except NotASip as error:
        raise _fail(str(error), EXIT_USAGE) from None
    typer.echo(f"{shown(code)}  möte {meeting.isoformat()}  {view.unit_hsa_id}")
    typer.echo(f"Min plan: /ui/patients/{patient_id}/plans/{view.plan_id}/min-plan")


@survey_app.command("answer")
def answer_command(
    code: Annotated[str, typer.Option("--code", help="Engångskoden från patientens plan.")],
    answers: Annotated[
        list[str], typer.Option("--answer", help="fråga=svar, t.ex. delaktig=ja-helt (upprepas).")
    ],
) -> None:
    """Registrera ett svar som lämnats på papper (anonymt, ett svar per kod)."""
    settings = get_settings()
    survey = _survey(settings)
    form = dict(a.split("=", 1) for a in answers if "=" in a)
    try:
        parsed = parse_answers(survey, form)
    except AnswerError as error:
        raise _fail(str(error), EXIT_USAGE) from None
    try:
        with FhirClient(settings.endpoint()) as client:
            outcome = submit(client, _codes(settings), survey, code, parsed)
    except FhirError as error:
        raise _fail(f"Svaret kunde inte sparas: {error}") from None
    if outcome is not Outcome.STORED:
        message = "Koden finns inte" if outcome is Outcome.UNKNOWN_CODE else "Koden är redan använd"
        raise _fail(message, EXIT_USAGE)
    Console().print("Svaret är sparat.")


def _table(result: SurveyResult) -> Table:
    period = f"{result.period.start.isoformat()}–{result.period.end.isoformat()}"
    table = Table(title=f"Enkät om SIP-mötet, {result.unit_hsa_id}, {period}")
    table.add_column("Mått")
    table.add_column("Värde", justify="right")
    table.add_row("Hållna SIP (AU124 + AU125)", str(result.sips_held))
    table.add_row("Utlämnade koder", str(result.codes_issued))
    table.add_row("Svar", str(result.answers))
    table.add_row("Svar per hållen SIP", swedish(result.answer_rate))
    for q in result.questions:
        table.add_row(
            f"Positiva: {q.text}", f"{swedish(q.share_positive)} ({q.positive}/{q.answered})"
        )
    return table


def _json(result: SurveyResult) -> str:
    return json.dumps(survey_json(result), ensure_ascii=False, indent=2)


@survey_app.command("report")
def report_command(
    unit: Annotated[str, typer.Option("--unit", help="Enhetens HSA-id.")],
    quarter_text: Annotated[str, typer.Option("--quarter", help="Kvartal, t.ex. 2025Q1.")],
    output: Annotated[str, typer.Option("--format", help="table eller json.")] = "table",
) -> None:
    """Indikatorn sip-survey för ett kvartal: svar mot hållna SIP, andel positiva per fråga."""
    settings = get_settings()
    try:
        period = quarter(quarter_text)
    except ValueError as error:
        raise _fail(str(error), EXIT_USAGE) from None
    try:
        with FhirClient(settings.endpoint()) as client:
            result = unit_survey(
                client,
                _survey(settings),
                _codes(settings),
                unit,
                period,
                rules_of(settings),
                mappings=load_mappings(settings.mappings_dir),
            )
    except FhirError as error:
        raise _fail(f"Servern kunde inte läsas: {error}") from None
    if output == "json":
        typer.echo(_json(result))
    else:
        Console().print(_table(result))
