"""Benchmark of the sync engine and the region scans on one HAPI server (H2 or PostgreSQL).

    .venv/bin/python -m tests.benchmarks.bench_import --patients N [--hapi-db h2|postgres]

One local HAPI server (started here on a free port with a fresh data dir, or `--base-url`), four
synthetic data sets of the same kind (seeds S, S+1, S+2; S+3 at N/4), each with fresh identifiers:
- warm-up: the import of the N/4 set (seed S+3): warms the server's JIT, gives memory at N/4;
- raw: set S mapped into disjoint transaction Bundles before timing, split into one slice per
  parallelism level (1, 2, 4, 8 threads by default); the best level's rate is the raw limit;
- import: set S+1 through the Importer (outbox, workers), in a child process for its peak RSS;
- re-import: set S+1 again with the same outbox (nothing changed: nothing should be written);
- naive: the first `--naive-limit` resources of set S+2, one conditional write per resource;
- scan, re-scan: the region follow-up scan (`sip-fhir followups`) over everything on the server;
- indicators: every indicator of every unit (the weekly snapshot's computation, not stored).
See README.md beside this file for what each number means.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from itertools import chain, islice
from pathlib import Path

import requests

from adapter.conformance import install_conformance
from adapter.fhirclient import FhirClient
from adapter.logs import configure
from adapter.mapping import (
    MappedResource,
    MappingError,
    Mappings,
    load_mappings,
    map_record,
    transaction_bundle,
)
from adapter.settings import REPO_ROOT, EndpointSettings, get_settings
from adapter.sources import read_file
from adapter.sync.engine import DEFAULT_WORKERS
from adapter.synth import SynthConfig, generate
from tests.benchmarks.child import ChildRun, run_child, source_files
from tests.benchmarks.raw import FHIR_JSON, disjoint_batches, post_parallel, split

HAPI_SCRIPT = REPO_ROOT / "deploy" / "hapi" / "hapi.sh"
HAPI_START_TIMEOUT = 600
DEFAULT_LEVELS = (1, 2, 4, 8)
# The scans run twice: on the server holding the warm-up set only (small) and at the end
# (everything), so their round trips, time and memory are seen at two sizes in one run.
SCANS = ("scan", "re-scan", "indicators")


# --- data sets ---


def synth(out: Path, patients: int, seed: int) -> Path:
    generate(SynthConfig(patients=patients, seed=seed), out)
    return out


def mapped_records(
    directory: Path, mappings_dir: Path, mappings: Mappings
) -> Iterator[list[MappedResource]]:
    """Each record's resources, read and mapped as the importer does (bad rows left out)."""
    for path in source_files(directory):
        for record in read_file(path, mappings_dir=mappings_dir).records():
            try:
                yield map_record(record, mappings)
            except MappingError:
                continue


# --- what is timed ---


@dataclass(frozen=True, slots=True)
class Measurement:
    name: str
    data_set: str
    resources: int  # resources the data set maps to (the work delivered)
    sent: int  # entries or requests sent, or resources the importer wrote
    seconds: float

    @property
    def rate(self) -> float:
        return self.resources / self.seconds if self.seconds else 0.0


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


def naive_request(item: MappedResource) -> Request:
    """A conditional create (stubs) or conditional update: the transaction entry, sent alone.

    The match URL is in the request line: synthetic personnummer, a throwaway server; the
    adapter itself never does this (see the design's privacy rules).
    """
    body = json.dumps(item.resource).encode()
    if item.create_only:
        query = item.match_url.partition("?")[2]
        return Request("POST", item.resource_type, {"If-None-Exist": query}, body)
    return Request("PUT", item.match_url, {}, body)


def send_each(base_url: str, requests_: Sequence[Request]) -> float:
    with requests.Session() as session:
        session.headers.update({"Content-Type": FHIR_JSON, "Accept": FHIR_JSON})
        started = time.perf_counter()
        for r in requests_:
            url = f"{base_url}/{r.path}"
            response = session.request(r.method, url, headers=r.headers, data=r.body, timeout=60)
            if response.status_code >= 300:
                raise RuntimeError(f"HTTP {response.status_code}: {response.text[:2000]}")
        return time.perf_counter() - started


