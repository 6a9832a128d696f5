"""`adapter.synth`: the generated data set, read back with plain csv/json (not the adapter's
readers, except in the one test that checks those readers accept every row)."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from statistics import median
from typing import Any

import holidays
import pytest

from adapter.domain import RowError
from adapter.settings import REPO_ROOT
from adapter.synth import SynthConfig, generate
from tests.support.formats import DISCHARGES as DISCHARGES_HEADER
from tests.support.formats import EVENTS as EVENTS_HEADER
from tests.support.formats import PREA60 as PREA60_HEADER

MAPPINGS_DIR = REPO_ROOT / "mappings"

END = date(2024, 12, 31)
TARGET_SHARE = 0.04
PNR_FORM = re.compile(r"\d{8}-?\d{4}")
HSA_UNIT = re.compile(r"SE2321000057-E\d{11}")
HSA_PERSON = re.compile(r"SE2321000057-P\d{11}")


def luhn_ok(ten: str) -> bool:
    """Luhn over the 10-digit form, written out again here so the generator cannot grade itself."""
    total = 0
    for i, ch in enumerate(reversed(ten)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d if d < 10 else d - 9
    return total % 10 == 0


def digits(pnr: str) -> str:
    return pnr.replace("-", "")


def risk(text: str) -> float:
    return float(text.replace(",", "."))


@dataclass
class DataSet:
    out: Path
    patients: int
    prea60: dict[str, list[dict[str, str]]] = field(default_factory=dict)  # by file name
    events: list[dict[str, str]] = field(default_factory=list)
    discharges: list[dict[str, str]] = field(default_factory=list)
    plan_lines: list[dict[str, Any]] = field(default_factory=list)

    @property
    def latest_plans(self) -> dict[tuple[str, str], dict[str, Any]]:
        return {(p["source_system"], p["plan_id"]): p for p in self.plan_lines}

    def runs(self) -> dict[date, list[dict[str, str]]]:
        """Prea60 rows by run date, across the units' files."""
        found: dict[date, list[dict[str, str]]] = defaultdict(list)
        for rows in self.prea60.values():
            for row in rows:
                text = row["Beräkningsdatum"]
                day = date.fromisoformat(
                    text if "-" in text else f"{text[:4]}-{text[4:6]}-{text[6:]}"
                )
                found[day].append(row)
        return dict(sorted(found.items()))

    def all_personnummer(self) -> list[str]:
        found = [r["Personnummer"] for rows in self.prea60.values() for r in rows]
        found += [e["Personnummer"] for e in self.events]
        found += [d["Personnummer"] for d in self.discharges]
        return found + [p["patient"] for p in self.plan_lines]


def _csv(path: Path, encoding: str, delimiter: str) -> list[dict[str, str]]:
    with path.open(encoding=encoding, newline="") as f:
        return list(csv.DictReader(f, delimiter=delimiter))


def load(out: Path, patients: int) -> DataSet:
    data = DataSet(out, patients)
    for path in sorted(out.glob("prea60-*.csv")):
        own = path.read_bytes().startswith(b"\xef\xbb\xbf")
        enc, sep = ("utf-8-sig", ",") if own else ("cp1252", ";")
        data.prea60[path.name] = _csv(path, enc, sep)
    data.events = _csv(out / "events.csv", "utf-8-sig", ";")
    data.discharges = _csv(out / "discharges.csv", "utf-8", ";")
    with (out / "plans.jsonl").open(encoding="utf-8") as f:
        data.plan_lines = [json.loads(line) for line in f]
    return data


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> DataSet:
    out = tmp_path_factory.mktemp("synth")
    generate(SynthConfig(patients=4000, seed=7), out)
    return load(out, 4000)


