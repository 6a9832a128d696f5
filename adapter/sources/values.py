"""Cell values of the source formats: dates, date-times, decimals, Ja/Nej, HSA-id.

Each parser takes stripped, non-empty text and returns the value or raises `InvalidValue`
whose message is the user-facing Swedish reason.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TypeVar
from zoneinfo import ZoneInfo

from adapter import hsa

T = TypeVar("T")

STOCKHOLM = ZoneInfo("Europe/Stockholm")

_DATE = re.compile(r"(\d{4})-?(\d{2})-?(\d{2})")
_DATETIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2}))?")
_DECIMAL = re.compile(r"[-+]?\d+(?:[.,]\d+)?")


class InvalidValue(ValueError):
    """A cell value that cannot be used; the message is the Swedish reason."""


def parse_date(text: str) -> date:
    """`YYYY-MM-DD` or `YYYYMMDD` (mixed separators are not accepted)."""
    m = _DATE.fullmatch(text)
    if m is None or (text.count("-") not in (0, 2)):
        raise InvalidValue("Ogiltigt datum: väntade ÅÅÅÅ-MM-DD eller ÅÅÅÅMMDD")
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        raise InvalidValue("Datumet finns inte") from None


def parse_datetime(text: str) -> datetime:
    """`YYYY-MM-DD HH:MM` (optionally `T` and seconds) as Europe/Stockholm local time.

    A time that does not exist (the hour skipped when summer time starts) is rejected; an
    ambiguous one (the hour repeated in October) is read as the first, summer-time, occurrence."""
    m = _DATETIME.fullmatch(text)
    if m is None:
        raise InvalidValue("Ogiltig tidpunkt: väntade ÅÅÅÅ-MM-DD TT:MM")
    year, month, day, hour, minute, second = (int(g) for g in m.groups(default="0"))
    try:
        naive = datetime(year, month, day, hour, minute, second)
    except ValueError:
        raise InvalidValue("Tidpunkten finns inte") from None
    local = naive.replace(tzinfo=STOCKHOLM)
    if local.astimezone(UTC).astimezone(STOCKHOLM).replace(tzinfo=None) != naive:
        raise InvalidValue("Tidpunkten finns inte i svensk tid (övergång till sommartid)")
    return local


def parse_decimal(text: str) -> Decimal:
    """A decimal number with `,` or `.` as decimal mark (`17,4`); no thousands separators."""
    if not _DECIMAL.fullmatch(text):
        raise InvalidValue("Inte ett tal: väntade t.ex. 17,4")
    return Decimal(text.replace(",", "."))


def parse_risk_percent(text: str) -> Decimal:
    """A risk in percent, 0–100; a trailing `%` is allowed."""
    value = parse_decimal(text.removesuffix("%").rstrip())
    if not Decimal(0) <= value <= Decimal(100):
        raise InvalidValue("Risken måste vara mellan 0 och 100 (procent)")
    return value


def parse_yes_no(text: str) -> bool:
    answer = text.casefold()
    if answer not in ("ja", "nej"):
        raise InvalidValue("Väntade Ja eller Nej")
    return answer == "ja"


def parse_choice(text: str, choices: Mapping[str, T], shown: str) -> T:
    """One of `choices` (keys in lower case, matched case-insensitively); `shown` lists them."""
    found = choices.get(text.casefold())
    if found is None:
        raise InvalidValue(f"Okänt värde; tillåtna: {shown}")
    return found


def parse_hsa_id(text: str) -> str:
    """An HSA-id such as `SE2321000057-E00000000001`, normalised to upper case (adapter.hsa)."""
    try:
        return hsa.parse_hsa_id(text)
    except hsa.InvalidHsaId as error:
        raise InvalidValue(str(error)) from None
