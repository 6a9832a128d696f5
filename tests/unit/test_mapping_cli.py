"""`sip-fhir map FILE... --out DIR`: the readers, the mapping and the Bundle on disk, no server."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from adapter import canonical as c
from adapter.cli import app

runner = CliRunner()

UNIT = "SE2321000057-E00000000001"
PREA60 = (
    "Personnummer;Namn;Risk (%);Beräkningsdatum;Listningsenhet HSA-id;Listningsenhet;"
    "Fast läkarkontakt HSA-id\n"
    f"19380313-9801;Lind, Åsa;23,5;2024-12-09;{UNIT};Aneby vårdcentral;SE2321000057-P00000000021\n"
    f"19290227-9807;Öberg, Gösta;15,0;2024-12-09;{UNIT};Aneby vårdcentral;\n"
)
EVENTS = """Personnummer;Datum;Åtgärdskod;Utförande enhet HSA-id;Kontakttyp;Plan-id
19310619-9817;2024-10-21;AU125;SE2321000057-E00000000001;hembesök;lifecare:SIP-77
19310619-1591;2024-10-22;AW010;SE2321000057-E00000000001;telefon;
"""


def plan_line(version: int, status: str) -> str:
    return json.dumps(
        {
            "source_system": "lifecare",
            "plan_id": "SIP-77",
            "version": version,
            "kind": "sip",
            "patient": "19310619-9817",
            "status": status,
            "title": "SIP efter utskrivning",
            "created": "2024-10-14",
            "updated": f"2024-10-{20 + version}",
            "kva": "AU125",
            "unit_hsa_id": "SE2321000057-E00000000001",
            "overall_responsibility": "region",
            "goals": [{"id": "g1", "text": "Klara förflyttning", "expressed_by": "patient"}],
            "actions": [{"text": "Träna", "responsible": "patient", "goal": "g1"}],
            "participants": [{"role": "fast-vardkontakt", "name": "Karin Ek"}],
        },
        ensure_ascii=False,
    )


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def bundle(path: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return result


def test_good_files_give_one_bundle_each_and_exit_0(tmp_path: Path) -> None:
    prea60 = write(tmp_path / "prea60-2024-12-09.csv", PREA60)
    # the newer version comes first in the file: it still wins
    plans = write(
        tmp_path / "plans.jsonl", f"{plan_line(2, 'completed')}\n{plan_line(1, 'active')}\n"
    )
    out = tmp_path / "out"
    result = runner.invoke(app, ["map", str(prea60), str(plans), "--out", str(out), "--check"])
    assert result.exit_code == 0, result.output
    assert "RiskAssessment 2" in result.output and "Äldre planversioner" in result.output
    risk = bundle(out / "prea60-2024-12-09.bundle.json")
    assert [e["resource"]["resourceType"] for e in risk["entry"]] == [
        "Patient",
        "RiskAssessment",
        "Patient",
        "RiskAssessment",
    ]
    entries = bundle(out / "plans.bundle.json")["entry"]
    assert [e["resource"]["resourceType"] for e in entries] == [
        "Patient",
        "Goal",
        "CareTeam",
        "CarePlan",
    ]
    plan = entries[-1]["resource"]
    assert plan["status"] == "completed"
    assert {"url": c.EXT_PLAN_VERSION, "valueInteger": 2} in plan["extension"]
    assert not (out / "radfel.csv").exists()


def test_a_bad_row_is_reported_masked_the_rest_mapped_and_exit_2(tmp_path: Path) -> None:
    events = write(tmp_path / "events.csv", EVENTS)
    out = tmp_path / "out"
    result = runner.invoke(app, ["map", str(events), "--out", str(out)])
    assert result.exit_code == 2, result.output
    entries = bundle(out / "events.bundle.json")["entry"]
    assert [e["resource"]["resourceType"] for e in entries] == ["Patient", "Procedure"]
    with (out / "radfel.csv").open(encoding="utf-8-sig", newline="") as file:
        (row,) = list(csv.DictReader(file, delimiter=";"))
    assert row["Rad"] == "3" and row["Kolumn"] == "Personnummer"
    assert "19310619-1591" not in (out / "radfel.csv").read_text(encoding="utf-8-sig")
    assert "19310619-1591" not in result.output
    assert "19310619-****" in row["Värde"]


def test_kind_option_reads_a_file_whose_name_says_nothing(tmp_path: Path) -> None:
    odd = write(tmp_path / "export.txt", PREA60)
    out = tmp_path / "out"
    assert runner.invoke(app, ["map", str(odd), "--out", str(out)]).exit_code == 1
    assert not (out / "export.bundle.json").exists()
    result = runner.invoke(app, ["map", str(odd), "--out", str(out), "--kind", "prea60"])
    assert result.exit_code == 0, result.output
    assert len(bundle(out / "export.bundle.json")["entry"]) == 4


def test_a_missing_file_fails_with_exit_1(tmp_path: Path) -> None:
    result = runner.invoke(app, ["map", str(tmp_path / "nope.csv"), "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert "Filen finns inte" in result.output
