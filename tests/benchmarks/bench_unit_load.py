"""Benchmark on a populated server: one unit's read-model load (what a full rebuild of its
worklist reads) in several processes at once, and how long HAPI's threads queue for a database
connection meanwhile.

    .venv/bin/python -m tests.benchmarks.bench_unit_load --base-url http://localhost:18814/fhir \\
        --unit SE2321000057-E00000000003 --procs 3 --hapi-pid "$(cat <hapi data dir>/hapi.pid)"

Each process loads the unit's states for today (`load_states`), the Patients' names and the
unit's runs held back, and prints its time, round trips, error and the seconds of each phase
(summed over the loader's parallel threads). With `--hapi-pid`, `jstack` samples the HAPI JVM
once a second: threads waiting in HikariCP for a connection (`ConcurrentBag.borrow`) and threads
of HAPI's batch pool (`bundle...`). Needs a JDK's `jstack` on the PATH.
"""

from __future__ import annotations

import argparse
import multiprocessing
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import date
from typing import Any

from adapter.fhirclient import FhirClient
from adapter.followup import load, scope
from adapter.followup.rulesfile import rules_of
from adapter.mapping import load_mappings
from adapter.prea60.runs import pending_runs
from adapter.readmodel.worklists import names
from adapter.settings import Settings

PHASES = [
    (scope, "recent_notice_refs"),
    (scope, "listed_among"),
    (scope, "risk_group_refs"),
    (scope, "open_task_refs"),
    (scope, "active_plan_refs"),
    (load, "_absent_runs"),
    (load, "_chunk_resources"),
]


def _timed(name: str, real: Callable[..., Any], seconds: dict[str, float]) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.monotonic()
        try:
            return real(*args, **kwargs)
        finally:
            seconds[name] = seconds.get(name, 0.0) + time.monotonic() - started

    return timed


def one(base_url: str, unit: str, tag: int) -> None:
    settings = Settings(base_url=base_url)
    rules, mappings = rules_of(settings), load_mappings(settings.mappings_dir)
    seconds: dict[str, float] = {}
    for module, name in PHASES:
        setattr(module, name, _timed(name, getattr(module, name), seconds))
    requests = [0]
    error = None
    started = time.monotonic()
    try:
        with FhirClient(
            settings.endpoint(), on_request=lambda *_: requests.__setitem__(0, requests[0] + 1)
        ) as client:
            loaded = load.load_states(
                client, as_of=date.today(), rules=rules, units=[unit], mappings=mappings
            )
            names(client, (p.reference for p in loaded.patients.values()))
            pending_runs(client, unit, rules.params)
    except Exception as failed:  # the benchmark reports it
        error = f"{type(failed).__name__}: {str(failed)[:200]}"
    phases = ", ".join(f"{k} {v:.1f}" for k, v in sorted(seconds.items(), key=lambda kv: -kv[1]))
    print(
        f"process {tag}: {time.monotonic() - started:.1f} s, {requests[0]} round trips, "
        f"error: {error}; seconds by phase: {phases}",
        flush=True,
    )


def sample(pid: int, stop: threading.Event, found: list[tuple[int, int]]) -> None:
    while not stop.wait(1.0):
        dump = subprocess.run(
            ["jstack", str(pid)], check=False, capture_output=True, text=True
        ).stdout
        waiting, thread = set(), ""
        for line in dump.splitlines():
            if line.startswith('"'):
                thread = line
            elif "ConcurrentBag.borrow" in line:
                waiting.add(thread)
        batch = sum(1 for line in dump.splitlines() if line.startswith('"bundle'))
        found.append((len(waiting), batch))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--unit", required=True)
    parser.add_argument("--procs", type=int, default=3)
    parser.add_argument("--hapi-pid", type=int, help="sample this HAPI JVM with jstack")
    args = parser.parse_args()
    stop, samples = threading.Event(), []
    sampler = None
    if args.hapi_pid:
        sampler = threading.Thread(target=sample, args=(args.hapi_pid, stop, samples))
        sampler.start()
    processes = [
        multiprocessing.Process(target=one, args=(args.base_url, args.unit, n))
        for n in range(args.procs)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    stop.set()
    if sampler is not None:
        sampler.join()
        waits = [w for w, _ in samples] or [0]
        print(
            f"HAPI, {len(samples)} samples: threads waiting for a connection max {max(waits)}, "
            f"mean {sum(waits) / len(waits):.2f}; batch threads max "
            f"{max((b for _, b in samples), default=0)}"
        )


if __name__ == "__main__":
    main()
