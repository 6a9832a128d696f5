"""What the benchmark runs in a child process: its own peak RSS and its own data dir.

    python -m tests.benchmarks.child import|scan|indicators --base-url URL [--dir D] [--as-of DAY]

Prints one line `BENCH-RESULT {json}`: seconds (around the work only, interpreter start-up and
module imports left out), the RSS before the work, the peak RSS (VmHWM) after it, the peak
after each phase that `phases` names, and the task's own figures (round trips, patients, ...).
`SIP_FHIR_DATA_DIR` and `SIP_FHIR_BASE_URL` come from the parent.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import adapter.sync.importer as importer_module
from adapter.fhirclient import FhirClient
from adapter.followup.reconcile import CancelPolicy, RequestCounter
from adapter.followup.rulesfile import rules_of
from adapter.followup.service import FollowupService
from adapter.indicators.store import indicators_from_server
from adapter.indicators.trend import snapshot_period
from adapter.logs import configure
from adapter.mapping import load_mappings
from adapter.settings import REPO_ROOT, EndpointSettings, get_settings
from adapter.sources import SourceKind, kind_of
from adapter.sync import Importer, SyncSettings, Tally, open_outbox
from adapter.sync.engine import DEFAULT_WORKERS
from adapter.synth.generator import DEFAULT_END

RESULT_PREFIX = "BENCH-RESULT "


@dataclass(slots=True)
class ChildRun:
    seconds: float = 0.0
    rss_before_kb: int = 0  # RSS just before the work (interpreter and modules loaded)
    rss_peak_kb: int = 0
    phases_kb: dict[str, int] = field(default_factory=dict)  # peak RSS when each phase ended
    python_peak_kb: int | None = None  # tracemalloc's peak of Python allocations (--trace)
    figures: dict[str, float] = field(default_factory=dict)


def _status_kb(field_name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field_name}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field_name} in /proc/self/status (Linux only)")


def current_rss_kb() -> int:
    return _status_kb("VmRSS")


def peak_rss_kb() -> int:
    """This process's own peak RSS: VmHWM, not ru_maxrss.

    Linux's ru_maxrss keeps, across execve, the high-water mark of the address space exec
    replaced; after fork/vfork from a parent that is the parent's. So a child of a parent with
    530 MiB resident reports at least 530 MiB, whatever the child does (the "plateau" of the
    first 10 000-patient results). VmHWM belongs to the child's own address space.
    """
    return _status_kb("VmHWM")


def source_files(directory: Path) -> list[Path]:
    """The synth files in dependency order: risk lists, plans, events, discharge notices."""
    order = list(SourceKind)
    kinds = {path: kind_of(path) for path in directory.iterdir()}
    return sorted(
        (path for path, kind in kinds.items() if kind is not None),
        key=lambda path: (order.index(kinds[path]), path.name),  # type: ignore[arg-type]
    )


def _marked(run: ChildRun, phase: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = function(*args, **kwargs)
        run.phases_kb[phase] = peak_rss_kb()
        return result

    return wrapper


def do_import(run: ChildRun, args: argparse.Namespace) -> None:
    """`sip-fhir import --workers W` of the files in --dir (Importer.run)."""
    settings = get_settings()
    tally = Tally()
    # The phases: the Prea60 run check reads every risk list before anything is imported.
    gate = _marked(run, "after Prea60 run check", importer_module.run_gate)  # type: ignore[attr-defined]
    importer_module.run_gate = gate  # type: ignore[attr-defined]
    endpoint = EndpointSettings(base_url=args.base_url)
    with FhirClient(endpoint, on_retry=tally.client_retry) as client:
        importer = Importer(
            open_outbox(settings.data_dir),
            client,
            settings.mappings_dir,
            tally,
            SyncSettings(batch_size=settings.batch_size, workers=args.workers),
        )
        started = time.perf_counter()
        result = importer.run(source_files(args.dir))
        run.seconds = time.perf_counter() - started
    if not result.complete:
        stop = result.stop.message if result.stop else ""
        raise SystemExit(f"importen blev inte klar: {result.open_left} kvar {stop}")
    run.figures = {
        "written": tally.written,
        "created": tally.created,
        "unchanged": tally.unchanged,
        "dead": tally.dead,
    }


def do_scan(run: ChildRun, args: argparse.Namespace) -> None:
    """`sip-fhir followups --as-of DAY --confirm-cancellations` over the whole region."""
    counter = RequestCounter()
    service = FollowupService(get_settings())
    started = time.perf_counter()
    report = service.run(
        as_of=args.as_of, units=None, counter=counter, cancellations=CancelPolicy.ALLOW
    )
    run.seconds = time.perf_counter() - started
    if report.errors:
        raise SystemExit(f"uppföljningen gav fel: {report.errors[:3]}")
    run.figures = {
        "patients": report.patients,
        "round_trips": counter.count,
        "write_bundles": report.bundles,
        "changes": report.changes,
        "open_tasks": len(report.open_tasks),
        "load_seconds": report.load_seconds,
        "write_seconds": report.write_seconds,
    }


def do_indicators(run: ChildRun, args: argparse.Namespace) -> None:
    """Every indicator of every unit for the week ending --as-of (the weekly job, unstored)."""
    settings = get_settings()
    counter = RequestCounter()
    rules, mappings = rules_of(settings), load_mappings(settings.mappings_dir)
    started = time.perf_counter()
    with FhirClient(settings.endpoint(), on_request=counter) as client:
        period = snapshot_period(args.as_of)
        results, references = indicators_from_server(client, None, period, rules, mappings=mappings)
    run.seconds = time.perf_counter() - started
    run.figures = {
        "units": len({r.unit_hsa_id for r in results}),
        "indicators": len(results),
        "patients": len(references),
        "round_trips": counter.count,
    }


TASKS: dict[str, Callable[[ChildRun, argparse.Namespace], None]] = {
    "import": do_import,
    "scan": do_scan,
    "indicators": do_indicators,
}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.child")
    parser.add_argument("task", choices=sorted(TASKS))
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--dir", type=Path, help="the data set (import)")
    parser.add_argument("--as-of", type=date.fromisoformat, default=DEFAULT_END)
    parser.add_argument("--trace", action="store_true", help="tracemalloc's Python peak too")
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help="import workers")
    args = parser.parse_args(argv)
    configure(level="WARNING")  # to stderr; per-request debug lines would cost time too
    run = ChildRun(rss_before_kb=current_rss_kb())
    if args.trace:
        tracemalloc.start()
    TASKS[args.task](run, args)
    if args.trace:
        run.python_peak_kb = tracemalloc.get_traced_memory()[1] // 1024
    run.rss_peak_kb = peak_rss_kb()
    print(RESULT_PREFIX + json.dumps(asdict(run)))


def run_child(task: str, base_url: str, data_dir: Path, extra: Sequence[str] = ()) -> ChildRun:
    """Run `task` in a child process with `data_dir` as its SIP_FHIR_DATA_DIR."""
    command = [sys.executable, "-m", "tests.benchmarks.child", task, "--base-url", base_url]
    env = {
        **os.environ,
        "SIP_FHIR_DATA_DIR": str(data_dir),
        "SIP_FHIR_BASE_URL": base_url,
    }
    env.pop("SIP_FHIR_DATABASE_URL", None)  # the adapter's own state: SQLite in data_dir
    done = subprocess.run(
        [*command, *extra], env=env, cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{task} misslyckades ({done.returncode}):\n{done.stderr[-3000:]}")
    return ChildRun(**json.loads(lines[-1].removeprefix(RESULT_PREFIX)))


if __name__ == "__main__":
    main()
