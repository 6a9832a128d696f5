"""Prea60 risk over the year: a stable personal level plus a weekly drift, on the log-odds scale.

logit(risk) = base + drift; base ~ N(mu, BASE_SD) (older patients higher), drift an AR(1)
walk. `mu` is solved so that the share at or above the threshold in any one week is the
target: most patients stay well below, a tail lies above, and people cross the line in both
directions from week to week. An admission (a discharge notice) pushes the drift up, so a
discharge is often followed by a stretch in the risk group.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from statistics import NormalDist

RISK_THRESHOLD = 15.0  # the risk group: risk ≥ 15 % (design default)
BASE_SD = 1.2
DRIFT_SD = 0.45  # stationary spread of the weekly drift
WEEKLY_RHO = 0.92  # drift keeps 92 % of last week's deviation
AGE_WEIGHT = 0.45  # share of the base spread explained by age
# Weekly chance of an utskrivningsklar notice is this times the predicted 60-day risk:
# 7/60 of the 60-day risk falls in a week, and about a third of admissions need support after.
NOTICE_FACTOR = 7 / 60 * 0.35
ADMISSION_PUSH = 0.8  # drift added by an admission
# The admission pushes and the skewed age mix lift the weekly share above the analytic one;
# measured (20 000 patients, several seeds) and taken off mu. tests/unit/test_synth.py checks it.
CALIBRATION = 0.12


# Standard normal quantiles at 4096 midpoints: a weekly step draws one of them with a single
# getrandbits call, ten times cheaper than gauss() and plenty for a drift.
_STEP_BITS = 12
_NORMAL_STEPS = tuple(NormalDist().inv_cdf((i + 0.5) / 2**_STEP_BITS) for i in range(2**_STEP_BITS))


def logit(percent: float) -> float:
    p = percent / 100
    return math.log(p / (1 - p))


@dataclass(frozen=True, slots=True)
class Trajectory:
    listed: list[tuple[int, float]]  # (run index, risk % rounded to 0.1) where risk ≥ the floor
    admissions: list[int]  # run indexes of weeks with a discharge notice
    in_group: list[int] = field(default_factory=list)  # run indexes with risk ≥ threshold


class RiskModel:
    """Risk trajectories for a target weekly share (0–0.5) and an export floor (0.1–15 %)."""

    def __init__(self, target_share: float, min_listed: float) -> None:
        self.min_listed = min_listed
        spread = math.hypot(BASE_SD, DRIFT_SD)
        z = NormalDist().inv_cdf(1 - target_share)
        self.mu = logit(RISK_THRESHOLD) - z * spread - CALIBRATION
        # Half a rounding step below the floor: a value that rounds up to it still lists.
        self._floor_logit = logit(min_listed - 0.05)
        self._step_sd = DRIFT_SD * math.sqrt(1 - WEEKLY_RHO**2)

    def trajectory(self, rng: random.Random, age: int, runs: int) -> Trajectory:
        age_z = max(-3.0, min(3.0, (age - 80) / 8))
        noise_weight = math.sqrt(1 - AGE_WEIGHT**2)
        base = self.mu + BASE_SD * (AGE_WEIGHT * age_z + noise_weight * rng.gauss(0.0, 1.0))
        drift = rng.gauss(0.0, DRIFT_SD)
        bits, uniform, exp, steps = rng.getrandbits, rng.random, math.exp, _NORMAL_STEPS
        step_sd, floor_logit, min_listed = self._step_sd, self._floor_logit, self.min_listed
        result = Trajectory([], [])
        for k in range(runs):
            drift = WEEKLY_RHO * drift + step_sd * steps[bits(_STEP_BITS)]
            x = base + drift
            if x >= floor_logit:
                risk = round(100.0 / (1.0 + exp(-x)), 1)
                if risk >= min_listed:
                    result.listed.append((k, risk))
                    if risk >= RISK_THRESHOLD:
                        result.in_group.append(k)
            # Two draws so the common case (no admission) skips the exp.
            if uniform() < NOTICE_FACTOR and uniform() < 1.0 / (1.0 + exp(-x)):
                result.admissions.append(k)
                drift += ADMISSION_PUSH
        return result
