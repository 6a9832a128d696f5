"""The CSV common layer: encodings, delimiters, headers, file-level errors, column maps."""

from __future__ import annotations

import codecs
import csv
import io
import json
import shutil
import unicodedata
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from adapter.domain import Prea60Row, RowError
from adapter.settings import REPO_ROOT
from adapter.sources import ColumnMapError, SourceKind, kind_of, read_file, read_prea60
from adapter.sources.values import InvalidValue, parse_datetime, parse_decimal
from tests.support import formats
from tests.support.formats import PREA60 as HEADER

MAPPINGS_DIR = REPO_ROOT / "mappings"
UNIT = "SE2321000057-E00000000101"
GP = "SE2321000057-P00000000201"
ROWS = [
    ["19310214-9824", "Bergqvist, Elsa", "27,4", "2025-03-10", UNIT, "Ekeby vårdcentral", GP],
    ["231105+9808", "Karlsson, Dagny", "35.6", "20250310", UNIT, "Ekeby vårdcentral", ""],
    ["19520171-9829", "Öberg-Åhlén, Märta", "15", "2025-03-10", UNIT, "Ekeby vårdcentral", GP],
]


def write_csv(
    path: Path,
    rows: list[list[str]],
    *,
    header: list[str] = HEADER,
    delimiter: str = ";",
    encoding: str = "utf-8",
    newline: str = "\r\n",
) -> Path:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator=newline).writerows([header, *rows])
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def read(path: Path, **kwargs: object) -> tuple[list[Prea60Row], list[RowError]]:
    kwargs.setdefault("mappings_dir", MAPPINGS_DIR)
    reading = read_prea60(path, **kwargs)  # type: ignore[arg-type]
    items = list(reading)
    records = [i for i in items if isinstance(i, Prea60Row)]
    errors = [i for i in items if isinstance(i, RowError)]
    assert reading.summary.errors == errors
    assert reading.summary.accepted == len(records)
    return records, errors


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252"])
@pytest.mark.parametrize("delimiter", [";", ",", "\t"])
@pytest.mark.parametrize("newline", ["\r\n", "\n"])
def test_encoding_and_delimiter_matrix(
    tmp_path: Path, encoding: str, delimiter: str, newline: str
) -> None:
    path = write_csv(
        tmp_path / "prea60.csv", ROWS, delimiter=delimiter, encoding=encoding, newline=newline
    )
    records, errors = read(path)
    assert errors == []
    assert [r.family_name for r in records] == ["Bergqvist", "Karlsson", "Öberg-Åhlén"]
    assert [r.given_name for r in records] == ["Elsa", "Dagny", "Märta"]
    assert [r.risk_percent for r in records] == [Decimal("27.4"), Decimal("35.6"), Decimal(15)]
    assert {r.run_date for r in records} == {date(2025, 3, 10)}
    assert [r.unit_name for r in records] == ["Ekeby vårdcentral"] * 3
    assert [r.gp_hsa_id for r in records] == [GP, None, GP]
    assert [r.patient.digits for r in records] == [
        "193102149824",
        "192311059808",
        "195201719829",
    ]
    assert [r.source.line for r in records] == [2, 3, 4]


def test_headers_match_case_blanks_and_unicode_form_in_any_order(tmp_path: Path) -> None:
    header = [
        "  RISK   (%) ",
        unicodedata.normalize("NFD", "beräkningsdatum"),
        "personnummer",
        "NAMN",
        "Something else",
        "listningsenhet hsa-id",
    ]
    rows = [["27,4", "2025-03-10", "19310214-9824", "Bergqvist, Elsa", "x", UNIT]]
    records, errors = read(write_csv(tmp_path / "p.csv", rows, header=header))
    assert errors == []
    assert records[0].risk_percent == Decimal("27.4")
    assert records[0].unit_name == ""  # optional column absent
    assert records[0].gp_hsa_id is None


def test_missing_required_columns_are_one_file_level_error(tmp_path: Path) -> None:
    header = ["Personnummer", "Namn", "Risk", "Listningsenhet"]
    path = write_csv(tmp_path / "p.csv", [["19310214-9824", "Ek, Ann", "12", "VC"]], header=header)
    records, errors = read(path)
    assert records == []
    assert len(errors) == 1
    error = errors[0]
    assert (error.file, error.line, error.column) == (str(path), 1, None)
    assert "Kolumner saknas: Beräkningsdatum, Listningsenhet HSA-id" in error.reason
    assert "Rubriker i filen: Personnummer, Namn, Risk, Listningsenhet" in error.reason


