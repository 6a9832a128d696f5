"""Loading mappings/rules.json: the shipped values, and clear errors for a wrong file."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from adapter.canonical import IndicatorCode
from adapter.followup.params import RuleParamsError, load_rule_params, parse_rule_params
from adapter.followup.rulesfile import rules_of
from adapter.settings import REPO_ROOT, get_settings

RULES_FILE = REPO_ROOT / "mappings" / "rules.json"


def _shipped() -> dict:
    return json.loads(RULES_FILE.read_text(encoding="utf-8"))


def _write(tmp_path: Path, content: dict) -> Path:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(content, ensure_ascii=False), encoding="utf-8")
    return path


def test_shipped_file_holds_the_design_defaults() -> None:
    params = load_rule_params(RULES_FILE)
    assert params.risk_group.threshold_percent == Decimal("15.0")
    assert params.follow_up.interval_days == 90
    assert params.sip_call.working_days == 3
    assert params.calendar.timezone == "Europe/Stockholm"
    followup = params.indicators.target(IndicatorCode.FOLLOWUP_90D)
    assert (followup.region_percent, followup.unit_percent) == (Decimal(60), Decimal(80))


def test_the_settings_rules_are_those_of_its_mappings_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    content = _shipped()
    content["follow_up"]["interval_days"] = 60
    _write(tmp_path, content)
    monkeypatch.setenv("SIP_FHIR_MAPPINGS_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        assert rules_of(get_settings()).params.follow_up.interval_days == 60
    finally:
        get_settings.cache_clear()


def test_threshold_keeps_its_decimals(tmp_path: Path) -> None:
    content = _shipped()
    content["risk_group"]["threshold_percent"] = 14.9
    params = load_rule_params(_write(tmp_path, content))
    assert params.risk_group.threshold_percent == Decimal("14.9")


def test_unit_target_override(tmp_path: Path) -> None:
    content = _shipped()
    content["indicators"]["targets"]["followup-90d"]["units"] = {"se2321000057-e2": 85}
    target = load_rule_params(_write(tmp_path, content)).indicators.target(
        IndicatorCode.FOLLOWUP_90D
    )
    assert target.for_unit("SE2321000057-E2") == Decimal(85)  # normalised as the sources are
    assert target.for_unit("SE2321000057-E1") == Decimal(80)


def test_a_unit_target_for_something_that_is_not_an_hsa_id_is_refused(tmp_path: Path) -> None:
    content = _shipped()
    content["indicators"]["targets"]["followup-90d"]["units"] = {"SE-E2": 85}
    with pytest.raises(RuleParamsError, match=r"units\.SE-E2.*Ogiltigt HSA-id"):
        load_rule_params(_write(tmp_path, content))


def test_indicator_without_targets_has_none() -> None:
    target = load_rule_params(RULES_FILE).indicators.target(IndicatorCode.KVA_AU124)
    assert target.for_unit("SE-E1") is None
    assert target.region_percent is None


def test_missing_field_names_file_and_field(tmp_path: Path) -> None:
    content = _shipped()
    del content["follow_up"]["interval_days"]
    path = _write(tmp_path, content)
    with pytest.raises(RuleParamsError, match=r"rules\.json: fält follow_up\.interval_days"):
        load_rule_params(path)


def test_unknown_field_is_refused(tmp_path: Path) -> None:
    content = _shipped()
    content["follow_up"]["intervall_days"] = 60  # a typo must not pass silently
    with pytest.raises(RuleParamsError, match=r"fält follow_up\.intervall_days"):
        load_rule_params(_write(tmp_path, content))


def test_out_of_range_threshold(tmp_path: Path) -> None:
    content = _shipped()
    content["risk_group"]["threshold_percent"] = 150
    with pytest.raises(RuleParamsError, match=r"fält risk_group\.threshold_percent"):
        load_rule_params(_write(tmp_path, content))


def test_unknown_holiday_name(tmp_path: Path) -> None:
    content = _shipped()
    content["calendar"]["extra_non_working_days"] = ["Julafton", "Lussenatt"]
    with pytest.raises(RuleParamsError, match="okänd helgdag Lussenatt"):
        load_rule_params(_write(tmp_path, content))


def test_unknown_timezone(tmp_path: Path) -> None:
    content = _shipped()
    content["calendar"]["timezone"] = "Europe/Sthlm"
    with pytest.raises(RuleParamsError, match="okänd tidszon"):
        load_rule_params(_write(tmp_path, content))


def test_comments_are_ignored_at_every_level() -> None:
    params = parse_rule_params(RULES_FILE.read_text(encoding="utf-8"))
    assert "$comment" in _shipped()["follow_up"]
    assert params.follow_up.due_soon_days >= 0


def test_bad_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text('{\n  "risk_group": {\n    "threshold_percent": 15,,\n', encoding="utf-8")
    with pytest.raises(RuleParamsError, match=r"rules\.json: rad 3: ogiltig JSON"):
        load_rule_params(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RuleParamsError, match="kan inte läsa regelfilen"):
        load_rule_params(tmp_path / "saknas.json")