@pytest.fixture(scope="module")
def everyone(tmp_path_factory: pytest.TempPathFactory) -> DataSet:
    """A data set whose Prea60 export lists (almost) every patient: the whole population."""
    out = tmp_path_factory.mktemp("synth-all")
    generate(SynthConfig(patients=600, seed=3, min_listed=0.1), out)
    return load(out, 600)


def _digests(out: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir())}


def test_same_seed_gives_the_same_bytes_and_another_seed_other_data(tmp_path: Path) -> None:
    for name, seed in (("a", 11), ("b", 11), ("c", 12)):
        generate(SynthConfig(patients=300, seed=seed), tmp_path / name)
    a, b, c = (_digests(tmp_path / n) for n in "abc")
    assert a == b
    assert a.keys() == c.keys()
    assert all(a[name] != c[name] for name in ("plans.jsonl", "events.csv", "discharges.csv"))


def _ids(out: Path) -> set[str]:
    """Every plan id and discharge message id of a data set (what a server keys them by)."""
    lines = (out / "plans.jsonl").read_text("utf-8").splitlines()
    plans = {json.loads(line)["plan_id"] for line in lines}
    with (out / "discharges.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle, delimiter=";"))
    column = rows[0].index(DISCHARGES_HEADER[0])
    return plans | {row[column] for row in rows[1:]}


def test_two_seeds_share_no_plan_or_notice_id_and_one_seed_keeps_its_ids(tmp_path: Path) -> None:
    # Two synthetic sets loaded into one server must not overwrite each other's plans/notices.
    for name, seed in (("a", 21), ("b", 21), ("c", 22)):
        generate(SynthConfig(patients=400, seed=seed), tmp_path / name)
    a, b, c = (_ids(tmp_path / n) for n in "abc")
    assert len(a) > 20
    assert a == b
    assert not a & c


def test_every_personnummer_is_well_formed_with_a_valid_check_digit(data: DataSet) -> None:
    numbers = data.all_personnummer()
    assert len(numbers) > 10_000
    for pnr in numbers:
        assert PNR_FORM.fullmatch(pnr), pnr
        twelve = digits(pnr)
        assert luhn_ok(twelve[2:]), pnr
        assert 980 <= int(twelve[8:11]) <= 999, pnr  # fictional: Skatteverket's test series
        day = int(twelve[6:8])
        date(int(twelve[:4]), int(twelve[4:6]), day - 60 if day > 60 else day)  # a real date
    forms = Counter("-" in p for p in numbers)
    assert forms[True] > forms[False] > 0  # mostly YYYYMMDD-NNNN, some YYYYMMDDNNNN


def test_population_has_samordningsnummer_centenarians_and_mostly_1920_to_1955(
    everyone: DataSet,
) -> None:
    people = {
        digits(p) for rows in everyone.prea60.values() for p in (r["Personnummer"] for r in rows)
    }
    assert len(people) > 0.95 * everyone.patients  # nearly all listed at this floor
    assert any(int(p[6:8]) > 60 for p in people)
    assert any(int(p[:4]) <= END.year - 100 for p in people)
    born = Counter(1920 <= int(p[:4]) <= 1955 for p in people)
    assert born[True] > 0.75 * len(people)
    assert born[False] > 0


def test_personnummer_are_distinct_and_keep_their_name(everyone: DataSet) -> None:
    names: dict[str, set[str]] = defaultdict(set)
    for rows in everyone.prea60.values():
        for row in rows:
            names[digits(row["Personnummer"])].add(row["Namn"])
    assert len(names) <= everyone.patients
    assert all(len(n) == 1 for n in names.values())


def test_plans_events_and_notices_concern_listed_patients(everyone: DataSet) -> None:
    listed: dict[str, str] = {}
    for rows in everyone.prea60.values():
        for row in rows:
            family, given = row["Namn"].split(", ")
            listed[digits(row["Personnummer"])] = f"{given} {family}"
    assert everyone.plan_lines and everyone.events and everyone.discharges
    for plan in everyone.plan_lines:
        assert digits(plan["patient"]) in listed
        patient_roles = [p for p in plan["participants"] if p["role"] == "patient"]
        assert patient_roles[0]["name"] == listed[digits(plan["patient"])]
    for row in everyone.events + everyone.discharges:
        assert digits(row["Personnummer"]) in listed


def test_headers_delimiters_and_encodings_are_as_declared(data: DataSet) -> None:
    out = data.out
    diver = sorted(p for p in out.glob("prea60-*.csv") if p.stem.count("-") == 3)
    own = sorted(p for p in out.glob("prea60-*.csv") if p.stem.count("-") == 4)
    assert len(diver) == len(own) == 53  # every Monday of 2024, Diver's file and one unit's own
    for path in diver:
        raw = path.read_bytes()
        assert not raw.startswith(b"\xef\xbb\xbf")
        with pytest.raises(UnicodeDecodeError):
            raw.decode("utf-8")  # Windows-1252: "ä" is the single byte 0xE4
        lines = raw.decode("cp1252").split("\r\n")
        assert lines[0].split(";") == PREA60_HEADER
        assert lines[-1] == ""  # CRLF after every line
    for path in own:
        raw = path.read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf")
        first = raw.decode("utf-8-sig").splitlines()[0]
        assert next(csv.reader([first])) == PREA60_HEADER
    events = (out / "events.csv").read_bytes()
    assert events.startswith(b"\xef\xbb\xbf")
    assert events.decode("utf-8-sig").splitlines()[0].split(";") == EVENTS_HEADER
    notices = (out / "discharges.csv").read_bytes()
    assert not notices.startswith(b"\xef\xbb\xbf")
    assert notices.decode("utf-8").splitlines()[0].split(";") == DISCHARGES_HEADER


def test_prea60_rows_follow_the_format(data: DataSet) -> None:
    runs = data.runs()
    assert all(day.weekday() == 0 and date(2024, 1, 1) <= day <= END for day in runs)
    for name, rows in data.prea60.items():
        assert rows, name
        for row in rows:
            assert re.fullmatch(r"\d{1,2},\d", row["Risk (%)"]), row["Risk (%)"]  # decimal comma
            assert 10 <= risk(row["Risk (%)"]) < 100
            assert HSA_UNIT.fullmatch(row["Listningsenhet HSA-id"])
            assert row["Listningsenhet"]
            gp = row["Fast läkarkontakt HSA-id"]
            assert gp == "" or HSA_PERSON.fullmatch(gp)
            assert re.fullmatch(r"[^,]+, [^,]+", row["Namn"])
    units = {r["Listningsenhet HSA-id"] for rows in data.prea60.values() for r in rows}
    assert len(units) == 6
    own_rows = [r for n, rows in data.prea60.items() if n.count("-") == 4 for r in rows]
    assert all(re.fullmatch(r"\d{8}", r["Beräkningsdatum"]) for r in own_rows)


def test_risk_group_share_is_near_the_target_with_a_tail_and_churn(data: DataSet) -> None:
    runs = data.runs()
    groups = {
        day: {digits(r["Personnummer"]) for r in rows if risk(r["Risk (%)"]) >= 15}
        for day, rows in runs.items()
    }
    shares = [len(g) / data.patients for g in groups.values()]
    newest = list(groups.values())[-1]
    assert abs(len(newest) / data.patients - TARGET_SHARE) <= 0.01
    assert abs(sum(shares) / len(shares) - TARGET_SHARE) <= 0.008
    latest = [risk(r["Risk (%)"]) for r in list(runs.values())[-1]]
    assert median(latest) < 15  # most listed patients are below the threshold ...
    assert max(latest) > 35  # ... and a tail lies well above it
    first = next(iter(groups.values()))
    assert len(first - newest) > 0.2 * len(first)  # some leave the group
    assert len(newest - first) > 0.2 * len(newest)  # some enter it


def test_plan_versions_are_consecutive_and_plans_are_varied(data: DataSet) -> None:
    versions: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for line in data.plan_lines:
        versions[(line["source_system"], line["plan_id"])].append(line)
    for lines in versions.values():
        assert [line["version"] for line in lines] == list(range(1, len(lines) + 1))
        assert len({(line["created"], digits(line["patient"])) for line in lines}) == 1
        updated = [line["updated"] for line in lines]
        assert updated == sorted(updated) and updated[-1] <= END.isoformat()
    latest = data.latest_plans.values()
    kinds = Counter((p["kind"], p.get("kva")) for p in latest)
    assert {("sip", "AU124"), ("sip", "AU125"), ("patientkontrakt", None)} == set(kinds)
    statuses = Counter(p["status"] for p in latest)
    assert statuses["active"] > statuses["completed"] > 0
    assert statuses["revoked"] > 0 and statuses["draft"] > 0
    assert sum(len(lines) > 2 for lines in versions.values()) > 10
    expired = [
        p for p in latest if p["status"] == "active" and p.get("valid_until", "9") < END.isoformat()
    ]
    assert expired  # some active plans are past valid_until


def test_plan_content_follows_the_format(data: DataSet) -> None:
    for plan in data.latest_plans.values():
        roles = {p["role"] for p in plan["participants"]}
        contact = next(p for p in plan["participants"] if p["role"] == "fast-vardkontakt")
        assert HSA_PERSON.fullmatch(contact["hsa_id"]) and contact["huvudman"] == "region"
        assert HSA_UNIT.fullmatch(plan["unit_hsa_id"]) and plan["what_matters"]
        goal_ids = {g["id"] for g in plan["goals"]}
        assert all(g["expressed_by"] in ("patient", "care") for g in plan["goals"])
        responsible = {a["responsible"] for a in plan["actions"]}
        assert all(a.get("goal") is None or a["goal"] in goal_ids for a in plan["actions"])
        if plan["kind"] == "sip":
            assert plan["overall_responsibility"] in ("region", "kommun")
            assert {"region", "kommun", "patient"} <= responsible
            assert {"samordningsansvarig", "bistandshandlaggare"} <= roles
        else:
            assert "kva" not in plan and "overall_responsibility" not in plan
            assert responsible <= {"region", "patient"}
            if "next_follow_up" in plan:
                assert plan["agreed_appointments"][0]["date"] == plan["next_follow_up"]
    relatives = [
        p for plan in data.latest_plans.values() for p in plan["participants"]
        if p["role"] == "narstaende"
    ]  # fmt: skip
    assert relatives and all(re.fullmatch(r".+ \(\w+\)", p["name"]) for p in relatives)


def test_events_refer_to_existing_plans_of_the_same_patient(data: DataSet) -> None:
    plans = {f"{s}:{i}": p for (s, i), p in data.latest_plans.items()}
    codes = Counter(e["Åtgärdskod"] for e in data.events)
    assert set(codes) == {"AU124", "AU125", "AW010", "UPPF", "SIPKALL"}
    assert {e["Kontakttyp"] for e in data.events} <= {"besök", "telefon", "video", "hembesök", ""}
    with_ref = [e for e in data.events if e["Plan-id"]]
    assert len(with_ref) > 0.8 * (len(data.events) - codes["SIPKALL"])
    expected_kind = {"AU124": "sip", "AU125": "sip", "AW010": "sip", "UPPF": "patientkontrakt"}
    for event in with_ref:
        plan = plans[event["Plan-id"]]
        assert digits(plan["patient"]) == digits(event["Personnummer"])
        assert plan["kind"] == expected_kind[event["Åtgärdskod"]]
        if event["Åtgärdskod"] in ("AU124", "AU125"):
            assert plan["kva"] == event["Åtgärdskod"]
        assert event["Datum"] <= END.isoformat()


def test_no_event_is_registered_twice_on_one_day(data: DataSet) -> None:
    keys = Counter((digits(e["Personnummer"]), e["Datum"], e["Åtgärdskod"]) for e in data.events)
    assert keys.most_common(1)[0][1] == 1


def test_follow_ups_come_every_60_to_200_days_and_some_are_overdue(data: DataSet) -> None:
    by_plan: dict[str, list[date]] = defaultdict(list)
    for e in data.events:
        if e["Plan-id"] and e["Åtgärdskod"] in ("AU124", "AU125", "AW010", "UPPF"):
            by_plan[e["Plan-id"]].append(date.fromisoformat(e["Datum"]))
    gaps = [(b - a).days for days in by_plan.values() for a, b in pairwise(days)]
    assert gaps and min(gaps) >= 60
    assert Counter(60 <= g <= 120 for g in gaps)[True] > 0.6 * len(gaps)
    active = [f"{s}:{i}" for (s, i), p in data.latest_plans.items() if p["status"] == "active"]
    overdue = [k for k in active if by_plan[k] and (END - max(by_plan[k])).days > 90]
    assert 0 < len(overdue) < 0.5 * len(active)


def _working_days_after(day: date, n: int) -> date:
    years = range(day.year, day.year + 2)
    off = set(holidays.SE(years=years, include_sundays=False))
    for y in years:
        midsummer_eve = next(date(y, 6, d) for d in range(19, 26) if date(y, 6, d).weekday() == 4)
        off |= {midsummer_eve, date(y, 12, 24), date(y, 12, 31)}
    while n:
        day += timedelta(days=1)
        n -= day.weekday() < 5 and day not in off
    return day


def test_discharges_cover_holidays_and_most_get_a_sip_call(data: DataSet) -> None:
    notices = data.discharges
    assert len({n["Meddelande-id"] for n in notices}) == len(notices)
    ready = [datetime.strptime(n["Utskrivningsklar"], "%Y-%m-%d %H:%M") for n in notices]
    assert all(date(2024, 1, 1) <= r.date() <= END for r in ready)
    days = {r.date() for r in ready}
    for holiday in (date(2024, 12, 24), date(2024, 12, 31), date(2024, 3, 29), date(2024, 6, 21)):
        assert any(abs((d - holiday).days) <= 3 for d in days), holiday
    assert {n["Samtycke SIP"] for n in notices} == {"Ja", "Nej", "Okänt"}
    calls: dict[str, list[date]] = defaultdict(list)
    for e in data.events:
        if e["Åtgärdskod"] == "SIPKALL":
            calls[digits(e["Personnummer"])].append(date.fromisoformat(e["Datum"]))
    outcome = Counter()
    for n, at in zip(notices, ready, strict=True):
        if (n["Insatser kommun"], n["Insatser region"]) != ("Ja", "Ja"):
            continue
        after = [c for c in calls[digits(n["Personnummer"])] if c >= at.date()]
        deadline = _working_days_after(at.date(), 3)
        outcome["none" if not after else "in time" if min(after) <= deadline else "late"] += 1
    needing = sum(outcome.values())
    assert needing > 50
    assert outcome["in time"] > 0.5 * needing
    assert outcome["late"] > 0 and outcome["none"] > 0


def test_the_adapters_readers_accept_every_generated_row(data: DataSet) -> None:
    sources = pytest.importorskip("adapter.sources")
    files = sorted(data.out.iterdir())
    accepted = 0
    for path in files:
        reading = sources.read_file(path, mappings_dir=MAPPINGS_DIR)
        errors = [item for item in reading if isinstance(item, RowError)]
        assert errors == [], (path.name, errors[:3])
        assert reading.summary.accepted == reading.summary.rows > 0
        accepted += reading.summary.accepted
    written = sum(len(rows) for rows in data.prea60.values()) + len(data.plan_lines)
    assert accepted == written + len(data.events) + len(data.discharges)
