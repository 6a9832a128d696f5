"""The transaction Bundles of deploy/examples/* are the checked-in ones (tests/golden/examples/):
a change to a mapping shows as a readable diff here, to be accepted with `python -m tests.golden
--update` when it is intended."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import golden


@pytest.fixture(scope="module")
def mapped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mapped")
    golden.map_examples(out)
    return out


def test_every_example_file_has_its_golden_bundle(mapped: Path) -> None:
    expected = {f"{p.stem}.bundle.json" for p in golden.example_files()}
    assert expected <= {p.name for p in golden.GOLDEN.iterdir()}
    assert expected == {p.name for p in mapped.iterdir()}  # and no row error report


def test_the_mapped_bundles_are_the_golden_ones(mapped: Path) -> None:
    diff = golden.differences(mapped)
    assert not diff, f"{diff}\nAvsiktlig ändring av mappningen? Kör: {golden.UPDATE}"


def test_a_changed_mapping_shows_as_a_diff_of_the_changed_field(
    mapped: Path, tmp_path: Path
) -> None:
    bundle_path = mapped / "plans.bundle.json"
    bundle = json.loads(bundle_path.read_text("utf-8"))
    patient = next(e for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    born = patient["resource"]["birthDate"]
    patient["resource"]["birthDate"] = "1900-01-01"  # what a broken mapping would write
    changed = tmp_path / bundle_path.name
    changed.write_text(json.dumps(bundle, ensure_ascii=False, indent=1) + "\n", "utf-8")
    for other in mapped.iterdir():
        if other.name != changed.name:
            (tmp_path / other.name).write_bytes(other.read_bytes())

    diff = golden.differences(tmp_path)

    assert diff.startswith("--- golden/plans.bundle.json\n+++ mapped/plans.bundle.json\n")
    removed = [line for line in diff.splitlines() if line.startswith("-") and "---" not in line]
    added = [line for line in diff.splitlines() if line.startswith("+") and "+++" not in line]
    assert removed == [f'-    "birthDate": "{born}"']  # one line each side, pretty JSON
    assert added == ['+    "birthDate": "1900-01-01"']


def test_a_bundle_without_its_golden_file_is_a_difference(mapped: Path, tmp_path: Path) -> None:
    (tmp_path / "events.bundle.json").write_bytes((mapped / "events.bundle.json").read_bytes())
    diff = golden.differences(tmp_path)
    assert "golden/plans.bundle.json: mappas inte längre" in diff.splitlines()
    assert "events" not in diff
