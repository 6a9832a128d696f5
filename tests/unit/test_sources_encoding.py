"""Encoding per line (issue 10.6): one invalid byte in a UTF-8 file rejects its row, named by line
and byte, and the rest is read as UTF-8; Windows-1252 only when the whole file is Windows-1252."""

from __future__ import annotations

import codecs
import io
from pathlib import Path

from adapter.domain import DischargeNotice, Prea60Row, RowError
from adapter.settings import REPO_ROOT
from adapter.sources import SourceKind, read_discharges, read_file, read_plans, read_prea60
from tests.support.formats import DISCHARGES_LINE as DISCHARGES_HEADER
from tests.support.formats import PREA60_LINE as PREA60_HEADER

MAPPINGS_DIR = REPO_ROOT / "mappings"
UNIT = "SE2321000057-E00000000101"
PREA60_ROWS = [
    f"19310214-9824;Bergqvist, Elsa;27,4;2025-03-10;{UNIT};Ekeby vårdcentral;",
    f"19520171-9829;Öberg-Åhlén, Märta;15;2025-03-10;{UNIT};Ekeby vårdcentral;",
    f"19231105-9808;Karlsson, Dagny;35,6;2025-03-10;{UNIT};Ekeby vårdcentral;",
]
DISCHARGE_ROWS = [
    "LC-1;19231105-9808;2024-12-23 10:15;Höglandssjukhuset;Medicin 2;Ja;Ja;Ja",
    "LC-2;19310214-9824;2024-12-27 09:00;Länssjukhuset Ryhov;Geriatrik;Ja;Ja;Ja",
]


def utf8_with_one_bad_byte(header: str, rows: list[str], bad_row: int, marker: str) -> bytes:
    """The lines as UTF-8, except that `marker` on row `bad_row` (0-based) is Latin-1 bytes
    (an editor that saved one line as Windows-1252)."""
    lines = [header.encode(), *(r.encode() for r in rows)]
    before, _, after = rows[bad_row].partition(marker)
    lines[bad_row + 1] = before.encode() + marker.encode("cp1252") + after.encode()
    return b"\r\n".join(lines) + b"\r\n"


def items(reading: object) -> tuple[list[object], list[RowError]]:
    everything = list(reading)  # type: ignore[call-overload]
    return (
        [i for i in everything if not isinstance(i, RowError)],
        [i for i in everything if isinstance(i, RowError)],
    )


def test_a_prea60_file_with_one_bad_byte_rejects_that_row_and_reads_the_rest_as_utf8(
    tmp_path: Path,
) -> None:
    data = utf8_with_one_bad_byte(PREA60_HEADER, PREA60_ROWS, 1, "Åhlén")
    path = tmp_path / "prea60-2025-03-10.csv"
    path.write_bytes(data)
    reading = read_prea60(path, mappings_dir=MAPPINGS_DIR)
    records, errors = items(reading)
    assert [r.family_name for r in records if isinstance(r, Prea60Row)] == [
        "Bergqvist",
        "Karlsson",
    ]
    assert [r.unit_name for r in records if isinstance(r, Prea60Row)] == ["Ekeby vårdcentral"] * 2
    (error,) = errors
    assert (error.line, error.column) == (3, None)
    position = data.split(b"\r\n")[2].index("Å".encode("cp1252")) + 1
    assert f"byte {position} på raden är inte UTF-8" in error.reason
    assert reading.summary.encoding == "utf-8"
    assert (reading.summary.rows, reading.summary.accepted) == (3, 2)


def test_a_discharges_file_with_one_bad_byte_keeps_every_good_hospital_name(
    tmp_path: Path,
) -> None:
    rows = [*DISCHARGE_ROWS, "LC-3;19520171-9829;2025-01-02 08:00;Värnamo sjukhus;Kir;Ja;Nej;Ja"]
    data = utf8_with_one_bad_byte(DISCHARGES_HEADER, rows, 2, "ä")
    reading = read_discharges(io.BytesIO(data), name="discharges.csv", mappings_dir=MAPPINGS_DIR)
    records, errors = items(reading)
    hospitals = [r.hospital for r in records if isinstance(r, DischargeNotice)]
    assert hospitals == ["Höglandssjukhuset", "Länssjukhuset Ryhov"]  # not "HÃ¶glandssjukhuset"
    (error,) = errors
    assert error.line == 4 and "inte UTF-8" in error.reason
    assert reading.summary.encoding == "utf-8"


