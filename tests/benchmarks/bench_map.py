"""Benchmark without a server: `sip-fhir synth` and `sip-fhir map` of one region, at several sizes.

    .venv/bin/python -m tests.benchmarks.bench_map --patients 10000,100000

For each size: `sip-fhir synth --patients N` into a temporary directory, then `sip-fhir map` of
every file it wrote (one transaction Bundle per file on disk). Each command runs as its own
process; its wall time and peak RSS (from wait4) are printed, with the size of what it wrote.
The peak RSS is the child's own VmHWM, written by an exit hook (wait4's ru_maxrss would have this
parent's RSS as its floor: Linux keeps the parent's high-water mark across exec; see child.py).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from adapter.settings import REPO_ROOT
from tests.benchmarks.child import source_files

# `sip-fhir ARGS` with an exit hook that writes the process's own peak RSS to $BENCH_HWM_FILE.
LAUNCHER = """
import atexit, os, sys
from tests.benchmarks.child import peak_rss_kb
atexit.register(lambda: open(os.environ["BENCH_HWM_FILE"], "w").write(str(peak_rss_kb())))
from adapter.cli import app
sys.argv[0] = "sip-fhir"
app()
"""


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    patients: int
    seconds: float
    peak_kb: int
    files: int
    megabytes: float


def timed(arguments: Sequence[str], work: Path) -> tuple[float, int]:
    """Run `sip-fhir ARGUMENTS`; its wall seconds and own peak RSS (KiB). Output is discarded."""
    hwm = work / "hwm"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "BENCH_HWM_FILE": str(hwm)}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", LAUNCHER, *arguments],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 2):  # map: 2 = some rows rejected (synth has a few)
        raise RuntimeError(f"sip-fhir {shlex.join(arguments)}: {done.returncode}\n{done.stderr}")
    return seconds, int(hwm.read_text())


def _size(directory: Path) -> tuple[int, float]:
    files = [p for p in directory.iterdir() if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files) / 1e6


def measure(patients: int, work: Path) -> list[Step]:
    data, bundles = work / f"data-{patients}", work / f"bundles-{patients}"
    seconds, peak = timed(["synth", "--patients", str(patients), "--out", str(data)], work)
    synth = Step("synth", patients, seconds, peak, *_size(data))
    inputs = [str(p) for p in source_files(data)]
    seconds, peak = timed(["map", *inputs, "--out", str(bundles), "--show", "0"], work)
    mapped = Step("map", patients, seconds, peak, *_size(bundles))
    shutil.rmtree(data, ignore_errors=True)
    shutil.rmtree(bundles, ignore_errors=True)
    return [synth, mapped]


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.bench_map")
    parser.add_argument("--patients", default="10000,100000", help="sizes, comma-separated")
    args = parser.parse_args(argv)
    sizes = [int(part) for part in args.patients.split(",")]
    work = Path(tempfile.mkdtemp(prefix="sip-bench-map-"))
    try:
        steps = [step for size in sizes for step in measure(size, work)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{'step':<6} {'patients':>9} {'seconds':>8} {'peak RSS':>9} {'files':>6} {'MB out':>8}")
    for s in steps:
        print(
            f"{s.name:<6} {s.patients:>9} {s.seconds:>8.1f} {s.peak_kb / 1024:>5.0f} MiB "
            f"{s.files:>6} {s.megabytes:>8.1f}"
        )
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"machine: {os.cpu_count()} cores, load average {load}")
    print(f"command: .venv/bin/python -m tests.benchmarks.bench_map {shlex.join(argv)}".strip())


if __name__ == "__main__":
    main()
