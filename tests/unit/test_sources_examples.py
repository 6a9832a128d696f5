"""The example files read fully: the project's own (deploy/examples) and copies of the
formats README's examples (tests/data/shared-examples, with their original encodings)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from adapter.domain import (
    DischargeNotice,
    Event,
    EventCode,
    Huvudman,
    IdKind,
    Plan,
    PlanKind,
    PlanStatus,
    Prea60Row,
    Responsible,
)
from adapter.settings import REPO_ROOT
from adapter.sources import Reading, read_file

MAPPINGS_DIR = REPO_ROOT / "mappings"

EXAMPLES = REPO_ROOT / "deploy" / "examples"
SHARED = Path(__file__).resolve().parent.parent / "data" / "shared-examples"


def read_all(path: Path) -> tuple[Reading, list[object]]:
    reading = read_file(path, mappings_dir=MAPPINGS_DIR)
    records = list(reading.records())
    assert reading.summary.errors == [], reading.summary.errors
    assert reading.summary.rows == len(records)
    return reading, records


@pytest.mark.parametrize("directory", [EXAMPLES, SHARED], ids=["deploy", "shared"])
def test_every_example_file_reads_without_errors(directory: Path) -> None:
    files = sorted(p for p in directory.iterdir() if p.suffix in (".csv", ".jsonl"))
    assert len(files) == 4
    kinds = set()
    for path in files:
        reading, records = read_all(path)
        assert records
        kinds.add(reading.kind)
    assert kinds == {"prea60", "plans", "events", "discharges"}


def test_own_prea60_run() -> None:
    _, rows = read_all(EXAMPLES / "prea60-2025-03-10.csv")
    assert all(isinstance(r, Prea60Row) for r in rows)
    assert len(rows) == 20
    assert {(r.run_date, r.unit_hsa_id) for r in rows} == {
        (date(2025, 3, 10), "SE2321000057-E00000000101")
    }
    at_risk = [r for r in rows if r.risk_percent >= Decimal(15)]
    assert len(at_risk) == 12
    assert Decimal("15.0") in {r.risk_percent for r in at_risk}  # the threshold itself
    assert Decimal("14.9") in {r.risk_percent for r in rows if r not in at_risk}
    by_name = {r.family_name: r for r in rows}
    assert by_name["Karlsson"].patient.digits == "192311059808"  # written 231105+9808
    assert by_name["Gustafsson"].patient.digits == "193901229868"  # written 390122-9868
    assert by_name["Ek"].patient.digits == "193607119843"  # written without a dash
    assert by_name["Mohammed"].patient.kind is IdKind.SAMORDNINGSNUMMER
    assert by_name["Udd"].given_name == "Gösta"  # cp1252 decoded
    assert len({r.patient for r in rows}) == 20


def test_own_plans() -> None:
    _, plans = read_all(EXAMPLES / "plans.jsonl")
    assert all(isinstance(p, Plan) for p in plans)
    assert len(plans) == 10
    versions = [(p.key, p.version) for p in plans if p.key == "cosmic:VP-2001"]
    assert versions == [("cosmic:VP-2001", 1), ("cosmic:VP-2001", 2)]  # both yielded
    kinds = {p.kind for p in plans}
    assert kinds == {PlanKind.SIP, PlanKind.PATIENTKONTRAKT}
    assert {p.kva for p in plans if p.kind is PlanKind.SIP} == {"AU124", "AU125"}
    assert {p.status for p in plans} == set(PlanStatus) - {PlanStatus.REVOKED}
    sip = next(p for p in plans if p.key == "lifecare:SIP-302")
    assert sip.overall_responsibility is Huvudman.REGION
    assert [a.responsible for a in sip.actions] == [
        Responsible.REGION,
        Responsible.KOMMUN,
        Responsible.KOMMUN,
    ]
    assert sip.actions[2].goal == sip.goals[0].id
    v2 = plans[1]
    assert v2.participant("narstaende") is not None
    assert v2.agreed_appointments[0].date == date(2025, 4, 15)
    assert v2.goals[1].due == date(2025, 6, 30)


def test_own_events_and_discharges() -> None:
    _, events = read_all(EXAMPLES / "events.csv")
    assert all(isinstance(e, Event) for e in events)
    codes = [e.code for e in events]
    assert codes.count(EventCode.AU124) == 2
    assert codes.count(EventCode.AW010) == 2
    assert codes.count(EventCode.SIPKALL) == 2
    assert {e.plan_ref for e in events} >= {"lifecare:SIP-301", "cosmic:VP-2001", None}
    _, notices = read_all(EXAMPLES / "discharges.csv")
    assert all(isinstance(n, DischargeNotice) for n in notices)
    assert [n.needs_sip for n in notices] == [True, True, True, False, True, False]
    # around holidays: julafton, skärtorsdag, midsommarafton, nyårsafton, Kristi himmelsfärd
    assert [n.ready_at.date() for n in notices] == [
        date(2024, 12, 23),
        date(2025, 4, 17),
        date(2025, 6, 19),
        date(2025, 12, 30),
        date(2025, 5, 28),
        date(2025, 6, 5),
    ]
    assert notices[2].ready_at.utcoffset() == timedelta(hours=2)  # summer time
    assert notices[0].ready_at == datetime.fromisoformat("2024-12-23T10:15+01:00")


def test_shared_examples_keep_their_encodings() -> None:
    assert (SHARED / "prea60-2024-12-09.csv").read_bytes().count(b"\r\n") == 7  # cp1252, CRLF
    assert (SHARED / "events.csv").read_bytes().startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM
    _, rows = read_all(SHARED / "prea60-2024-12-09.csv")
    assert [r.family_name for r in rows][:2] == ["Lind", "Öberg"]
    assert rows[-1].patient.kind is IdKind.SAMORDNINGSNUMMER
    _, events = read_all(SHARED / "events.csv")
    assert events[0].contact_type == "hembesök"
    _, notices = read_all(SHARED / "discharges.csv")
    assert notices[1].hospital == "Länssjukhuset Ryhov"
