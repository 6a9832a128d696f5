"""Swedish personnummer and samordningsnummer: parse, validate, mask.

Accepted forms (anything else is rejected):

- `YYYYMMDD-NNNN` and `YYYYMMDDNNNN`: the century is given.
- `YYMMDD-NNNN`: the latest birth date on or before the reference date (under 100 years old).
- `YYMMDD+NNNN`: 100 years or older. Skatteverket switches to `+` in the year a person turns
  100 (18 § folkbokföringslagen), some systems only on the birthday; the latest birth year at
  least 100 years before the reference year satisfies both conventions.

The reference date is the file's own date (the Prea60 run date, the event date, ...) passed in
by the caller: this module never reads the clock. `mask` is the one masking of personnummer in
text, used by the logs, error reports and `PersonId`. The check digit is Luhn over the 10-digit
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


def mask(text: str, *, whole: bool = False) -> str:
    """The one masking of personnummer (logs, error reports, HTTP errors, `PersonId` repr).

    In any text, every run shaped like a personnummer or samordningsnummer becomes its date
    part and `-****` (`19400402-****`, `400402-****`): 12 or 10 digits, the last four set off
    by `-`, `+`, a blank, `_` or nothing, not part of a longer run of digits, even when glued
    to letters (`SE194004029973`, `pnr194004029973x`). Glued to letters only when the date part
    is a possible date, so an HSA-id keeps its organisation number (`SE2321000057-E...`: month 21).

    `whole`: `text` is one value meant as a personnummer (a field, perhaps malformed): at most
    its date part is kept, never the last four digits, whatever its shape."""
    if whole:
        digits = "".join(ch for ch in text if ch.isdigit())
        if len(digits) >= 12:
            kept = digits[:8]
        elif len(digits) >= 10:
            kept = digits[:6]
        else:
            kept = digits[: min(6, max(0, len(digits) - 4))]
        return f"{kept}-****" if kept else "****"
    return _SHAPED.sub(_masked_match, text)


def written(digits: str) -> str:
    """`ÅÅÅÅMMDD-NNNN` from the 12 digits: the whole number, for where it must be shown or sent
    whole (the patient page, API payloads, a file in a source format), never for logs."""
    return f"{digits[:8]}-{digits[8:]}"


def shaped(text: str) -> bool:
    """Whether `text` holds something `mask` would hide: e.g. an id typed into a URL that must
    not be sent on to the FHIR server (its access log would keep the number)."""
    return mask(text) != text


# The date part (8 or 6 digits), one optional separator, the last four; no digit either side.
_SHAPED = re.compile(r"(?<!\d)(\d{8}|\d{6})[-+_\s]?\d{4}(?!\d)")


def _masked_match(match: re.Match[str]) -> str:
    date_part = match.group(1)
    text, start, end = match.string, match.start(), match.end()
    glued = (start > 0 and text[start - 1].isalpha()) or (end < len(text) and text[end].isalpha())
    if glued and not _possible_date(date_part[-4:]):
        return match.group()
    return f"{date_part}-****"


def _possible_date(mmdd: str) -> bool:
    """Month 1-12 and day 1-31, or 61-91 (samordningsnummer)."""
    month, day = int(mmdd[:2]), int(mmdd[2:])
    return 1 <= month <= 12 and (1 <= day <= 31 or 61 <= day <= 91)


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


def birth_date(person: PersonId) -> date:
    """The birth date in a normalised number (a samordningsnummer's day less 60)."""
    year, month, day = int(person.digits[:4]), int(person.digits[4:6]), int(person.digits[6:8])
    if day > _SAMORDNING_OFFSET:  # the day says so, whatever kind the caller gave
        day -= _SAMORDNING_OFFSET
    return _birth_date(year, month, day)


def legal_gender(person: PersonId) -> str:
    """FHIR AdministrativeGender of the legal sex the number carries: the second-last digit is
    odd for men, even for women (folkbokföringslagen 18 §; the same for samordningsnummer)."""
    return "male" if int(person.digits[-2]) % 2 else "female"
