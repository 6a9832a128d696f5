"""Benchmark without a server: the memory the Prea60 run check keeps while it reads an import's
lists (`adapter/prea60/incoming.py`), as the region grows.

    .venv/bin/python -m tests.benchmarks.bench_run_check --patients 10000,30000,100000

For each size, the synthesiser (`sip-fhir synth`) writes a region's year of weekly Prea60
lists (seed 2, 6 units); a fresh child process reads every list with the real reader and counts
the runs and their risk groups as the import's run check does: the child's peak RSS before
and after, and the growth per 1 000 listed patients. The server part of the check (one
comparison per run with the unit's previous run) is not run: it holds one run's group at a time.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from adapter.followup.params import RULES_FILE, load_rule_params
from adapter.prea60.importing import _prea60_rows
from adapter.prea60.incoming import IncomingRuns
from adapter.settings import REPO_ROOT
from adapter.synth import SynthConfig, generate

MAPPINGS = REPO_ROOT / "mappings"


def _peak_mib() -> float:
    """This process's peak RSS: VmHWM, not ru_maxrss, which Linux carries over from the parent
    through fork and exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def child(directory: Path) -> None:
    """Reads the lists; prints `before after runs members seconds`."""
    params = load_rule_params(MAPPINGS / RULES_FILE)
    lists = sorted(directory.glob("prea60-*.csv"))
    before = _peak_mib()
    started = time.monotonic()
    with IncomingRuns() as runs:
        runs.add(_prea60_rows(lists, MAPPINGS), params.risk_group.threshold_percent)
        members = sum(len(runs.group(unit, day)) for unit, day in runs.rows)
        print(before, _peak_mib(), len(runs.rows), members, time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", default="10000,30000,100000", help="sizes, comma-separated")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    print("patients   runs  group members  peak RSS before  after  growth  per 1000 patients")
    for size in (int(n) for n in args.patients.split(",")):
        with tempfile.TemporaryDirectory(prefix="bench-run-check-") as tmp:
            generate(SynthConfig(patients=size, seed=2), Path(tmp))
            found = subprocess.run(
                [sys.executable, "-m", "tests.benchmarks.bench_run_check", "--child", tmp],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.split()
        before, after, runs, members, seconds = (float(v) for v in found[-5:])
        growth = after - before
        print(
            f"{size:8d} {runs:6.0f} {members:14.0f} {before:12.0f} MiB {after:5.0f} MiB"
            f" {growth:4.0f} MiB  {growth / size * 1000:6.2f} MiB  ({seconds:.1f} s)"
        )
    print(f"command: {' '.join(sys.argv)}")


if __name__ == "__main__":
    main()