def test_a_file_without_header_row_gets_a_hint_and_no_personnummer(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text(";".join(ROWS[0]) + "\n" + ";".join(ROWS[2]) + "\n", encoding="utf-8")
    _, errors = read(path)
    assert len(errors) == 1
    assert "Saknar filen rubrikrad" in errors[0].reason
    assert "19310214-****" in errors[0].reason
    assert "9824" not in errors[0].reason


def test_a_column_given_twice_is_a_file_level_error(tmp_path: Path) -> None:
    header = [*HEADER, "namn"]
    _, errors = read(write_csv(tmp_path / "p.csv", [[*ROWS[0], "X"]], header=header))
    assert [(e.line, e.column) for e in errors] == [(1, None)]
    assert "'namn' finns flera gånger" in errors[0].reason


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "Filen är tom"),
        (codecs.BOM_UTF8 + b" \r\n\r\n", "Filen är tom"),
        (b"Personnummer;Namn\x00\x01\x02\n", "inte en textfil"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "inte en textfil"),
        ("Personnummer;Namn\n".encode("utf-16"), "UTF-16"),
    ],
)
def test_empty_binary_and_utf16_files_are_one_clear_error(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    path = tmp_path / "prea60.csv"
    path.write_bytes(content)
    _, errors = read(path)
    assert [(e.file, e.line, e.column) for e in errors] == [(str(path), 0, None)]
    assert reason in errors[0].reason


def test_a_missing_file_is_a_file_level_error(tmp_path: Path) -> None:
    _, errors = read(tmp_path / "prea60-none.csv")
    assert [(e.line, e.reason) for e in errors] == [(0, "Filen finns inte")]


def test_header_only_file_has_no_rows_and_no_errors(tmp_path: Path) -> None:
    reading = read_prea60(write_csv(tmp_path / "p.csv", []), mappings_dir=MAPPINGS_DIR)
    assert list(reading) == []
    assert (reading.summary.rows, reading.summary.accepted) == (0, 0)


def test_quoted_values_with_delimiters_and_line_breaks_keep_line_numbers(tmp_path: Path) -> None:
    rows = [
        ["19310214-9824", "Bergqvist, Elsa", "27,4", "2025-03-10", UNIT, "Ekeby;\nvårdcentral", GP],
        ROWS[1],
        ["19520171-9829", "Ek", "abc", "2025-03-10", UNIT, "", GP],
    ]
    records, errors = read(write_csv(tmp_path / "p.csv", rows, newline="\n"))
    assert [r.source.line for r in records] == [2, 4]
    assert records[0].unit_name == "Ekeby;\nvårdcentral"
    assert [(e.line, e.column) for e in errors] == [(5, "Risk (%)")]


def test_an_unclosed_quote_is_reported_where_it_starts(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    lines = [";".join(HEADER), ";".join(ROWS[0]), '"' + ";".join(ROWS[1]), ";".join(ROWS[2])]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    records, errors = read(path)
    assert [r.source.line for r in records] == [2]
    assert [(e.line, e.column) for e in errors] == [(3, None)]
    assert "raden når till rad 4: ett citattecken som inte avslutas?" in errors[0].reason


def test_comma_delimited_file_with_an_unquoted_name_is_a_row_error(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    good = ",".join(['"' + c + '"' if "," in c else c for c in ROWS[0]])
    bad = ",".join(ROWS[2]).replace("Öberg-Åhlén, Märta", "Lind, Åsa")
    path.write_text(",".join(HEADER) + "\n" + good + "\n" + bad + "\n", encoding="utf-8")
    records, errors = read(path)
    assert [r.source.line for r in records] == [2]
    assert [(e.line, e.column) for e in errors] == [(3, None)]
    assert "Raden har 8 fält men rubriken 7 (avgränsare: komma" in errors[0].reason


def test_rows_of_empty_cells_and_blank_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    body = [";".join(HEADER), "", ";".join(ROWS[0]), ";;;;;;", "   ", ";".join(ROWS[1]), ""]
    path.write_text("\n".join(body), encoding="utf-8")
    reading = read_prea60(path, mappings_dir=MAPPINGS_DIR)
    assert [r.source.line for r in reading.records()] == [3, 6]
    assert (reading.summary.rows, reading.summary.errors) == (2, [])


def test_leading_blank_lines_before_the_header_are_counted(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("\n\n" + ";".join(HEADER) + "\n" + ";".join(ROWS[0]) + "\n", "utf-8")
    records, errors = read(path)
    assert errors == []
    assert records[0].source.line == 4


def test_a_binary_stream_with_a_name_can_be_read(tmp_path: Path) -> None:
    data = write_csv(tmp_path / "p.csv", ROWS, encoding="cp1252").read_bytes()
    reading = read_file(
        io.BytesIO(data), SourceKind.PREA60, name="uppladdning.csv", mappings_dir=MAPPINGS_DIR
    )
    records = list(reading.records())
    assert [r.source.file for r in records] == ["uppladdning.csv"] * 3


def test_a_reading_is_iterated_once(tmp_path: Path) -> None:
    reading = read_prea60(write_csv(tmp_path / "p.csv", ROWS), mappings_dir=MAPPINGS_DIR)
    assert len(list(reading)) == 3
    with pytest.raises(RuntimeError):
        list(reading)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("prea60-2024-12-09.csv", SourceKind.PREA60),
        ("PREA60_aneby.CSV", SourceKind.PREA60),
        ("plans.jsonl", SourceKind.PLANS),
        ("plans-lifecare-2025.jsonl", SourceKind.PLANS),
        ("events.csv", SourceKind.EVENTS),
        ("discharges_v12.csv", SourceKind.DISCHARGES),
        ("/data/in/prea60/events-x.csv", SourceKind.EVENTS),  # the file name, not the folder
        ("risk.csv", None),
    ],
)
def test_kind_from_the_file_name(name: str, kind: SourceKind | None) -> None:
    assert kind_of(name) is kind


def test_read_file_with_an_unknown_name_or_an_explicit_kind(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "risklista.csv", ROWS)
    errors = list(read_file(path, mappings_dir=MAPPINGS_DIR))
    assert [(e.line, e.column) for e in errors if isinstance(e, RowError)] == [(0, None)]
    assert "Okänd filtyp" in errors[0].reason  # type: ignore[union-attr]
    assert len(list(read_file(path, "prea60", mappings_dir=MAPPINGS_DIR).records())) == 3


# --- column maps (mappings/columns/<kind>.json) ---


@pytest.fixture
def mappings(tmp_path: Path) -> Path:
    directory = tmp_path / "mappings"
    shutil.copytree(REPO_ROOT / "mappings" / "columns", directory / "columns")
    return directory


def edit_map(mappings: Path, change: dict[str, object]) -> None:
    path = mappings / "columns" / "prea60.json"
    data = json.loads(path.read_text("utf-8"))
    data["columns"].update(change)
    path.write_text(json.dumps(data, ensure_ascii=False), "utf-8")


def test_a_region_maps_its_own_headers(tmp_path: Path, mappings: Path) -> None:
    edit_map(mappings, {"personnummer": ["Pnr", "Personnummer"], "risk_percent": ["Sannolikhet"]})
    header = ["PNR", "Namn", "Sannolikhet", "Beräkningsdatum", "Listningsenhet HSA-id"]
    path = write_csv(tmp_path / "p.csv", [r[:5] for r in ROWS], header=header)
    records, errors = read(path, mappings_dir=mappings)
    assert errors == []
    assert len(records) == 3
    # the error names the header as written in the file
    bad = write_csv(tmp_path / "q.csv", [["19310214-9825", *ROWS[0][1:5]]], header=header)
    _, errors = read(bad, mappings_dir=mappings)
    assert [(e.column, e.value) for e in errors] == [("PNR", "19310214-****")]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"pnr": ["Pnr"]}, "okända fält ['pnr']"),
        ({"name": []}, "fält utan rubriker ['name']"),
        ({"unit_name": ["Namn"]}, "står både under name och unit_name"),
        ({"name": "Namn"}, "är felaktig"),
    ],
)
def test_a_broken_column_map_fails_at_once(
    tmp_path: Path, mappings: Path, change: dict[str, object], message: str
) -> None:
    edit_map(mappings, change)
    with pytest.raises(ColumnMapError, match=message.replace("[", r"\[").replace("]", r"\]")):
        read_prea60(tmp_path / "never-read.csv", mappings_dir=mappings)


