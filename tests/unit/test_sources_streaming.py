"""Streaming: memory stays flat however large the file (generators, repeats kept on disk)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from adapter.personnummer import FICTIONAL_SERIALS, luhn_digit
from adapter.settings import REPO_ROOT
from adapter.sources import read_prea60

MAPPINGS_DIR = REPO_ROOT / "mappings"
HEADER = (
    "Personnummer;Namn;Risk (%);Beräkningsdatum;Listningsenhet HSA-id;Listningsenhet;"
    "Fast läkarkontakt HSA-id\r\n"
)
TAIL = ";2025-03-10;SE2321000057-E00000000101;Ekeby vårdcentral;SE2321000057-P00000000201\r\n"


def prea60_rows() -> Iterator[str]:
    """Distinct, valid rows: 36,000 birth dates x the 20 fictional serial numbers (980–999).

    Luhn adds up digit by digit, so a check digit is the sum of its date part's and its serial
    part's, each computed once: writing 50 MB takes a second, not the reading's time again."""
    first = date(1900, 1, 1)
    births = []
    for day in range(36_000):
        born = first + timedelta(days=day)
        yymmdd = born.strftime("%y%m%d")
        births.append((f"{born.year // 100}{yymmdd}-", luhn_digit(yymmdd + "000")))
    for number in FICTIONAL_SERIALS:
        serial = f"{number:03d}"
        serial_check = luhn_digit("000000" + serial)
        for i, (prefix, date_check) in enumerate(births):
            check = (date_check + serial_check) % 10
            yield f"{prefix}{serial}{check};Åkesson, Märta;{i % 100},{i % 10}{TAIL}"


def write_prea60(path: Path, *, rows: int | None = None, size: int | None = None) -> int:
    """Write `rows` rows or at least `size` bytes; cp1252 like Excel. Returns the row count."""
    count, written = 0, len(HEADER)  # cp1252: one byte a character
    with path.open("w", encoding="cp1252", newline="") as out:
        out.write(HEADER)
        for row in prea60_rows():
            if count == rows or (size is not None and written >= size):
                break
            out.write(row)
            count, written = count + 1, written + len(row)
    return count


def traced_peak(path: Path) -> tuple[int, int]:
    """(accepted records, tracemalloc peak in bytes) of one full read."""
    tracemalloc.start()
    try:
        reading = read_prea60(path, mappings_dir=MAPPINGS_DIR)
        for _ in reading:
            pass
        return reading.summary.accepted, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_number_of_rows(tmp_path: Path) -> None:
    small, large = tmp_path / "prea60-small.csv", tmp_path / "prea60-large.csv"
    # both larger than the encoding scan's chunk, so only the row count differs (8 times)
    assert write_prea60(small, rows=1_000) == 1_000
    assert write_prea60(large, rows=8_000) == 8_000
    with large.open("a", encoding="cp1252", newline="") as out:  # one repeat at the far end
        out.write(next(prea60_rows()))
    # First-time costs (caches, lazy imports) out of the way.
    list(read_prea60(small, mappings_dir=MAPPINGS_DIR))
    small_accepted, small_peak = traced_peak(small)
    large_accepted, large_peak = traced_peak(large)
    assert (small_accepted, large_accepted) == (1_000, 8_000)
    assert large_peak < 512 * 1024  # the file is 0.9 MB
    assert large_peak - small_peak < 64 * 1024, (small_peak, large_peak)


# VmHWM, not ru_maxrss: Linux carries the parent's (pytest's) high-water mark over exec into the
# child's ru_maxrss, which would hide any growth below pytest's own size.
CHILD = """
import json, sys
from pathlib import Path
from adapter.settings import REPO_ROOT
from adapter.sources import read_prea60
reading = read_prea60(sys.argv[1], mappings_dir=REPO_ROOT / "mappings")
for _ in reading:
    pass
s = reading.summary
status = Path("/proc/self/status").read_text().splitlines()
rss = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(json.dumps({"rows": s.rows, "accepted": s.accepted, "errors": len(s.errors), "rss_kb": rss}))
"""


def child_read(path: Path) -> dict[str, int]:
    """Read in a fresh process, whose peak resident memory is its own (VmHWM, Linux: KiB)."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
        env=env,
        timeout=300,
    )
    return json.loads(done.stdout)  # type: ignore[no-any-return]


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="/proc/self/status is Linux only")
def test_a_50_mb_prea60_file_streams_in_flat_memory(tmp_path: Path) -> None:
    # tracemalloc would slow 400,000 rows down several times; a fresh process's peak resident
    # memory (which also counts SQLite's page cache) is measured instead, against a tiny file.
    big, tiny = tmp_path / "prea60-big.csv", tmp_path / "prea60-tiny.csv"
    rows = write_prea60(big, size=50 * 1000 * 1000)
    write_prea60(tiny, rows=10)
    assert big.stat().st_size >= 50 * 1000 * 1000
    baseline = child_read(tiny)
    result = child_read(big)
    assert (result["rows"], result["accepted"], result["errors"]) == (rows, rows, 0)
    growth_mb = (result["rss_kb"] - baseline["rss_kb"]) / 1024
    assert growth_mb < 20, f"peak memory grew {growth_mb:.1f} MB for a 50 MB file"
