"""`sip-fhir map` streams: Bundles are written while the file is read, memory is flat in its size,
and the Bundles of a split file write what one Bundle would (issue "Region scale" 5)."""

from __future__ import annotations

import gc
import json
import random
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from adapter.cli import app
from adapter.cli import map as map_cli
from adapter.cli.rowerrors import ErrorReport
from adapter.mapping import load_mappings
from adapter.settings import REPO_ROOT
from adapter.sources import read_file
from adapter.sources.reading import Reading
from adapter.synth import SynthConfig, generate
from tests.support.people import fictional_personnummer
from tests.support.sync import plan_line

runner = CliRunner()
MAPPINGS = REPO_ROOT / "mappings"


def bundles(out: Path, base: str) -> list[dict[str, Any]]:
    """The Bundles of one source file, in the order they are to be posted."""
    paths = [out / f"{base}.bundle.json"]
    number = 2
    while (out / f"{base}.{number}.bundle.json").is_file():
        paths.append(out / f"{base}.{number}.bundle.json")
        number += 1
    return [json.loads(path.read_text("utf-8")) for path in paths]


def person(number: int) -> str:
    return fictional_personnummer(random.Random(number))


def plans_file(path: Path, count: int) -> Path:
    """`count` one-version plans of fictional patients (a few resources each)."""
    lines = []
    for number in range(count):
        lines.append(json.dumps(plan(f"SIP-{number}", 1, person(number))))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def plan(plan_id: str, version: int, patient: str, status: str = "active") -> dict[str, Any]:
    return {**json.loads(plan_line(plan_id, version, patient)), "status": status}


def test_bundles_are_written_before_the_file_is_read_to_the_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The mistake this catches: collecting the whole file's Bundle before writing any of it.
    source = plans_file(tmp_path / "plans.jsonl", 200)
    out = tmp_path / "out"
    seen_on_disk: list[int] = []

    class Watched(Reading):
        """The real reading, noting how many Bundles are on disk when row 150 is handed out."""

        def __init__(self, inner: Reading) -> None:
            super().__init__(inner.file, inner.kind, ())
            self.inner, self.summary = inner, inner.summary

        def __iter__(self) -> Iterator[Any]:
            for index, item in enumerate(self.inner):
                if index == 150:  # ~600 resources mapped by now: 5 Bundles of 100 are due
                    seen_on_disk.append(len(list(out.glob("plans*.bundle.json"))))
                yield item

    def watched(path: Path, kind: Any, **options: Any) -> Reading:
        return Watched(read_file(path, kind, **options))

    monkeypatch.setattr(map_cli, "read_file", watched)
    args = ["map", str(source), "--out", str(out), "--bundle-size", "100"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert seen_on_disk and seen_on_disk[0] >= 4
    written = len(bundles(out, "plans"))
    assert written > seen_on_disk[0]
    said = f"(och {written - 1} till, till och med plans.{written}.bundle.json)"
    assert "".join(said.split()) in "".join(result.output.split())  # wrapped at any width


def _entries(bundle_list: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [entry for bundle in bundle_list for entry in bundle["entry"]]


def _resolved(value: Any, urls: dict[str, str]) -> Any:
    """`value` with in-Bundle references (urn:uuid) turned back into the conditional URL."""
    if isinstance(value, dict):
        return {
            k: urls.get(v, v) if k == "reference" else _resolved(v, urls) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_resolved(item, urls) for item in value]
    return value


def match_url(request: dict[str, str]) -> str:
    if request["method"] == "PUT":
        return request["url"]
    return f"{request['url']}?{request['ifNoneExist']}"


def final(bundle_list: list[dict[str, Any]]) -> dict[str, Any]:
    """What posting the Bundles in order leaves per conditional URL (create-only: the first)."""
    state: dict[str, Any] = {}
    for bundle in bundle_list:
        urls = {e["fullUrl"]: match_url(e["request"]) for e in bundle["entry"]}
        for entry in bundle["entry"]:
            match = match_url(entry["request"])
            if entry["request"]["method"] == "POST" and match in state:
                continue
            state[match] = _resolved(entry["resource"], urls)
    return state


def test_a_split_file_writes_what_one_bundle_would(tmp_path: Path) -> None:
    data = tmp_path / "data"
    generate(SynthConfig(patients=300, seed=9), data)
    one, split = tmp_path / "one", tmp_path / "split"
    files = [str(p) for p in sorted(data.iterdir())]
    assert runner.invoke(app, ["map", *files, "--out", str(one), "--show", "0"]).exit_code in (0, 2)
    args = ["map", *files, "--out", str(split), "--show", "0", "--bundle-size", "60"]
    assert runner.invoke(app, args).exit_code in (0, 2)
    split_bases = {p.name.split(".")[0] for p in split.glob("*.bundle.json")}
    assert {p.name.split(".")[0] for p in one.glob("*.bundle.json")} == split_bases
    assert any(len(bundles(split, base)) > 3 for base in split_bases)
    for base in split_bases:
        whole, parts = bundles(one, base), bundles(split, base)
        assert len(whole) == 1
        assert all(len(b["entry"]) <= 60 + 20 for b in parts)  # the size, plus one record
        # Posted in order, the Bundles leave on the server what the one Bundle does: the same
        # last content per conditional URL, references resolved to the same resources.
        assert final(parts) == final(whole)


def test_plan_versions_across_bundles_leave_the_newest_last(tmp_path: Path) -> None:
    who = person(7)
    rows = [
        plan("SIP-A", 2, who, "completed"),  # newer first: the older one later is dropped
        *(plan(f"SIP-F{n}", 1, person(20 + n)) for n in range(6)),
        plan("SIP-A", 1, who),
        plan("SIP-B", 1, who),  # older first: the newer one, in a later Bundle, supersedes it
        *(plan(f"SIP-G{n}", 1, person(40 + n)) for n in range(6)),
        plan("SIP-B", 3, who, "completed"),
    ]
    source = tmp_path / "plans.jsonl"
    source.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    args = ["map", str(source), "--out", str(out), "--bundle-size", "10"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Äldre planversioner som ersattes av nyare: 2" in result.output
    written = [
        (e["resource"]["identifier"][0]["value"], e["resource"]["status"])
        for e in _entries(bundles(out, "plans"))
        if e["resource"]["resourceType"] == "CarePlan"
        and e["resource"]["identifier"][0]["value"] in ("synctest:SIP-A", "synctest:SIP-B")
    ]
    assert written == [
        ("synctest:SIP-A", "completed"),
        ("synctest:SIP-B", "active"),
        ("synctest:SIP-B", "completed"),
    ]


def _peak_bytes(source: Path, out: Path) -> int:
    mappings = load_mappings(MAPPINGS)
    report = ErrorReport(out / map_cli.REPORT_NAME, 0)
    files = map_cli.BundleFiles(out, source, set())
    gc.collect()
    tracemalloc.start()
    try:
        map_cli.map_file(source, None, mappings, MAPPINGS, report, files.write, bundle_size=200)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        report.close()


def test_peak_memory_does_not_grow_with_the_file(tmp_path: Path) -> None:
    # Ten times the rows, the same peak: only one Bundle of 200 resources is held at a time.
    small, large = tmp_path / "small", tmp_path / "large"
    small.mkdir()
    large.mkdir()
    small_peak = _peak_bytes(plans_file(small / "plans.jsonl", 150), small)
    large_peak = _peak_bytes(plans_file(large / "plans.jsonl", 1500), large)
    assert len(list(large.glob("*.bundle.json"))) >= 20
    assert large_peak < small_peak * 1.5, (small_peak, large_peak)
