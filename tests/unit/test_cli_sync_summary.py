"""The import and sync summary: which counts it shows, and when (a count that cannot apply to the
run is left out rather than shown as 0)."""

from __future__ import annotations

from rich.console import Console

from adapter.cli.sync import _summary
from adapter.sync.progress import Tally
from adapter.sync.servercheck import CheckResult, ServerState

ALWAYS = [
    "Resurser skapade",
    "Resurser uppdaterade",
    "Omförsök",
    "Avvisade av servern (döda brev)",
    "Kvar i utkorgen",
    "Tid",
]


def _rows(tally: Tally, open_left: int = 0, check: CheckResult | None = None) -> dict[str, str]:
    console = Console(record=True, width=200)
    _summary(tally, open_left, None, console, check)
    rows = {}
    for line in console.export_text().splitlines():
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if len(cells) == 2:
            rows[cells[0]] = cells[1]
    return rows


def test_a_sync_without_rows_shows_the_writes_only() -> None:
    tally = Tally()
    tally.created, tally.updated, tally.dead = 3, 1234, 1
    rows = _rows(tally, open_left=2)
    assert list(rows) == ALWAYS
    assert (rows["Resurser skapade"], rows["Resurser uppdaterade"]) == ("3", "1 234")
    assert (rows["Avvisade av servern (döda brev)"], rows["Kvar i utkorgen"]) == ("1", "2")


def test_an_import_shows_its_rows_and_only_the_counts_that_happened() -> None:
    tally = Tally()
    tally.rows_read, tally.rows_rejected, tally.unchanged = 10, 2, 4
    rows = _rows(tally)
    assert (rows["Rader lästa"], rows["Avvisade rader"]) == ("10", "2")
    assert rows["Oförändrade (ingen skrivning)"] == "4"
    assert "Upprepade rader (hoppades över)" not in rows  # none repeated
    assert "Äldre planversioner (hoppades över)" not in rows
    assert "Skrivna, redan aktuella på servern" not in rows

    tally.rows_duplicate, tally.older_skipped, tally.noop = 5, 1, 7
    rows = _rows(tally)
    assert rows["Upprepade rader (hoppades över)"] == "5"
    assert rows["Äldre planversioner (hoppades över)"] == "1"
    assert rows["Skrivna, redan aktuella på servern"] == "7"


def test_rows_rejected_alone_still_show_the_rows_but_not_unchanged() -> None:
    tally = Tally()
    tally.rows_rejected = 3
    rows = _rows(tally)
    assert (rows["Rader lästa"], rows["Avvisade rader"]) == ("0", "3")
    assert "Oförändrade (ingen skrivning)" not in rows


def test_what_the_server_check_sent_again_comes_first() -> None:
    rows = _rows(Tally(), check=CheckResult(ServerState.LOST, requeued=8))
    assert list(rows) == ["Skickade igen (servern saknade dem)", *ALWAYS]
    assert rows["Skickade igen (servern saknade dem)"] == "8"
    assert "Skickade igen (servern saknade dem)" not in _rows(
        Tally(), check=CheckResult(ServerState.KNOWN)
    )
