"""Pure: how the quality scores of a unit's plans are spread (indicator plan-quality).

Five bands of 0,2 (the last includes 1,0), so a trend shows the spread moving, and the summary a
quality team reads off SKR's manual reviews: mean, minimum, median and maximum.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from statistics import median

_HUNDREDTHS = Decimal("0.01")
BAND_WIDTH = Decimal("0.2")
BANDS = ("0.0-0.2", "0.2-0.4", "0.4-0.6", "0.6-0.8", "0.8-1.0")  # codes; the last includes 1.0


def band_label(band: str) -> str:
    """`0.2-0.4` → `0,2–0,4` (Swedish)."""
    return band.replace(".", ",").replace("-", "–")


def band_of(score: Decimal) -> int:
    return min(int(score / BAND_WIDTH), len(BANDS) - 1) if score > 0 else 0


@dataclass(frozen=True, slots=True)
class ScoreSummary:
    """Scores of the plans counted (none: every statistic None, bands all 0)."""

    threshold: Decimal
    mean: Decimal | None
    minimum: Decimal | None
    median: Decimal | None
    maximum: Decimal | None
    bands: tuple[int, ...]  # plans per band of BANDS


def _rounded(value: Decimal) -> Decimal:
    return value.quantize(_HUNDREDTHS, ROUND_HALF_UP)


def summarise(scores: Sequence[Decimal], threshold: Decimal) -> ScoreSummary:
    bands = [0] * len(BANDS)
    for score in scores:
        bands[band_of(score)] += 1
    if not scores:
        return ScoreSummary(threshold, None, None, None, None, tuple(bands))
    return ScoreSummary(
        threshold=threshold,
        mean=_rounded(sum(scores, Decimal(0)) / len(scores)),
        minimum=min(scores),
        median=_rounded(Decimal(median(scores))),
        maximum=max(scores),
        bands=tuple(bands),
    )
