"""The region scan frees each chunk's raw JSON once its facts are made (issue "Region scale" 5).

The benchmark measured the scan's peak RSS growing 0.26 MiB per patient in scope: the loader
kept every chunk's search results (held by its done future) until the last chunk was read.
"""

from __future__ import annotations

import gc
import weakref
from datetime import date
from typing import Any

import pytest

import adapter.followup.load as load
from adapter.followup.params import RULES_FILE
from adapter.followup.rulesfile import load_rules
from adapter.mapping.codes import load_mappings
from adapter.settings import REPO_ROOT


class Tracked(list[Any]):
    """A list a weak reference can follow (plain lists cannot be weakly referenced)."""


def test_a_chunks_raw_json_is_freed_before_the_next_chunk_is_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    consumed: list[weakref.ref[Tracked]] = []
    still_held: list[int] = []

    def chunk_resources(client: object, refs: list[str]) -> tuple[Tracked, Tracked]:
        return Tracked({"id": ref.split("/")[1]} for ref in refs), Tracked()

    def facts_of_chunk(patients: Tracked, *_: object) -> tuple[list[object], int]:
        gc.collect()
        still_held.append(sum(1 for ref in consumed if ref() is not None))
        consumed.append(weakref.ref(patients))
        return [], 0

    monkeypatch.setattr(load, "_chunk_resources", chunk_resources)
    monkeypatch.setattr(load, "_facts_of_chunk", facts_of_chunk)
    monkeypatch.setattr(load, "_absent_runs", lambda *_: {})
    refs = [f"Patient/{n}" for n in range(1, 5 * load.CHUNK_SIZE + 1)]

    load.load_states(  # type: ignore[arg-type]
        None,
        as_of=date(2024, 12, 31),
        rules=load_rules(REPO_ROOT / "mappings" / RULES_FILE),
        patient_refs=refs,
        mappings=load_mappings(REPO_ROOT / "mappings"),
    )

    assert len(still_held) == 5
    assert still_held == [0, 0, 0, 0, 0]  # before the fix: [0, 1, 2, 3, 4]