def test_a_missing_column_map_fails_at_once(tmp_path: Path) -> None:
    with pytest.raises(ColumnMapError, match="kan inte läsas"):
        read_prea60(tmp_path / "p.csv", mappings_dir=tmp_path)


def test_the_shipped_column_maps_name_the_formats_readme_headers() -> None:
    expected = {
        "prea60": HEADER,
        "events": formats.EVENTS,
        "discharges": formats.DISCHARGES,
    }
    for kind, headers in expected.items():
        data = json.loads((REPO_ROOT / "mappings" / "columns" / f"{kind}.json").read_text("utf-8"))
        firsts = [names[0] for names in data["columns"].values()]
        assert firsts == headers


# --- cell values ---


def test_date_times_are_stockholm_local_time() -> None:
    winter = parse_datetime("2024-12-19 14:30")
    summer = parse_datetime("2025-06-19T15:05")
    assert winter.utcoffset() == timedelta(hours=1)
    assert summer.utcoffset() == timedelta(hours=2)
    assert winter == datetime.fromisoformat("2024-12-19T13:30:00+00:00")
    # the repeated hour in October is read as its first (summer-time) occurrence
    assert parse_datetime("2025-10-26 02:30").utcoffset() == timedelta(hours=2)
    with pytest.raises(InvalidValue, match="sommartid"):
        parse_datetime("2025-03-30 02:30")
    with pytest.raises(InvalidValue, match="finns inte"):
        parse_datetime("2025-02-29 10:00")


@pytest.mark.parametrize(
    ("text", "value"),
    [("17,4", Decimal("17.4")), ("17.4", Decimal("17.4")), ("0", Decimal(0)), ("-3", Decimal(-3))],
)
def test_decimals_take_comma_or_point(text: str, value: Decimal) -> None:
    assert parse_decimal(text) == value


@pytest.mark.parametrize("text", ["abc", "1 000", "1.000,5", "NaN", "Infinity", "1e3", ","])
def test_other_numbers_are_rejected(text: str) -> None:
    with pytest.raises(InvalidValue, match="Inte ett tal"):
        parse_decimal(text)
