"""Personnummer for patients tests invent at run time: never one a real person can have
(födelsenummer 980–999, correct check digit: the project rule of adapter/personnummer.py), drawn
at random so tests and runs share no patient.

Twenty serials per birth date is few: on a long-lived shared test server random patients do meet
earlier runs' patients. Tests that assert on every version of a patient they write (sync: each
resource at version 1) draw from a birth range only create-only writers use, `EVENTS_ONLY`; the
others draw from `ADULTS` (or a range of their own)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

from adapter.domain import PersonId
from adapter.personnummer import FICTIONAL_SERIALS, luhn_digit


@dataclass(frozen=True)
class Births:
    first: date
    years: int

    def draw(self, rng: random.Random) -> date:
        return self.first + timedelta(days=rng.randrange(self.years * 365))


ADULTS = Births(date(1925, 1, 1), 40)
# Patients only event and discharge files create (create-only: never updated, always version 1).
EVENTS_ONLY = Births(date(1900, 1, 1), 20)
_FIRST, _LAST = FICTIONAL_SERIALS[0], FICTIONAL_SERIALS[-1]


def fictional_personnummer(rng: random.Random | None = None, births: Births = ADULTS) -> str:
    """`YYYYMMDD-NNNC`, födelsenummer 980–999."""
    rng = rng or random.Random()
    born = births.draw(rng)
    nine = f"{born:%y%m%d}{rng.randint(_FIRST, _LAST)}"
    return f"{born:%Y%m%d}-{nine[6:]}{luhn_digit(nine)}"


def fictional_person(rng: random.Random | None = None, births: Births = ADULTS) -> PersonId:
    """The same as twelve digits, as the domain carries it."""
    return PersonId(fictional_personnummer(rng, births).replace("-", ""))


def fictional_people(count: int, seed: int, births: Births = ADULTS) -> list[PersonId]:
    """`count` different fictional persons, the same for a seed, in personnummer order."""
    rng = random.Random(seed)
    found: set[PersonId] = set()
    while len(found) < count:
        found.add(fictional_person(rng, births))
    return sorted(found, key=lambda p: p.digits)