# --- the server ---


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LocalHapi:
    """deploy/hapi/hapi.sh on a free port and a fresh data dir; `start` does not wait.

    `hapi_db` postgres: hapi.sh starts a private PostgreSQL cluster (deploy/postgres/pg.sh) in
    the same temporary directory, on another free port, and `stop` stops it too.
    """

    def __init__(self, work: Path, hapi_db: str, port: int | None, pg_port: int | None) -> None:
        self.port = port or _free_port()
        self.data_dir = work / "hapi"
        self.env = {
            **os.environ,
            "HAPI_PORT": str(self.port),
            "HAPI_DATA_DIR": str(self.data_dir),
            "HAPI_START_TIMEOUT": str(HAPI_START_TIMEOUT),
            "HAPI_DB": hapi_db,
            "PG_DATA_DIR": str(work / "postgres"),
            "PG_PORT": str(pg_port or _free_port()),
        }
        self.base_url = f"http://localhost:{self.port}/fhir"
        self._starting: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self._starting = subprocess.Popen(
            [str(HAPI_SCRIPT), "start"],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait(self) -> str:
        assert self._starting is not None
        out, err = self._starting.communicate()
        if self._starting.returncode != 0:
            raise RuntimeError(f"hapi.sh start misslyckades:\n{out[-2000:]}\n{err[-2000:]}")
        return self.base_url

    def peak_rss_kb(self) -> int | None:
        """The JVM's peak RSS so far (VmHWM), None if it cannot be read."""
        try:
            pid = (self.data_dir / "hapi.pid").read_text().strip()
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        except OSError:
            return None
        return None

    def stop(self) -> None:
        if self._starting is not None and self._starting.poll() is None:
            self._starting.wait()  # a start in progress: let it finish, so stop finds the pid
        subprocess.run([str(HAPI_SCRIPT), "stop"], env=self.env, capture_output=True, check=False)

    def stop_command(self) -> str:
        names = ("HAPI_PORT", "HAPI_DATA_DIR", "HAPI_DB", "PG_DATA_DIR", "PG_PORT")
        assigned = " ".join(f"{name}={shlex.quote(self.env[name])}" for name in names)
        return f"{assigned} {HAPI_SCRIPT} stop"


# --- the run ---


@dataclass(frozen=True, slots=True)
class RawLevel:
    workers: int
    bundles: int
    resources: int
    entries: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.resources / self.seconds if self.seconds else 0.0


@dataclass(frozen=True, slots=True)
class Report:
    measurements: list[Measurement]
    raw: list[RawLevel]
    runs: dict[str, ChildRun]
    small_patients: int
    patients: int
    hapi_db: str
    hapi_peak_kb: int | None


def _mib(kb: int) -> str:
    return f"{kb / 1024:.0f} MiB"


def _print_table(report: Report) -> None:
    columns = ("data set", "resources", "sent", "seconds", "res/s")
    header = f"{'measurement':<11} {columns[0]:<16}" + "".join(f" {c:>9}" for c in columns[1:])
    print(header)
    print("-" * len(header))
    for m in report.measurements:
        print(
            f"{m.name:<11} {m.data_set:<16} {m.resources:>9} {m.sent:>9} "
            f"{m.seconds:>9.1f} {m.rate:>9.1f}"
        )


def _print_scans(report: Report) -> None:
    for name in (f"{scan}{size}" for size in (" small", "") for scan in SCANS):
        run = report.runs[name]
        f = run.figures
        patients = int(f["patients"]) or 1
        trips = int(f["round_trips"])
        extra = (
            f", {int(f['units'])} units, {int(f['indicators'])} indicators"
            if name.startswith("indicators")
            else f", {int(f['write_bundles'])} write Bundles, {int(f['changes'])} Task changes"
        )
        print(
            f"{name:<16} {int(f['patients']):>7} patients  {trips:>6} round trips "
            f"({trips / patients * 1000:.1f} per 1000 patients)  {run.seconds:>7.1f} s "
            f"({run.seconds / patients * 1000:.1f} ms per patient){extra}"
        )


def print_report(report: Report, command: str) -> None:
    by_name = {m.name: m for m in report.measurements}
    first, again, naive = (by_name[n] for n in ("import", "re-import", "naive"))
    print(f"HAPI database: {report.hapi_db}")
    _print_table(report)
    print()
    print("raw limit: disjoint prebuilt Bundles, one slice of the raw set per parallelism")
    for level in report.raw:
        print(
            f"  {level.workers} thread(s): {level.bundles:>4} Bundles {level.resources:>7} "
            f"resources {level.seconds:>7.1f} s {level.rate:>7.1f} res/s"
        )
    best = max(report.raw, key=lambda level: level.rate)
    print()
    print(
        f"import/raw limit    {first.rate / best.rate:.2f}  (import rate / best raw rate, "
        f"{best.workers} threads)"
    )
    print(f"re-import speed-up  {first.seconds / again.seconds:.1f}x  (import s / re-import s)")
    print(f"import/naive        {first.rate / naive.rate:.1f}x  (import rate / naive rate)")
    _print_scans(report)
    for label, patients, name in (
        ("import small", report.small_patients, "warm-up"),
        ("import N", report.patients, "import"),
        ("re-import N", report.patients, "re-import"),
        *((name, None, name) for size in (" small", "") for name in (f"{s}{size}" for s in SCANS)),
    ):
        run = report.runs[name]
        size = f"{patients:>6} patients" if patients else "whole server  "
        phases = "".join(f", {phase}: {_mib(kb)}" for phase, kb in run.phases_kb.items())
        print(
            f"peak RSS {label:<16} ({size}): {_mib(run.rss_peak_kb)}  "
            f"(before: {_mib(run.rss_before_kb)}{phases})"
        )
    if report.hapi_peak_kb is not None:
        print(f"peak RSS HAPI JVM (whole run): {_mib(report.hapi_peak_kb)}")
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"machine: {os.cpu_count()} cores, load average {load}")
    print(f"command: {command}")


