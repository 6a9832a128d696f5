"""Personnummer and samordningsnummer: forms, century, Luhn, impossible dates, masking."""

from __future__ import annotations

from datetime import date

import pytest

from adapter import canonical, personnummer
from adapter.domain import IdKind
from adapter.personnummer import (
    ChecksumError,
    FormatError,
    ImpossibleDateError,
    PersonnummerError,
    check,
    luhn_digit,
    mask,
    parse,
)

REF = date(2025, 3, 10)


def valid(yyyymmdd: str, serial: str = "982") -> str:
    """A Luhn-valid 12-digit personnummer `YYYYMMDD-NNNN` (day + 60 for samordningsnummer)."""
    nine = yyyymmdd[2:] + serial
    return f"{yyyymmdd}-{serial}{luhn_digit(nine)}"


def short(twelve: str, sep: str = "-") -> str:
    return twelve[2:8] + sep + twelve[9:]


@pytest.mark.parametrize("raw", ["19310214-9824", "193102149824", "310214-9824", " 19310214-9824 "])
def test_accepted_forms_give_the_same_twelve_digits(raw: str) -> None:
    pid = parse(raw, REF)
    assert pid.digits == "193102149824"
    assert pid.kind is IdKind.PERSONNUMMER
    assert pid.system == canonical.PERSONNUMMER


def test_known_valid_numbers() -> None:
    # Skatteverket's classic test number "Tolvan Tolvansson" and one from the formats README.
    assert parse("19121212-9819", REF).digits == "191212129819"
    assert parse("19380313-9801", REF).digits == "193803139801"
    assert luhn_digit("121212121") == 2


@pytest.mark.parametrize(
    ("born", "sep", "reference"),
    [
        ("20050101", "-", date(2024, 6, 1)),  # under 100: this century
        ("20241231", "-", date(2024, 12, 31)),  # born on the reference date
        ("19241231", "-", date(2024, 12, 30)),  # not born yet this century: 100 back
        ("19250601", "-", date(2025, 3, 10)),  # turns 100 this year, written with "-" ...
        ("19250601", "+", date(2025, 3, 10)),  # ... or "+" (Skatteverket: from that year)
        ("19231105", "+", date(2025, 3, 10)),  # centenarian
        ("19050101", "+", date(2024, 6, 1)),  # "+" goes back a further century
        ("18990101", "+", date(2024, 6, 1)),  # 125 years: still the latest fitting century
        ("20000229", "-", date(2024, 1, 1)),  # 2000 is a leap year
    ],
)
def test_century_of_short_forms_is_counted_back_from_the_reference(
    born: str, sep: str, reference: date
) -> None:
    twelve = valid(born)
    assert parse(short(twelve, sep), reference).digits == twelve.replace("-", "")


def test_century_rollover_depends_only_on_the_reference_date() -> None:
    raw = short(valid("19990615"))
    assert parse(raw, date(2099, 6, 14)).digits.startswith("1999")
    assert parse(raw, date(2099, 6, 15)).digits.startswith("2099")


def test_samordningsnummer_day_plus_60() -> None:
    raw = valid("19520171")  # born 11 January 1952
    pid = parse(raw, REF)
    assert pid.kind is IdKind.SAMORDNINGSNUMMER
    assert pid.system == canonical.SAMORDNINGSNUMMER
    assert pid.digits == raw.replace("-", "")  # the number keeps its +60 day
    assert parse(short(raw), REF).kind is IdKind.SAMORDNINGSNUMMER


@pytest.mark.parametrize("position", range(9))
def test_any_single_digit_change_breaks_the_check_digit(position: int) -> None:
    ten = "3102149824"  # 19310214-9824; +1 on any digit still leaves a possible date
    digit = (int(ten[position]) + 1) % 10
    changed = ten[:position] + str(digit) + ten[position + 1 :]
    with pytest.raises(ChecksumError, match="Fel kontrollsiffra i personnumret"):
        parse(f"19{changed[:6]}-{changed[6:]}", REF)


def test_wrong_check_digit() -> None:
    with pytest.raises(ChecksumError, match="kontrollsiffra"):
        parse("19310214-9825", REF)


