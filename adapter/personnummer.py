"""Swedish personnummer and samordningsnummer: parse, validate, mask.

Accepted forms (anything else is rejected):

- `YYYYMMDD-NNNN` and `YYYYMMDDNNNN`: the century is given.
- `YYMMDD-NNNN`: the latest birth date on or before the reference date (under 100 years old).
- `YYMMDD+NNNN`: 100 years or older. Skatteverket switches to `+` in the year a person turns
  100 (18 § folkbokföringslagen), some systems only on the birthday; the latest birth year at
  least 100 years before the reference year satisfies both conventions.

The reference date is the file's own date (the Prea60 run date, the event date, ...) passed in
by the caller: this module never reads the clock. The check digit is Luhn over the 10-digit
form. A day of month + 60 marks a samordningsnummer. A birth date after the reference date is
impossible and rejected.

Fictional numbers (project rule, enforced by tests/unit/test_fixture_personnummer.py and used by
`sip-fhir synth`): test data, examples and synthetic patients only ever use födelsenummer (the
three digits after the birth date) 980–999, with a correct check digit. That is the series
Skatteverket's published test personnummer come from; Skatteverket's list itself could not be
fetched where this was built (no internet), so the rule, not the list, is what we follow.
Numbers in the series are not assigned to real people in the ordinary series, which is why
they are safe on a public test server too. The third födelsenummer digit keeps its meaning:
odd for men, even for women.
"""

from __future__ import annotations

import re
from datetime import date
from typing import NamedTuple

from adapter.domain import IdKind, PersonId

_LONG = re.compile(r"(\d{8})-?(\d{4})")
_SHORT = re.compile(r"(\d{6})([-+])(\d{4})")
_SAMORDNING_OFFSET = 60
_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)  # digit sum of 2 * d


class PersonnummerError(ValueError):
    """The value is not a valid personnummer; `reason` is user-facing Swedish."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class FormatError(PersonnummerError):
    pass


class ChecksumError(PersonnummerError):
    pass


class ImpossibleDateError(PersonnummerError):
    pass


def parse(raw: str, reference: date) -> PersonId:
    """Parse `raw` into a 12-digit `PersonId`; the century of short forms is counted back from
    `reference`. Raises a `PersonnummerError` subclass with a Swedish reason."""
    p = _parts(raw)
    if p.century is not None:
        year = p.century * 100 + p.yy
    elif p.sign == "+":
        latest = reference.year - 100
        year = latest - (latest - p.yy) % 100
    else:
        year = reference.year - (reference.year - p.yy) % 100
        if (year, p.month, p.day) > (reference.year, reference.month, reference.day):
            year -= 100
    if _birth_date(year, p.month, p.day) > reference:
        raise ImpossibleDateError(
            f"Födelsedatumet i personnumret ligger efter {reference.isoformat()}"
        )
    return PersonId(f"{year:04d}{p.mmdd_serial}", p.kind)


def check(raw: str) -> None:
    """Validate what can be checked without a reference date (form, check digit, month and day).

    For rows whose own date is unusable: their personnummer is still checked and reported."""
    p = _parts(raw)
    if p.century is not None:
        _birth_date(p.century * 100 + p.yy, p.month, p.day)


def mask(raw: str) -> str:
    """Mask a raw value for error reports: `YYYYMMDD-****` (`YYMMDD-****` for short forms).

    Works on anything: at most the date part is kept and never the last four digits."""
    digits = "".join(ch for ch in raw if ch.isdigit())
    if len(digits) >= 12:
        kept = digits[:8]
    elif len(digits) >= 10:
        kept = digits[:6]
    else:
        kept = digits[: min(6, max(0, len(digits) - 4))]
    return f"{kept}-****" if kept else "****"


FICTIONAL_SERIALS = range(980, 1000)


def is_fictional(digits: str) -> bool:
    """True if a 10- or 12-digit number (separator removed) has a födelsenummer in 980–999."""
    return int(digits[-4:-1]) in FICTIONAL_SERIALS


def fictional_number(birth: date, *, female: bool, pick: int, samordning: bool = False) -> str:
    """The 12 digits of a fictional number: födelsenummer 980 + 2 * pick (+1 for a man), so
    `pick` 0–9 gives ten distinct numbers per birth date and sex."""
    if not 0 <= pick < len(FICTIONAL_SERIALS) // 2:
        raise ValueError(f"pick ska vara 0–9, inte {pick}")
    serial = FICTIONAL_SERIALS[0] + 2 * pick + (0 if female else 1)
    day = birth.day + _SAMORDNING_OFFSET if samordning else birth.day
    nine = f"{birth.year % 100:02d}{birth.month:02d}{day:02d}{serial:03d}"
    return f"{birth.year // 100:02d}{nine}{luhn_digit(nine)}"


def luhn_digit(nine_digits: str) -> int:
    """The Luhn check digit of the first nine digits of the 10-digit form."""
    doubled = sum(map(_DOUBLED.__getitem__, map(int, nine_digits[0::2])))
    total = doubled + sum(map(int, nine_digits[1::2]))
    return (10 - total % 10) % 10


class _Parts(NamedTuple):
    century: int | None  # None for the short forms
    yy: int
    month: int
    day: int  # the birth day: 60 already taken off a samordningsnummer
    sign: str
    mmdd_serial: str  # the 8 digits after the year, as written
    kind: IdKind


def _parts(raw: str) -> _Parts:
    """Split an accepted form and check what needs no century: month, day and check digit."""
    text = raw.strip()
    if m := _LONG.fullmatch(text):
        century, yymmdd, sign, serial = int(m.group(1)[:2]), m.group(1)[2:], "-", m.group(2)
    elif m := _SHORT.fullmatch(text):
        century, yymmdd, sign, serial = None, m.group(1), m.group(2), m.group(3)
    else:
        raise FormatError(
            "Ogiltigt personnummer: väntade ÅÅÅÅMMDD-NNNN, ÅÅÅÅMMDDNNNN, ÅÅMMDD-NNNN "
            "eller ÅÅMMDD+NNNN"
        )
    month, day = int(yymmdd[2:4]), int(yymmdd[4:6])
    kind = IdKind.PERSONNUMMER
    if day > _SAMORDNING_OFFSET:
        day, kind = day - _SAMORDNING_OFFSET, IdKind.SAMORDNINGSNUMMER
    _birth_date(2000, month, day)  # a leap year: 29 February is judged once the century is known
    ten = yymmdd + serial
    if luhn_digit(ten[:9]) != int(ten[9]):
        raise ChecksumError("Fel kontrollsiffra i personnumret")
    return _Parts(century, int(yymmdd[:2]), month, day, sign, yymmdd[2:] + serial, kind)


def _birth_date(year: int, month: int, day: int) -> date:
    try:
        return date(year, month, day)
    except ValueError:
        raise ImpossibleDateError("Omöjligt födelsedatum i personnumret") from None
