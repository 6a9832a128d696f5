"""The Aneby report scenario of the indicator report tests."""

from __future__ import annotations

from adapter.indicators.compute import Period
from tests.support.rules import d, entry, person, plan, state

PERIOD = Period(d("2024-12-05"), d("2024-12-11"))


RUN = "2024-12-09"


def aneby_states() -> list:
    """19 in the risk group, 17 of them with an active plan, one below the threshold."""
    states = [
        state(
            patient=person(n),
            entries=(entry(RUN, "27.5"),),
            plans=(plan(f"cosmic:VP-{n}", created="2024-06-01"),) if n < 17 else (),
        )
        for n in range(19)
    ]
    states.append(state(patient=person(99), entries=(entry(RUN, "14.9"),), plans=(plan(),)))
    return states