def _measure(name: str, data_set: str, resources: int, run: ChildRun) -> Measurement:
    return Measurement(name, data_set, resources, int(run.figures["written"]), run.seconds)


def raw_limit(
    base_url: str, bodies: list[bytes], counts: list[tuple[int, int]], levels: Sequence[int]
) -> list[RawLevel]:
    """Each level posts its own slice (fresh records), smallest parallelism first."""
    indexed = list(range(len(bodies)))
    out: list[RawLevel] = []
    for workers, part in zip(levels, split(indexed, len(levels)), strict=True):
        chosen = [bodies[i] for i in part]
        seconds = post_parallel(base_url, chosen, workers)
        resources = sum(counts[i][0] for i in part)
        entries = sum(counts[i][1] for i in part)
        out.append(RawLevel(workers, len(chosen), resources, entries, seconds))
    return out


def benchmark(args: argparse.Namespace, work: Path, base_url_of: Callable[[], str]) -> Report:
    settings = get_settings()
    mappings_dir = settings.mappings_dir
    mappings = load_mappings(mappings_dir)
    n, seed = args.patients, args.seed
    small = args.small_patients or max(1, n // 4)
    raw_n = args.raw_patients or n
    sets = {
        "raw": synth(work / "data-a", raw_n, seed),
        "import": synth(work / "data-b", n, seed + 1),
        "naive": synth(work / "data-c", n, seed + 2),
        "warm-up": synth(work / "data-d", small, seed + 3),
    }
    sizes = {"raw": raw_n, "warm-up": small}
    names = {k: f"seed {seed + i} N={sizes.get(k, n)}" for i, k in enumerate(sets)}

    def records(key: str) -> Iterator[list[MappedResource]]:
        return mapped_records(sets[key], mappings_dir, mappings)

    # Everything the plain loops send is built before any timing.
    raw_batches = list(disjoint_batches(records("raw"), settings.batch_size))
    raw_bodies = [json.dumps(transaction_bundle(b)).encode() for b in raw_batches]
    counts = [
        (len(b), len(json.loads(body)["entry"]))
        for b, body in zip(raw_batches, raw_bodies, strict=True)
    ]
    del raw_batches
    naive_items = list(islice(chain.from_iterable(records("naive")), args.naive_limit))
    naive_requests = [naive_request(item) for item in naive_items]
    import_resources = sum(len(r) for r in records("import"))
    small_resources = sum(len(r) for r in records("warm-up"))

    base_url = base_url_of()
    with FhirClient(EndpointSettings(base_url=base_url)) as client:
        install_conformance(client, REPO_ROOT / "profiles")

    trace = ["--trace"] if args.trace else []

    def imported(key: str, outbox: str) -> ChildRun:
        extra = ["--dir", str(sets[key]), "--workers", str(args.import_workers), *trace]
        return run_child("import", base_url, work / outbox, extra)

    def scans(suffix: str) -> None:
        for name in SCANS:
            task = "indicators" if name == "indicators" else "scan"
            runs[name + suffix] = run_child(task, base_url, work / "state-scan", trace)

    runs = {"warm-up": imported("warm-up", "outbox-d")}
    scans(" small")
    raw = raw_limit(base_url, raw_bodies, counts, args.raw_workers)
    runs["import"] = imported("import", "outbox-b")
    runs["re-import"] = imported("import", "outbox-b")
    naive_seconds = send_each(base_url, naive_requests)
    scans("")
    measurements = [
        _measure("warm-up", names["warm-up"], small_resources, runs["warm-up"]),
        *(
            Measurement(f"raw {r.workers}t", names["raw"], r.resources, r.entries, r.seconds)
            for r in raw
        ),
        _measure("import", names["import"], import_resources, runs["import"]),
        _measure("re-import", names["import"], import_resources, runs["re-import"]),
        Measurement(
            "naive", names["naive"], len(naive_requests), len(naive_requests), naive_seconds
        ),
    ]
    return Report(measurements, raw, runs, small, n, args.hapi_db, None)


def _levels(value: str) -> tuple[int, ...]:
    levels = tuple(int(part) for part in value.split(","))
    if not levels or min(levels) < 1:
        raise argparse.ArgumentTypeError("ange trådantal ≥ 1, t.ex. 1,2,4,8")
    return levels


def _arguments(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.bench_import")
    parser.add_argument("--patients", type=int, default=10_000, help="patients per data set")
    parser.add_argument("--seed", type=int, default=1, help="seed of the first data set")
    parser.add_argument("--naive-limit", type=int, default=2_000, help="resources sent naively")
    parser.add_argument("--small-patients", type=int, help="warm-up set size (default: N/4)")
    parser.add_argument("--raw-patients", type=int, help="raw-limit set size (default: N)")
    parser.add_argument("--import-workers", type=int, default=DEFAULT_WORKERS, help="workers")
    parser.add_argument(
        "--raw-workers", type=_levels, default=DEFAULT_LEVELS, help="raw parallelism levels"
    )
    parser.add_argument("--hapi-db", choices=("h2", "postgres"), default="h2")
    parser.add_argument("--trace", action="store_true", help="tracemalloc in the children")
    parser.add_argument("--base-url", help="use this FHIR server instead of starting one")
    parser.add_argument("--keep-server", action="store_true", help="leave the server running")
    parser.add_argument("--hapi-port", type=int, help="the started server's port (default: free)")
    parser.add_argument("--pg-port", type=int, help="its PostgreSQL's port (default: free)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _arguments(argv)
    configure(level="WARNING")  # to stderr; per-request debug lines would cost time too
    work = Path(tempfile.mkdtemp(prefix="sip-bench-"))
    work.chmod(0o755)  # as root, pg.sh runs PostgreSQL as `postgres`, which must reach its dir
    server = None if args.base_url else LocalHapi(work, args.hapi_db, args.hapi_port, args.pg_port)
    keep = args.keep_server and server is not None
    if server is not None:
        server.start()  # starts while the data sets are generated and mapped
    started = time.monotonic()
    try:
        report = benchmark(args, work, server.wait if server else lambda: args.base_url)
        if server is not None:
            report = replace(report, hapi_peak_kb=server.peak_rss_kb())
    finally:
        if server is not None and not keep:
            server.stop()
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    command = f".venv/bin/python -m tests.benchmarks.bench_import {shlex.join(argv)}"
    print_report(report, command.strip())
    print(f"total: {(time.monotonic() - started) / 60:.1f} min")
    if keep and server is not None:
        print(f"server kept at {server.base_url}; stop it with: {server.stop_command()}")


if __name__ == "__main__":
    main()
