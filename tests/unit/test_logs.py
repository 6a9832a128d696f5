"""Personnummer masking in logs: every shape the sources use, and nothing else."""

from __future__ import annotations

import io
import sys

import pytest

from adapter import logs


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("19380313-9801", "19380313-****"),
        ("193803139801", "19380313-****"),
        ("380313-9801", "380313-****"),
        ("380313+9801", "380313-****"),
        ("patient 19380313-9801 saknar plan", "patient 19380313-**** saknar plan"),
        ("SE2321000057-E00000000001", "SE2321000057-E00000000001"),  # HSA-id stays readable
        ("2024-12-09", "2024-12-09"),
    ],
)
def test_mask_personnummer(text: str, expected: str) -> None:
    assert logs.mask_personnummer(text) == expected


def test_log_events_are_masked_in_every_field(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)  # looked up at write time, not at configure time
    logs.configure(level="INFO", json=True)
    logs.get_logger("test").info(
        "läst rad 19380313-9801", row={"pnr": "193803139801"}, items=["380313+9801"]
    )
    out = stream.getvalue()
    assert "7664" not in out
    assert out.count("-****") == 3
