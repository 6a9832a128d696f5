"""One masking function for personnummer (issue 10.8): `adapter.personnummer.mask`, used by the
logs, the error reports and `PersonId`. Property-based: a personnummer or samordningsnummer in
any separator form, inside any text, is masked; an HSA-id keeps its organisation number."""

from __future__ import annotations

import io
import re
import sys
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from adapter import logs, personnummer
from adapter.api.models import RowErrorOut
from adapter.cli.rowerrors import ErrorReport
from adapter.domain import IdKind, PersonId, RowError
from adapter.personnummer import luhn_digit, mask
from adapter.sources.reading import shown

SEPARATORS = ("", "-", "+", " ", "_")


@st.composite
def numbers(draw: st.DrawFn) -> tuple[str, str, str]:
    """(as written in the text, the date part that may stay, the last four that must go)."""
    born = draw(st.dates(min_value=date(1890, 1, 1), max_value=date(2025, 12, 31)))
    day = born.day + (60 if draw(st.booleans()) else 0)  # samordningsnummer
    yymmdd = f"{born:%y%m}{day:02d}"
    nine = yymmdd + f"{draw(st.integers(0, 999)):03d}"
    last_four = nine[6:] + str(luhn_digit(nine))
    date_part = f"{born.year // 100}{yymmdd}" if draw(st.booleans()) else yymmdd
    separator = draw(st.sampled_from(SEPARATORS))
    prefix = draw(st.sampled_from(("", "SE", "pnr", "Pat", "ÅÄÖ")))
    return f"{prefix}{date_part}{separator}{last_four}", date_part, last_four


def no_digit_at(end: str) -> st.SearchStrategy[str]:
    """Any text, but not ending (`end`="tail") or starting ("head") with a digit: a longer run
    of digits is another number, not a personnummer."""
    pattern = r"\d+\Z" if end == "tail" else r"\A\d+"
    return st.text().map(lambda text: re.sub(pattern, "", text))


@given(numbers(), no_digit_at("tail"), no_digit_at("head"))
def test_a_personnummer_inside_any_text_is_masked(
    number: tuple[str, str, str], before: str, after: str
) -> None:
    written, date_part, last_four = number
    masked = mask(before + written + after)
    assert f"{date_part}-****" in masked
    assert re.search(re.escape(date_part) + r"[-+_\s]?" + last_four, masked) is None


@given(numbers())
def test_masking_twice_changes_nothing_more(number: tuple[str, str, str]) -> None:
    once = mask(f"rad 7: {number[0]} saknas")
    assert mask(once) == once


@given(st.text().filter(lambda text: not re.search(r"\d", text)))
def test_text_without_digits_is_left_alone(text: str) -> None:
    assert mask(text) == text


@given(
    st.integers(1, 9),
    st.integers(0, 9),
    st.integers(20, 99),  # an organisation number's "month": 20 or more
    st.integers(0, 999_999),
    st.integers(0, 10**11 - 1),
)
def test_an_hsa_id_keeps_its_organisation_number(
    first: int, second: int, month: int, rest: int, serial: int
) -> None:
    hsa_id = f"SE{first}{second}{month}{rest:06d}-E{serial:011d}"
    assert mask(hsa_id) == hsa_id


@pytest.mark.parametrize(
    ("text", "expected"),
    [  # the forms the region's attack run found unmasked
        ("19400402 9973", "19400402-****"),
        ("19400402_9973", "19400402-****"),
        ("SE194004029973", "SE19400402-****"),
        ("pnr194004029973abc", "pnr19400402-****abc"),
        ("4004029973x", "400402-****x"),
    ],
)
def test_the_forms_of_the_attack_run(text: str, expected: str) -> None:
    assert mask(text) == expected


def test_logs_error_reports_and_person_ids_use_the_one_function(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert logs.mask_personnummer is personnummer.mask
    assert shown("värde SE194004029973") == "värde SE19400402-****"
    person = PersonId("194004629973", IdKind.SAMORDNINGSNUMMER)
    assert (str(person), repr(person)) == ("19400462-****", "PersonId(19400462-****)")
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    logs.configure(level="INFO", json=True)
    logs.get_logger("test").info("läst", a="19400402 9973", b=["x19400402_9973"])
    assert "9973" not in stream.getvalue()
    assert stream.getvalue().count("19400402-****") == 2


def test_error_reports_of_the_cli_and_the_api_mask_whatever_a_reader_left(tmp_path: Path) -> None:
    error = RowError("19400402-9973.csv", 3, "patient", "Fel hos 19400402 9973", "SE194004029973")
    report = ErrorReport(tmp_path / "radfel.csv", keep=5)
    report.add(error)
    report.close()
    console = Console(file=io.StringIO(), width=200)
    report.print(console)
    answer = RowErrorOut.of(error).model_dump_json()
    for text in (report.path.read_text("utf-8-sig"), console.file.getvalue(), answer):
        assert "9973" not in text and "19400402-****" in text