def test_a_file_that_is_windows_1252_as_a_whole_is_read_as_such() -> None:
    data = ("\r\n".join([DISCHARGES_HEADER, *DISCHARGE_ROWS]) + "\r\n").encode("cp1252")
    reading = read_discharges(io.BytesIO(data), name="discharges.csv", mappings_dir=MAPPINGS_DIR)
    records, errors = items(reading)
    assert errors == []
    assert [r.hospital for r in records if isinstance(r, DischargeNotice)] == [
        "Höglandssjukhuset",
        "Länssjukhuset Ryhov",
    ]
    assert reading.summary.encoding == "cp1252"


def test_the_example_prea60_list_is_windows_1252_and_the_plans_utf8() -> None:
    examples = REPO_ROOT / "deploy" / "examples"
    prea60 = read_file(examples / "prea60-2025-03-10.csv", mappings_dir=MAPPINGS_DIR)
    assert all(not isinstance(i, RowError) for i in prea60)
    assert prea60.summary.encoding == "cp1252"
    plans = read_plans(examples / "plans.jsonl")
    list(plans)
    assert plans.summary.encoding == "utf-8"


def test_a_bad_byte_in_a_quoted_multi_line_cell_rejects_that_row(tmp_path: Path) -> None:
    rows = [
        'LC-1;19231105-9808;2024-12-23 10:15;"Höglands-\nsjukhuset";Medicin 2;Ja;Ja;Ja',
        DISCHARGE_ROWS[1],
    ]
    lines = DISCHARGES_HEADER.encode() + b"\n" + rows[0].encode().replace(b"-\n", b"-\n\xe4")
    data = lines + b"\n" + rows[1].encode() + b"\n"
    reading = read_file(
        io.BytesIO(data), SourceKind.DISCHARGES, name="d.csv", mappings_dir=MAPPINGS_DIR
    )
    records, errors = items(reading)
    assert [r.message_id for r in records if isinstance(r, DischargeNotice)] == ["LC-2"]
    (error,) = errors
    assert error.line == 3 and "byte 1 på raden" in error.reason  # the cell's second line


def test_a_plans_line_with_a_bad_byte_is_a_row_error_and_the_others_are_read() -> None:
    good = (REPO_ROOT / "deploy" / "examples" / "plans.jsonl").read_bytes().splitlines()[:2]
    data = good[0] + b"\n" + b'{"title": "P\xe5"}\n' + good[1] + b"\n"
    reading = read_plans(io.BytesIO(data), name="plans.jsonl")
    records, errors = items(reading)
    assert len(records) == 2
    (error,) = errors
    assert error.line == 2 and "byte 13 på raden är inte UTF-8" in error.reason
    assert reading.summary.encoding == "utf-8"


def test_a_lone_cr_file_with_a_bad_byte_keeps_its_line_numbers() -> None:
    data = "\r".join([DISCHARGES_HEADER, *DISCHARGE_ROWS]).encode() + b"\r"
    data = data.replace(b"Geriatrik", b"Geriatrik\xff")
    reading = read_discharges(io.BytesIO(data), name="d.csv", mappings_dir=MAPPINGS_DIR)
    records, errors = items(reading)
    assert [r.message_id for r in records if isinstance(r, DischargeNotice)] == ["LC-1"]
    assert [e.line for e in errors] == [3]


def test_a_utf8_file_with_a_bom_and_one_bad_byte_keeps_its_header() -> None:
    data = utf8_with_one_bad_byte(DISCHARGES_HEADER, DISCHARGE_ROWS, 0, "ö")
    reading = read_discharges(
        io.BytesIO(codecs.BOM_UTF8 + data), name="d.csv", mappings_dir=MAPPINGS_DIR
    )
    records, errors = items(reading)
    assert [r.hospital for r in records if isinstance(r, DischargeNotice)] == [
        "Länssjukhuset Ryhov"
    ]
    assert [e.line for e in errors] == [2]
    assert reading.summary.encoding == "utf-8-sig"
