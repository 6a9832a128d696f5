"""Fictional people: patients with valid personnummer, and the staff of each unit and kommun.

The numbers are well-formed (date, birth number, Luhn check digit) and fictional: födelsenummer
980–999 only, the series of Skatteverket's test personnummer (see adapter/personnummer.py), so
none can belong to a real person, even on a public test server.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

from adapter import personnummer
from adapter.synth import catalog

SAMORDNING_SHARE = 0.01
CENTENARIAN_SHARE = 0.005
YOUNGER_SHARE = 0.08  # under 70: chronic illness, not age, puts them on the list
NO_DASH_SHARE = 0.1  # `YYYYMMDDNNNN` instead of `YYYYMMDD-NNNN`


def luhn_digit(nine: str) -> str:
    """Check digit over YYMMDDNNN (weights 2,1,2,...; digit sums of the products)."""
    return str(personnummer.luhn_digit(nine))


@dataclass(frozen=True, slots=True)
class Person:
    digits: str  # YYYYMMDDNNNN
    sex: str  # "F" | "M"
    birth: date
    given: str
    family: str

    def written(self, dash: bool = True) -> str:
        return personnummer.written(self.digits) if dash else self.digits

    @property
    def full_name(self) -> str:
        return f"{self.given} {self.family}"

    @property
    def listed_name(self) -> str:
        """As Diver writes it: `Efternamn, Förnamn`."""
        return f"{self.family}, {self.given}"


@dataclass(frozen=True, slots=True)
class StaffMember:
    name: str
    hsa_id: str | None


def random_name(rng: random.Random, sex: str) -> tuple[str, str]:
    given = rng.choice(catalog.FEMALE_GIVEN if sex == "F" else catalog.MALE_GIVEN)
    return given, rng.choice(catalog.FAMILY)


class PersonFactory:
    """Makes patients with distinct personnummer; remembers only the numbers it has handed out."""

    def __init__(self, rng: random.Random, as_of: date) -> None:
        self._rng = rng
        self._as_of = as_of
        self._used: set[int] = set()

    def _age(self) -> int:
        rng = self._rng
        draw = rng.random()
        if draw < CENTENARIAN_SHARE:
            return rng.randint(100, 104)
        if draw < CENTENARIAN_SHARE + YOUNGER_SHARE:
            return rng.randint(45, 69)
        return int(rng.triangular(70, 100, 80))

    def make(self) -> Person:
        rng = self._rng
        sex = "F" if rng.random() < 0.55 else "M"
        age = self._age()
        samordning = rng.random() < SAMORDNING_SHARE
        while True:  # ten numbers per birth date and sex: a taken one moves the birth date
            birth = self._as_of - timedelta(days=age * 365 + rng.randrange(365))
            digits = personnummer.fictional_number(
                birth, female=sex == "F", pick=rng.randrange(10), samordning=samordning
            )
            if int(digits) not in self._used:
                self._used.add(int(digits))
                break
        given, family = random_name(rng, sex)
        return Person(digits, sex, birth, given, family)


def staff_hsa_id(unit: catalog.UnitInfo, index: int) -> str:
    return f"{catalog.REGION_HSA_PREFIX}-P{unit.number:05d}{index:06d}"


@dataclass(frozen=True, slots=True)
class UnitStaff:
    """Who works for the patients of one unit: its doctors and nurses, and kommun staff."""

    unit: catalog.UnitInfo
    doctors: tuple[StaffMember, ...]
    nurses: tuple[StaffMember, ...]
    kommun_staff: tuple[StaffMember, ...]

    @property
    def kommun_name(self) -> str:
        return f"{self.unit.kommun} kommun"

    @classmethod
    def make(cls, rng: random.Random, unit: catalog.UnitInfo) -> UnitStaff:
        def people(count: int, first_index: int, with_hsa: bool) -> tuple[StaffMember, ...]:
            members = []
            for k in range(count):
                given, family = random_name(rng, rng.choice("FM"))
                hsa = staff_hsa_id(unit, first_index + k) if with_hsa else None
                members.append(StaffMember(f"{given} {family}", hsa))
            return tuple(members)

        doctors = people(rng.randint(3, 6), 1, True)
        nurses = people(rng.randint(3, 5), 101, True)
        return cls(unit, doctors, nurses, people(4, 0, False))