@pytest.mark.parametrize(
    "twelve",
    [
        "19381301",  # month 13
        "19380001",  # month 0
        "19380100",  # day 0
        "19380132",  # day 32
        "19380230",  # 30 February
        "19000229",  # 1900 is not a leap year
        "19380160",  # day 60: neither a day nor a samordningsnummer (day + 60 = 0)
        "19380192",  # samordningsnummer for day 32
    ],
)
def test_impossible_dates_are_rejected_even_with_a_valid_check_digit(twelve: str) -> None:
    with pytest.raises(ImpossibleDateError, match="Omöjligt födelsedatum"):
        parse(valid(twelve), REF)


def test_29_february_of_a_short_form_is_judged_with_its_century() -> None:
    raw = short(valid("20000229"))
    assert parse(raw, date(2024, 1, 1)).digits.startswith("2000")
    # from a reference in 1999 the same digits mean 1900, which had no 29 February
    with pytest.raises(ImpossibleDateError):
        parse(raw, date(1999, 1, 1))


def test_birth_after_the_reference_date_is_impossible() -> None:
    with pytest.raises(ImpossibleDateError, match="ligger efter 2025-03-10"):
        parse(valid("20250311"), REF)
    assert parse(valid("20250310"), REF).digits.startswith("20250310")


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "abc",
        "3102149824",  # 10 digits without separator: century and "+" cannot be told
        "19310214+9824",  # "+" belongs to the short form only
        "19310214 9824",
        "1931-02-14-9824",
        "19310214-982",
        "193102149824X",
    ],
)
def test_other_forms_are_rejected(raw: str) -> None:
    with pytest.raises(FormatError, match="Ogiltigt personnummer"):
        parse(raw, REF)


def test_errors_are_value_errors_whose_text_holds_no_number() -> None:
    with pytest.raises(ValueError) as info:  # the subclass is the contract
        parse("19310214-9825", REF)
    assert isinstance(info.value, PersonnummerError)
    assert "9825" not in str(info.value)
    assert "19310214" not in str(info.value)


def test_check_without_reference_date() -> None:
    check("310214-9824")
    check("19310214-9824")
    with pytest.raises(ChecksumError):
        check("310214-9825")
    with pytest.raises(ImpossibleDateError):
        check(valid("19000229"))
    check(short(valid("20000229")))  # a century with a 29 February exists: benefit of doubt


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("19310214-9824", "19310214-****"),
        ("193102149824", "19310214-****"),
        ("310214-9824", "310214-****"),
        ("310214+9824", "310214-****"),
        ("3102149824", "310214-****"),
        ("19310214-98", "193102-****"),  # 10 digits: only a YYMMDD-sized part is kept
        ("1931021", "193-****"),  # short junk: at least four digits always hidden
        ("abc", "****"),
        ("", "****"),
    ],
)
def test_mask_of_a_field_value(raw: str, masked: str) -> None:
    assert mask(raw, whole=True) == masked


def test_person_id_is_masked_in_str_and_repr() -> None:
    pid = personnummer.parse("19310214-9824", REF)
    assert str(pid) == "19310214-****"
    assert "9824" not in repr(pid)
    assert "9824" not in f"{pid}"


def test_fictional_numbers_are_valid_distinct_and_keep_sex_and_birth_date() -> None:
    fictional_number, is_fictional = personnummer.fictional_number, personnummer.is_fictional
    born = date(1931, 2, 14)
    women = {fictional_number(born, female=True, pick=k) for k in range(10)}
    men = {fictional_number(born, female=False, pick=k) for k in range(10)}
    assert len(women | men) == 20
    for number in women | men:
        assert is_fictional(number) and number.startswith("19310214")
        assert personnummer.parse(number, date(2025, 1, 1)).digits == number
    assert all(int(n[10]) % 2 == 0 for n in women) and all(int(n[10]) % 2 for n in men)
    assert fictional_number(born, female=True, pick=1) == "193102149824"
    coordination = fictional_number(born, female=True, pick=0, samordning=True)
    assert coordination[6:8] == "74" and is_fictional(coordination)
    assert not is_fictional("194001011234")
