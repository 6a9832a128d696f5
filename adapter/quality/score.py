"""Score one plan against the criteria (pure): the weights met over the weights that apply."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from adapter.domain import Plan
from adapter.quality.criteria import Criteria

_HUNDREDTHS = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class UnmetCriterion:
    id: str
    label: str  # Swedish


@dataclass(frozen=True, slots=True)
class PlanQuality:
    """0–1 with two decimals (as SKR's rating is given), and what the plan lacks, in file order."""

    score: Decimal
    unmet: tuple[UnmetCriterion, ...]
    version: str  # of the criteria file that scored it


def score_plan(plan: Plan, criteria: Criteria) -> PlanQuality:
    applicable = criteria.for_kind(plan.kind)
    met = [c for c in applicable if c.met_by(plan)]
    total = sum((c.weight for c in applicable), Decimal(0))
    score = sum((c.weight for c in met), Decimal(0)) / total if total else Decimal(1)
    unmet = tuple(UnmetCriterion(c.id, c.label) for c in applicable if c not in met)
    return PlanQuality(score.quantize(_HUNDREDTHS, ROUND_HALF_UP), unmet, criteria.version)
