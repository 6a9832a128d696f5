"""The bad-input corpus (tests/data/bad/): every bad row reported exactly, every good row kept.

Each table lists, per line of the file, the column and a piece of the reason of every error
(and the masked value where it matters); the good lines are listed apart.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from adapter.domain import Record, RowError
from adapter.settings import REPO_ROOT
from adapter.sources import read_file

MAPPINGS_DIR = REPO_ROOT / "mappings"

BAD = Path(__file__).resolve().parent.parent / "data" / "bad"

# line -> [(column, reason substring, value or ... for "not checked")]
Expected = dict[int, list[tuple[str | None, str, object]]]

PREA60: Expected = {
    3: [("Personnummer", "Fel kontrollsiffra", "19310214-****")],
    4: [("Personnummer", "Omöjligt födelsedatum", "19380230-****")],
    5: [("Risk (%)", "Inte ett tal", "abc")],
    6: [("Risk (%)", "mellan 0 och 100", "140")],
    7: [("Namn", "Värde saknas", None)],
    8: [(None, "Upprepning av rad 2", None)],
    10: [("Namn", "mer än ett kommatecken", "Hedlund, Bertil, Erik")],
    11: [("Namn", "innehåller siffror", "19330927-****")],
    12: [("Beräkningsdatum", "Datumet finns inte", "2024-13-01")],
    13: [("Personnummer", "finns redan på rad 2 i samma körning", "19310214-****")],
    14: [(None, "Raden har 8 fält men rubriken 7", None)],
    16: [("Listningsenhet HSA-id", "Ogiltigt HSA-id", "E0001")],
    17: [("Personnummer", "ligger efter 2024-12-09", "20250101-****")],
    21: [
        ("Beräkningsdatum", "Ogiltigt datum", "2024/12/09"),
        ("Personnummer", "Fel kontrollsiffra", "19500223-****"),
    ],
    22: [("Risk (%)", "Värde saknas", None)],
}
PREA60_GOOD = [2, 9, 15, 20, 23]

EVENTS: Expected = {
    3: [("Åtgärdskod", "Okänt värde; tillåtna: AU124, AU125, AW010, UPPF, SIPKALL", "XY999")],
    5: [("Kontakttyp", "Okänt värde", "brev")],
    6: [("Plan-id", "Ogiltigt plan-id", "SIP-77")],
    7: [("Datum", "Värde saknas", None)],
    8: [(None, "Upprepning av rad 2", None)],
    10: [("Datum", "Ogiltigt datum", "2025/02/12")],
    11: [("Personnummer", "Fel kontrollsiffra", "19470819-****")],
    12: [("Utförande enhet HSA-id", "Värde saknas", None)],
}
EVENTS_GOOD = [2, 4, 9]

DISCHARGES: Expected = {
    3: [("Insatser kommun", "Väntade Ja eller Nej", "J")],
    4: [("Samtycke SIP", "Okänt värde; tillåtna: Ja, Nej, Okänt", "Kanske")],
    5: [("Utskrivningsklar", "Ogiltig tidpunkt", "2025-12-30")],
    6: [("Meddelande-id", "finns redan på rad 2 med andra värden", "LC-1")],
    7: [(None, "Upprepning av rad 2", None)],
    8: [("Utskrivningsklar", "sommartid", "2025-03-30 02:30")],
    9: [("Meddelande-id", "Värde saknas", None)],
    11: [("Insatser kommun", "Värde saknas", None)],
}
DISCHARGES_GOOD = [2, 10]

PLANS: Expected = {
    2: [(None, "Ogiltig JSON", ...)],
    3: [("actions[1].goal", "Okänt mål (m1)", "m9")],
    4: [("kind", "Okänt värde; tillåtna: 'sip' eller 'patientkontrakt'", "vardplan")],
    5: [("status", "Okänt värde", "open")],
    6: [("actions[0].responsible", "Okänt värde", "vardcentral")],
    7: [("participants[0].role", "Okänt värde", "kurator")],
    8: [("kva", "en SIP ska ha kva AU124 eller AU125", None)],
    9: [("kva", "Okänt värde; tillåtna: 'AU124' eller 'AU125'", "AW010")],
    10: [(None, "Upprepning av rad 1", None)],
    11: [("version", "finns redan på rad 1 med annat innehåll", "1")],
    12: [("patient", "Fel kontrollsiffra", "19310214-****")],
    15: [(None, "inte ett JSON-objekt", None)],
    17: [("version", "Värde saknas", None), ("updated", "Datumet finns inte", "2024-10-32")],
    18: [("overall_responsibility", "övergripande ansvaret", None)],
    19: [("kva", "Ett patientkontrakt har ingen kva", "AU124")],
    20: [("goals[0].expressed_by", "Okänt värde", "doctor")],
    21: [("title", "Får inte vara tomt", ...)],
    23: [("goals[1].id", "finns redan i planen", "m1")],
    24: [("agreed_appointments[0].date", "Ogiltigt datum", "12/12/2024")],
}
PLANS_GOOD = [1, 13, 14, 22]

CASES = [
    ("prea60-bad.csv", PREA60, PREA60_GOOD),
    ("events-bad.csv", EVENTS, EVENTS_GOOD),
    ("discharges-bad.csv", DISCHARGES, DISCHARGES_GOOD),
    ("plans-bad.jsonl", PLANS, PLANS_GOOD),
]


def split(name: str) -> tuple[list[Record], list[RowError], Path]:
    path = BAD / name
    items = list(read_file(path, mappings_dir=MAPPINGS_DIR))
    errors = [i for i in items if isinstance(i, RowError)]
    return [i for i in items if not isinstance(i, RowError)], errors, path


@pytest.mark.parametrize(("name", "expected", "good"), CASES, ids=[c[0] for c in CASES])
def test_every_bad_row_is_reported_exactly(name: str, expected: Expected, good: list[int]) -> None:
    _, errors, path = split(name)
    assert {e.file for e in errors} == {str(path)}
    got = [(e.line, e.column) for e in errors]
    want = [(line, column) for line, errs in sorted(expected.items()) for column, _, _ in errs]
    assert got == want
    for error in errors:
        matching = [x for x in expected[error.line] if x[0] == error.column]
        _, reason, value = matching[0]
        assert reason in error.reason, (error.line, error.reason)
        if value is not ...:
            assert error.value == value, (error.line, error.value)


@pytest.mark.parametrize(("name", "expected", "good"), CASES, ids=[c[0] for c in CASES])
def test_every_good_row_comes_through(name: str, expected: Expected, good: list[int]) -> None:
    records, _, _ = split(name)
    assert [r.source.line for r in records] == good
    reading = read_file(BAD / name, mappings_dir=MAPPINGS_DIR)
    list(reading)
    assert reading.summary.accepted == len(good)
    assert reading.summary.rows == len(good) + len(expected)


@pytest.mark.parametrize(("name", "expected", "good"), CASES, ids=[c[0] for c in CASES])
def test_repeats_are_notices_not_rejections(name: str, expected: Expected, good: list[int]) -> None:
    _, errors, _ = split(name)
    repeats = {e.line: e.duplicate_of for e in errors if e.duplicate_of is not None}
    want = {
        line: int(errs[0][1].rsplit(" ", 1)[1])
        for line, errs in expected.items()
        if errs[0][1].startswith("Upprepning")
    }
    assert repeats == want
    assert len(repeats) == 1


@pytest.mark.parametrize("name", [c[0] for c in CASES])
def test_no_full_personnummer_in_any_error(name: str) -> None:
    _, errors, _ = split(name)
    for error in errors:
        text = f"{error.reason} {error.value}"
        assert not any(pnr in text for pnr in _personnummer_in(BAD / name)), error


def _personnummer_in(path: Path) -> set[str]:
    """Every personnummer-shaped value in the file (not the organisation number in HSA-ids)."""
    text = path.read_text("utf-8")
    return {m.group(0) for m in re.finditer(r"(?<![\dA-Z])\d{6,8}[-+]?\d{4}(?!\d)", text)}


def test_prea60_details() -> None:
    records, _, _ = split("prea60-bad.csv")
    by_line = {r.source.line: r for r in records}
    madonna = by_line[15]
    assert (madonna.family_name, madonna.given_name) == ("Madonna", "")  # a lone name: family
    assert madonna.patient.kind == "samordningsnummer"
    assert by_line[20].patient.digits == "192311059808"  # "+": a centenarian
    assert by_line[23].patient.digits == "194812309955"
    assert (by_line[23].unit_name, by_line[23].gp_hsa_id) == ("", None)


def test_events_and_discharges_normalise_case() -> None:
    events, _, _ = split("events-bad.csv")
    assert [(e.code, e.contact_type) for e in events][1] == ("AU124", "besök")
    notices, _, _ = split("discharges-bad.csv")
    last = notices[-1]
    assert (last.needs_kommun, last.needs_region, last.consent) == (False, True, "okant")
    assert last.ward == ""
