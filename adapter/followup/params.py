"""Rule parameters a region edits: mappings/rules.json.

The file is the one place for thresholds, intervals, the calendar and indicator targets; the code
has no defaults of its own, so what runs is what the file says. Keys starting with "$" are comments.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from adapter.canonical import IndicatorCode
from adapter.followup.calendar import WorkingCalendar, known_extra_day_names
from adapter.hsa import HsaId

RULES_FILE = "rules.json"


class RuleParamsError(ValueError):
    """mappings/rules.json is missing or wrong; the message (Swedish) names file and field."""


class _Params(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RiskGroupParams(_Params):
    threshold_percent: Decimal = Field(ge=0, le=100)  # risk >= threshold is in the group


class EstablishPlanParams(_Params):
    due_days: int = Field(ge=0)  # due this many days after the need arose


class FollowUpParams(_Params):
    interval_days: int = Field(ge=1)  # due = latest follow-up + interval
    due_soon_days: int = Field(ge=0)  # the Task opens this many days before it falls due


class SipCallParams(_Params):
    working_days: int = Field(ge=1)


class RenewPlanParams(_Params):
    due_days: int = Field(ge=0)  # due this many days after valid_until


class ScanParams(_Params):
    # A scan that would cancel more Tasks than this at once stops and asks (see reconcile.py).
    max_cancellations: int = Field(ge=0)


class Prea60GuardParams(_Params):
    """When a new Prea60 run is stored unconfirmed (see adapter/prea60/guard.py)."""

    # Share (0..1) of the previous confirmed run's risk group that the new run would drop.
    max_dropped_share: Decimal = Field(ge=0, le=1)
    # The new run has fewer rows than this share (0..1) of the previous confirmed run's rows.
    min_size_ratio: Decimal = Field(ge=0, le=1)


class OwnerParams(_Params):
    # Plan participant roles that own a Task, in order; without one the unit owns it.
    participant_roles: tuple[str, ...] = Field(min_length=1)


class CalendarParams(_Params):
    timezone: str
    extra_non_working_days: tuple[str, ...]  # names from the holidays package, e.g. "Julafton"
    extra_dates: tuple[date, ...] = ()  # local closing days, if any

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"okänd tidszon {value!r}") from exc
        return value

    @field_validator("extra_non_working_days")
    @classmethod
    def _known_days(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [name for name in value if name.casefold() not in known_extra_day_names()]
        if unknown:
            raise ValueError(f"okänd helgdag {', '.join(unknown)}")
        return value


class IndicatorTarget(_Params):
    region_percent: Decimal | None = Field(default=None, ge=0, le=100)
    unit_percent: Decimal | None = Field(default=None, ge=0, le=100)  # every unit ...
    units: dict[HsaId, Decimal] = Field(default_factory=dict)  # ... unless named here

    def for_unit(self, unit_hsa_id: str) -> Decimal | None:
        return self.units.get(unit_hsa_id, self.unit_percent)


class PlanQualityParams(_Params):
    # A plan counts as good enough at a score (0–1, mappings/plan-quality.json) at or above this.
    threshold: Decimal = Field(default=Decimal("0.8"), ge=0, le=1)


class IndicatorParams(_Params):
    targets: dict[IndicatorCode, IndicatorTarget]
    plan_quality: PlanQualityParams = PlanQualityParams()

    def target(self, indicator: IndicatorCode) -> IndicatorTarget:
        return self.targets.get(indicator, IndicatorTarget())


class RuleParams(_Params):
    risk_group: RiskGroupParams
    establish_plan: EstablishPlanParams
    follow_up: FollowUpParams
    sip_call: SipCallParams
    renew_plan: RenewPlanParams
    scan: ScanParams
    prea60_guard: Prea60GuardParams
    owner: OwnerParams
    calendar: CalendarParams
    indicators: IndicatorParams

    def working_calendar(self) -> WorkingCalendar:
        return WorkingCalendar(
            timezone=self.calendar.timezone,
            extra_day_names=self.calendar.extra_non_working_days,
            extra_dates=self.calendar.extra_dates,
        )


def _without_comments(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_comments(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_without_comments(v) for v in value]
    return value


def parse_rule_params(text: str, origin: str = RULES_FILE) -> RuleParams:
    """Parse the JSON text of a rules file; `origin` names it in error messages."""
    try:
        raw = json.loads(text, parse_float=Decimal)  # 14.9 stays 14.9, not a binary float
    except json.JSONDecodeError as exc:
        raise RuleParamsError(f"{origin}: rad {exc.lineno}: ogiltig JSON ({exc.msg})") from exc
    try:
        return RuleParams.model_validate(_without_comments(raw))
    except ValidationError as exc:
        problems = "; ".join(
            f"fält {'.'.join(str(part) for part in err['loc']) or '(roten)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise RuleParamsError(f"{origin}: {problems}") from exc


def load_rule_params(path: Path) -> RuleParams:
    """Read rule parameters from `path` (a rules.json)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise RuleParamsError(f"{path}: kan inte läsa regelfilen ({exc.strerror})") from exc
    return parse_rule_params(text, str(path))
