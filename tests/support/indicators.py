"""An Aneby-like unit on the server for the indicator tests (no tests here).

The data and every expected number are written out by hand below, period 2024-10-01 – 2024-12-11
(as of 2024-12-11), Prea60 runs 2024-11-11 and 2024-12-09 (risk group threshold 15 %):

- 19 in the risk group of the 2024-12-09 run (risk 15.0 %–33 %); 17 of them with an active plan.
  One of the 19 joins mid-period: absent from the 2024-11-11 run, AU124 and a new plan on
  2024-12-10. Of the 16 other planned: 10 with AW010 on 2024-10-15, 2 with UPPF on 2024-11-20,
  4 without a follow-up since their plan was made (2024-06-01: more than 90 days ago).
- Noise: 14.9 % with a plan (below the threshold), one in the 2024-11-11 run only (has left),
  one in another unit's group; AU124 on 2024-09-30 (before the period) and one by another unit.
- AU124: 2 on 2024-10-02 + the joiner's = 3; AU125: 1 (2024-11-05); AW010: the 10 above.
- Notices (needing both huvudmän) of risk-group patients: Mon 2024-12-02 10:00 twice (deadline
  the end of Thu 2024-12-05), one called 12-04 (in time), one 12-06 (late); Tue 2024-12-10 10:00
  without a call (deadline 12-13: undecided on 12-11, left out); one needing the kommun only.

So: plan coverage 17/19, followed up in time 13/19 (10 + 2 + the joiner), AU124 3, AU125 1,
AW010 10, SIP called in time 1/2. A second unit has a run whose patients are all below 15 %: an
empty risk group.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from itertools import islice

import pytest

from adapter.conformance import install_conformance
from adapter.domain import (
    Consent,
    DischargeNotice,
    Event,
    EventCode,
    PersonId,
    Prea60Row,
    Record,
    SourceRef,
)
from adapter.fhirclient import FhirClient
from adapter.indicators.compute import Period
from adapter.mapping import load_mappings, map_record, transaction_bundle
from adapter.settings import REPO_ROOT, get_settings
from tests.support.people import Births, fictional_person
from tests.support.records import STOCKHOLM, patientkontrakt

PERIOD = Period(date(2024, 10, 1), date(2024, 12, 11))
RUNS = (date(2024, 11, 11), date(2024, 12, 9))
SRC = SourceRef("indikatortest", 1)
MAPPINGS = load_mappings(REPO_ROOT / "mappings")

# The hand-counted results (see the module docstring).
GROUP, WITH_PLAN, FOLLOWED_UP = 19, 17, 13
AU124, AU125, AW010 = 3, 1, 10
CALLED_IN_TIME, NOTICES_DECIDED = 1, 2
# Deadline day of each notice (end of the 3rd working day after the notice day), by hand.
DEADLINES = {"in-time": date(2024, 12, 5), "late": date(2024, 12, 5), "open": date(2024, 12, 13)}


def hand_percent(numerator: int, denominator: int) -> Decimal:
    return (Decimal(100 * numerator) / denominator).quantize(Decimal("0.01"))


def unique_unit() -> str:
    return f"SE2321000057-E{random.SystemRandom().randrange(10**11):011d}"


def new_person(rng: random.Random) -> PersonId:
    return fictional_person(rng, Births(date(1930, 1, 1), 30))


@dataclass
class Scenario:
    unit: str
    empty_unit: str
    other_unit: str
    records: list[Record] = field(default_factory=list)
    group: list[PersonId] = field(default_factory=list)  # the 19
    planned: list[PersonId] = field(default_factory=list)  # the 17
    followed_up: list[PersonId] = field(default_factory=list)  # the 13
    joiner: PersonId | None = None
    notice_ids: dict[str, str] = field(default_factory=dict)  # "in-time" → Meddelande-id

    @property
    def people(self) -> set[PersonId]:
        return {r.patient for r in self.records}


def _row(person: PersonId, unit: str, run: date, risk: str) -> Prea60Row:
    return Prea60Row(person, "Test", "Person", Decimal(risk), run, unit, "Testenheten", None, SRC)


def _plan(person: PersonId, unit: str, key: str, created: date) -> Record:
    plan = patientkontrakt(person, source_system="indikatortest")
    return replace(
        plan,
        plan_id=key,
        unit_hsa_id=unit,
        created=created,
        updated=created,
        valid_until=None,
        next_follow_up=None,
        agreed_appointments=(),
    )


def _event(person: PersonId, day: date, code: EventCode, unit: str) -> Event:
    return Event(person, day, code, unit, SRC, contact_type="besök")


def _notice(person: PersonId, message_id: str, ready: datetime, both: bool) -> DischargeNotice:
    return DischargeNotice(
        message_id, person, ready, "Höglandssjukhuset", "Medicin 3", True, both, Consent.JA, SRC
    )


def aneby(seed: int | None = None) -> Scenario:
    rng = random.Random(seed if seed is not None else uuid.uuid4().int)
    tag = uuid.uuid4().hex[:8]
    s = Scenario(unique_unit(), unique_unit(), unique_unit())
    add = s.records.append
    for n in range(GROUP):
        person = new_person(rng)
        s.group.append(person)
        risk = "15.0" if n == 0 else f"{16 + n}.5"
        joiner = n == GROUP - 1
        for run in RUNS[1:] if joiner else RUNS:
            add(_row(person, s.unit, run, risk))
        if joiner:
            s.joiner = person
            add(_plan(person, s.unit, f"{tag}-{n}", date(2024, 12, 10)))
            add(_event(person, date(2024, 12, 10), EventCode.AU124, s.unit))
            s.planned.append(person)
            s.followed_up.append(person)
        elif n < WITH_PLAN - 1:
            add(_plan(person, s.unit, f"{tag}-{n}", date(2024, 6, 1)))
            s.planned.append(person)
            if n < 10:
                add(_event(person, date(2024, 10, 15), EventCode.AW010, s.unit))
                s.followed_up.append(person)
            elif n < 12:
                add(_event(person, date(2024, 11, 20), EventCode.UPPF, s.unit))
                s.followed_up.append(person)
    g = s.group
    add(_event(g[1], date(2024, 10, 2), EventCode.AU124, s.unit))
    add(_event(g[2], date(2024, 10, 2), EventCode.AU124, s.unit))
    add(_event(g[3], date(2024, 11, 5), EventCode.AU125, s.unit))
    add(_event(g[4], date(2024, 9, 30), EventCode.AU124, s.unit))  # before the period
    add(_event(g[5], date(2024, 10, 20), EventCode.AU124, s.other_unit))  # another unit
    # Notices: both huvudmän unless said otherwise.
    monday = datetime(2024, 12, 2, 10, tzinfo=STOCKHOLM)
    tuesday = datetime(2024, 12, 10, 10, tzinfo=STOCKHOLM)
    for name, person, ready, both in (
        ("in-time", g[6], monday, True),
        ("late", g[7], monday, True),
        ("open", g[8], tuesday, True),
        ("kommun-only", g[9], monday, False),
    ):
        s.notice_ids[name] = f"{tag}-{name}"
        add(_notice(person, s.notice_ids[name], ready, both))
    add(_event(g[6], date(2024, 12, 4), EventCode.SIPKALL, s.unit))
    add(_event(g[7], date(2024, 12, 6), EventCode.SIPKALL, s.unit))
    # Noise patients.
    below, left, elsewhere = new_person(rng), new_person(rng), new_person(rng)
    for run in RUNS:
        add(_row(below, s.unit, run, "14.9"))
        add(_row(elsewhere, s.other_unit, run, "40.0"))
    add(_plan(below, s.unit, f"{tag}-below", date(2024, 6, 1)))
    add(_row(left, s.unit, RUNS[0], "30.0"))
    add(_plan(left, s.unit, f"{tag}-left", date(2024, 6, 1)))
    # The empty risk group: a unit whose one run lists only low risks.
    for _ in range(3):
        add(_row(new_person(rng), s.empty_unit, RUNS[1], "4.0"))
    return s


def _chunks(items: list, size: int) -> Iterator[list]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def on_server(client: FhirClient) -> Scenario:
    """A fresh scenario written to the server, after the profiles: the SearchParameters must be
    there before the data (the server indexes what comes after them)."""
    install_conformance(client, REPO_ROOT / "profiles")
    scenario = aneby()
    write_records(client, scenario.records)
    return scenario


def use_servers(monkeypatch: pytest.MonkeyPatch, **settings: str) -> None:
    """Settings for a CLI run (SIP_FHIR_<NAME>=value); the cached settings are dropped."""
    for name, value in settings.items():
        monkeypatch.setenv(f"SIP_FHIR_{name.upper()}", value)
    get_settings.cache_clear()


def write_records(client: FhirClient, records: Iterable[Record]) -> None:
    """Map and write, a few records per transaction (a record's resources never split)."""
    for chunk in _chunks(list(records), 40):
        resources = [r for record in chunk for r in map_record(record, MAPPINGS)]
        client.transaction(transaction_bundle(resources))
