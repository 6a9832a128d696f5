"""The SIP meeting survey's parts without a server: the Questionnaire file, one-time codes,
the rate limit, the anonymous QuestionnaireResponse and the quarter's indicators."""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from adapter.indicators.compute import Period
from adapter.settings import REPO_ROOT
from adapter.survey.codes import ALPHABET, LENGTH, CodeStore, new_code, normalize, shown
from adapter.survey.indicators import quarter, quarter_of, survey_result
from adapter.survey.questionnaire import SURVEY_FILE, SurveyError, load_survey
from adapter.survey.ratelimit import RateLimit
from adapter.survey.response import AnswerError, parse_answers, questionnaire_response

UNIT = "SE2321000057-E00000000101"
OTHER = "SE2321000057-E00000000102"
SURVEY = load_survey(REPO_ROOT / "mappings" / SURVEY_FILE)


def test_the_project_questionnaire_has_4_to_6_questions_with_positive_and_negative_answers() -> (
    None
):
    assert 4 <= len(SURVEY.questions) <= 6
    for question in SURVEY.questions:
        assert any(o.positive for o in question.options)
        assert any(not o.positive for o in question.options)
    first = SURVEY.questions[0]
    assert first.option("ja-helt").positive and first.option("ja-delvis").positive
    assert not first.option("vet-inte").positive and not first.option("nej-inte-alls").positive


def test_a_questionnaire_without_ordinal_values_is_refused_naming_file_and_item(
    tmp_path: Path,
) -> None:
    resource = json.loads((REPO_ROOT / "mappings" / SURVEY_FILE).read_text(encoding="utf-8"))
    del resource["item"][1]["answerOption"][0]["extension"]
    path = tmp_path / SURVEY_FILE
    path.write_text(json.dumps(resource), encoding="utf-8")
    with pytest.raises(SurveyError, match=rf"{SURVEY_FILE}.*item lyssnade.*ordinalValue"):
        load_survey(path)


def test_codes_are_typeable_and_unguessable() -> None:
    codes = {new_code() for _ in range(2000)}
    assert len(codes) == 2000
    assert all(len(c) == LENGTH and set(c) <= set(ALPHABET) for c in codes)
    assert not set("01ILO") & set(ALPHABET)
    assert len(ALPHABET) ** LENGTH > 2**48
    code = next(iter(codes))
    assert normalize(f" {shown(code).lower()} ") == code


def test_store_keeps_only_a_hash_and_no_patient_in_what_the_answer_page_reads(
    tmp_path: Path,
) -> None:
    store = CodeStore(tmp_path / "survey.sqlite")
    code = store.issue(UNIT, date(2025, 2, 20), "careplan-1", "patient-7")
    with sqlite3.connect(tmp_path / "survey.sqlite") as db:
        dump = "\n".join(db.iterdump())
        columns = [r[1] for r in db.execute("PRAGMA table_info(survey_code)")]
    assert code not in dump
    assert columns == ["code_hash", "unit", "meeting_date", "issued_at", "answered"]
    info = store.lookup(shown(code).lower())
    assert info is not None and (info.unit_hsa_id, info.meeting_date) == (UNIT, date(2025, 2, 20))
    assert store.lookup("ABCDEFGHJK") is None


