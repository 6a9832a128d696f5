"""What a weekly indicator snapshot writes at region scale (the table in README.md, "Indicator
reports: subject lists and their growth"): 5 000 risk-group patients over 25 units of 200."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from decimal import Decimal

from adapter.domain import EventCode
from adapter.followup.state import PatientState, PlanFacts
from adapter.indicators.compute import Period
from adapter.indicators.reports import report_resources
from adapter.indicators.store import compute_units
from adapter.mapping import transaction_bundle
from adapter.quality import PlanQuality
from tests.support.rules import RULES, d, entry, event, notice, person, plan, run, state

UNITS = [f"SE2321000057-E{n:011d}" for n in range(25)]
PATIENTS = 5000
RUN = "2024-12-09"
WEEK = Period(d("2024-12-09"), d("2024-12-15"))


def _scored(facts: PlanFacts, n: int) -> PlanFacts:
    """Every plan carries a quality score, as an imported plan does (plan-quality counts it)."""
    return replace(facts, quality=PlanQuality(Decimal("0.83" if n % 2 else "0.50"), (), "1"))


def _region() -> list[PatientState]:
    """Everyone in a risk group (27.5 %); two in three with a scored plan; every 10th an AW010 in
    the week, every 100th a discharge notice needing a SIP (decided by the week's end)."""
    states = []
    for n in range(PATIENTS):
        unit = UNITS[n // (PATIENTS // len(UNITS))]  # 200 each, events and notices spread
        states.append(
            state(
                patient=person(n),
                entries=(entry(RUN, "27.5", unit),),
                runs=(run(RUN, unit),),
                plans=(_scored(plan(f"x:P{n}", created="2024-10-01", unit=unit), n),)
                if n % 3
                else (),
                events=(event("2024-12-10", EventCode.AW010, unit),) if n % 10 == 0 else (),
                notices=(notice(f"N{n}", "2024-12-10 10:00"),) if n % 100 == 0 else (),
            )
        )
    return states


def test_a_weekly_snapshot_of_5000_risk_group_patients() -> None:
    results = compute_units(_region(), UNITS, WEEK, RULES)
    resources = report_resources(results)
    kinds = Counter((r.resource_type, r.resource.get("type", "")) for r in resources)
    shares, counts, units = 4, 3, len(UNITS)
    with_plan = PATIENTS - (PATIENTS + 2) // 3  # n % 3 != 0: 3 333 patients, one plan each
    assert kinds[("MeasureReport", "individual")] == (
        2 * PATIENTS + PATIENTS // 10 + PATIENTS // 100 + with_plan
    )
    assert kinds[("List", "")] == units * (shares * 2 + counts * 1) == 275
    assert kinds[("MeasureReport", "summary")] == kinds[("MeasureReport", "subject-list")] == 175
    assert len(resources) == 14_508
    size = sum(len(json.dumps(r.resource, separators=(",", ":"))) for r in resources)
    assert 22_000_000 < size < 30_000_000  # about 26 MB: 1.8 kB a resource
    # One transaction per unit: its 200 patients twice, its events and notices, its 133 plan
    # patients (plan-quality), 25 of its own.
    one_unit = report_resources(r for r in results if r.unit_hsa_id == UNITS[0])
    assert len(transaction_bundle(one_unit)["entry"]) == 200 * 2 + 20 + 2 + 133 + 25
