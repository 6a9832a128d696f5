"""Benchmark without a server: the memory of `indicators_from_server` as the region grows.

    .venv/bin/python -m tests.benchmarks.bench_indicators_memory --patients 500,2000

For each size: a region of N patients in 4 units (26 weekly Prea60 runs each, two in three with a
patientkontrakt, 1–3 follow-up events, every 10th an AU124 and a discharge notice in the week),
mapped with the real mapping and served from memory by `tests/support/loader_server.py` (the
loader's own searches; the scope's searches are replaced by "every Patient"). Then every
indicator of every unit for the week ending 2024-12-15, under tracemalloc: the peak of what the
run allocates (the served resources are allocated before and not counted), the searches, seconds.
Run it from an older tree (a copy with this file and tests/support/loader_server.py) to compare.
"""

from __future__ import annotations

import argparse
import random
import time
import tracemalloc
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import adapter.indicators.store as store
from adapter.domain import (
    Consent,
    DischargeNotice,
    Event,
    EventCode,
    PersonId,
    Prea60Row,
    Record,
    SourceRef,
)
from adapter.followup.rulesfile import load_rules
from adapter.followup.scope import Scope
from adapter.indicators.trend import snapshot_period
from adapter.mapping import load_mappings
from adapter.settings import REPO_ROOT
from tests.support.loader_server import LoaderServer, region
from tests.support.people import fictional_people
from tests.support.records import STOCKHOLM, patientkontrakt

UNITS = [f"SE2321000057-E{n:011d}" for n in range(1, 5)]
AS_OF = date(2024, 12, 15)
RUNS = [date(2024, 12, 9) - timedelta(weeks=w) for w in range(26)]
SOURCE = SourceRef("bench", 1)


def _records(person: PersonId, n: int, rng: random.Random) -> Iterator[Record]:
    unit = UNITS[n % len(UNITS)]
    risk = Decimal(rng.randrange(100, 400)) / 10
    for run in RUNS:
        yield Prea60Row(person, "Test", "Person", risk, run, unit, "Enheten", None, SOURCE)
    if n % 3:
        plan = patientkontrakt(person, source_system="bench")
        yield replace(plan, plan_id=f"P{n}", unit_hsa_id=unit, created=date(2024, 6, 3))
    for _ in range(rng.randrange(1, 4)):
        day = date(2024, 1, 1) + timedelta(days=rng.randrange(345))
        yield Event(person, day, rng.choice((EventCode.AW010, EventCode.UPPF)), unit, SOURCE)
    if n % 10 == 0:
        yield Event(person, date(2024, 12, 10), EventCode.AU124, unit, SOURCE)
        ready = datetime(2024, 12, 9, 10, tzinfo=STOCKHOLM)
        yield DischargeNotice(
            f"N{n}", person, ready, "Sjukhuset", "Medicin", True, True, Consent.JA, SOURCE
        )


def build(patients: int) -> LoaderServer:
    rng = random.Random(patients)
    people = fictional_people(patients, seed=patients)
    records = [r for n, p in enumerate(people) for r in _records(p, n, rng)]
    return region(records, load_mappings(REPO_ROOT / "mappings"))


def measure(server: LoaderServer) -> tuple[float, float, int, int]:
    """Peak MiB allocated, seconds, searches, indicators."""

    def scope(*_: Any, **__: Any) -> Scope:
        return Scope(refs=server.refs, newest_runs={unit: RUNS[0] for unit in UNITS})

    store.find_patients = scope  # type: ignore[assignment]
    store._procedure_refs = lambda *_: set()  # type: ignore[assignment]
    store._notice_refs = lambda *_: set()  # type: ignore[assignment]
    rules = load_rules(REPO_ROOT / "mappings" / "rules.json")
    mappings = load_mappings(REPO_ROOT / "mappings")
    tracemalloc.start()
    started = time.perf_counter()
    results = store.indicators_from_server(
        server,  # type: ignore[arg-type]
        None,
        snapshot_period(AS_OF),
        rules,
        mappings=mappings,
    )[0]
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return peak, seconds, sum(server.searches.values()), len(results)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.bench_indicators_memory")
    parser.add_argument("--patients", default="500,2000", help="sizes, comma-separated")
    args = parser.parse_args(argv)
    print(f"{'patients':>8} {'resources':>9} {'peak MiB':>8} {'searches':>8} {'seconds':>7}")
    for patients in (int(n) for n in args.patients.split(",")):
        server = build(patients)
        resources = sum(len(owned) for owned in server.owned.values())
        peak, seconds, searches, indicators = measure(server)
        print(f"{patients:>8} {resources:>9} {peak:>8.1f} {searches:>8} {seconds:>7.1f}")
        assert indicators == 7 * len(UNITS)


if __name__ == "__main__":
    main()