def test_one_answer_per_code_even_when_two_arrive_together(tmp_path: Path) -> None:
    store = CodeStore(tmp_path / "survey.sqlite")
    code = store.issue(UNIT, date(2025, 2, 20), "careplan-1", "patient-7")
    wins: list[object] = []
    threads = [threading.Thread(target=lambda: wins.append(store.claim(code))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len([w for w in wins if w is not None]) == 1
    assert store.claim(code) is None
    store.release(code)  # the server did not take the answer: the code works again
    assert store.claim(code) is not None


def test_handout_status_per_plan_and_per_patient(tmp_path: Path) -> None:
    store = CodeStore(tmp_path / "survey.sqlite")
    first = store.issue(UNIT, date(2025, 2, 20), "careplan-1", "patient-7")
    store.issue(UNIT, date(2025, 5, 2), "careplan-1", "patient-7")
    store.issue(UNIT, date(2025, 5, 2), "careplan-2", "patient-8")
    store.claim(first)
    by_plan = store.status(["careplan-1", "careplan-2", "careplan-3"])
    assert (by_plan["careplan-1"].issued, by_plan["careplan-1"].answered) == (2, 1)
    assert (by_plan["careplan-2"].issued, by_plan["careplan-2"].answered) == (1, 0)
    assert "careplan-3" not in by_plan
    assert store.status_by_patient(["patient-7"])["patient-7"].answered == 1
    assert store.belongs_to(first, "careplan-1") and not store.belongs_to(first, "careplan-2")
    assert store.issued_count(UNIT, date(2025, 4, 1), date(2025, 6, 30)) == 2


def test_rate_limit_per_client_slides_expires_and_keeps_no_address(tmp_path: Path) -> None:
    now = [1_000.0]
    store = tmp_path / "survey.sqlite"
    limit = RateLimit(store, limit=3, window=60, clock=lambda: now[0])
    assert [limit.allow("10.0.0.1") for _ in range(4)] == [True, True, True, False]
    assert limit.allow("10.0.0.2")  # another client is not held back
    now[0] += 61.0
    assert limit.allow("10.0.0.1")  # the window has slid
    for n in range(50):
        limit.allow(f"192.0.2.{n}")
    now[0] += 61.0
    assert limit.allow("10.0.0.3")
    assert limit.addresses() == 1  # rows older than the window are gone, whoever they were
    again = RateLimit(store, limit=3, window=60, clock=lambda: now[0])  # a restart counts on
    assert [again.allow("10.0.0.3") for _ in range(3)] == [True, True, False]
    with sqlite3.connect(store) as db:
        rows = [str(row) for row in db.execute("select * from survey_attempt")]
    assert rows and not any("10.0.0" in row for row in rows)
    assert b"10.0.0" not in store.read_bytes()


def test_response_has_no_subject_and_only_unit_and_the_meetings_quarter() -> None:
    answers = parse_answers(SURVEY, {q.link_id: "ja-helt" for q in SURVEY.questions})
    resource = questionnaire_response(SURVEY, answers, UNIT, date(2025, 2, 20))
    assert resource["questionnaire"] == f"{SURVEY.url}|{SURVEY.version}"
    assert resource["authored"] == "2025-01-01"  # the quarter, not the day of the meeting
    assert resource["meta"]["tag"] == [{"system": "urn:oid:1.2.752.29.4.19", "code": UNIT}]
    for field in ("subject", "author", "source", "identifier", "encounter"):
        assert field not in resource
    assert len(resource["item"]) == len(SURVEY.questions)


def test_an_unanswered_or_unknown_answer_is_refused_naming_the_question() -> None:
    form = {q.link_id: "ja-helt" for q in SURVEY.questions}
    form[SURVEY.questions[2].link_id] = "kanske"
    with pytest.raises(AnswerError, match=SURVEY.questions[2].text):
        parse_answers(SURVEY, form)


def test_quarters() -> None:
    assert quarter("2025Q1") == Period(date(2025, 1, 1), date(2025, 3, 31))
    assert quarter("2024-q4") == Period(date(2024, 10, 1), date(2024, 12, 31))
    assert quarter_of(date(2025, 5, 17)) == quarter("2025Q2")
    with pytest.raises(ValueError, match="ogiltigt kvartal"):
        quarter("2025Q5")


def _response(unit: str, day: str, codes: list[str]) -> dict[str, object]:
    answers = parse_answers(
        SURVEY, {q.link_id: c for q, c in zip(SURVEY.questions, codes, strict=True)}
    )
    return questionnaire_response(SURVEY, answers, unit, date.fromisoformat(day))


def test_indicator_counts_the_units_answers_in_the_quarter_and_positive_share_per_question() -> (
    None
):
    n = len(SURVEY.questions)
    responses = [
        _response(UNIT, "2025-02-20", ["ja-helt"] * n),
        _response(UNIT, "2025-03-31", ["nej-inte-alls"] + ["ja-delvis"] * (n - 1)),
        _response(UNIT, "2025-01-02", ["vet-inte"] * n),
        _response(UNIT, "2025-04-01", ["ja-helt"] * n),  # next quarter
        _response(OTHER, "2025-02-20", ["ja-helt"] * n),  # another unit
    ]
    result = survey_result(SURVEY, UNIT, quarter("2025Q1"), responses, sips_held=6, codes_issued=4)
    assert result.answers == 3
    assert result.answer_rate == Decimal("50.00")
    first, second = result.questions[0], result.questions[1]
    assert (first.answered, first.positive, first.share_positive) == (3, 1, Decimal("33.33"))
    assert (second.answered, second.positive, second.share_positive) == (3, 2, Decimal("66.67"))
    assert (
        survey_result(
            SURVEY, UNIT, quarter("2025Q3"), responses, sips_held=0, codes_issued=0
        ).answer_rate
        is None
    )
