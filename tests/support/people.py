"""Personnummer no real person can have, for patients tests invent at run time."""

from __future__ import annotations

import random
from datetime import date, timedelta

from adapter.domain import PersonId
from adapter.personnummer import luhn_digit


def fictional_person(rng: random.Random) -> PersonId:
    """A personnummer no real person has: födelsenummer 980–999 (project rule)."""
    born = date(1920, 1, 1) + timedelta(days=rng.randrange(80 * 365))
    nine = f"{born:%y%m%d}{rng.randrange(980, 1000)}"
    return PersonId(f"{born:%Y%m%d}{nine[6:]}{luhn_digit(nine)}")
