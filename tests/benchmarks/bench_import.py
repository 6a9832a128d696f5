"""Benchmark of the sync engine: `sip-fhir import` against a plain loop and the naive way.

    .venv/bin/python -m tests.benchmarks.bench_import --patients N [--seed S] [--keep-server]

One local HAPI server (started here on a free port with a fresh data dir, or `--base-url`), four
synthetic data sets of the same kind (seeds S, S+1, S+2; S+3 at N/4), each with fresh identifiers:
- warm-up: the import of the N/4 set (seed S+3): warms the server's JIT, gives memory at N/4;
- raw: set S mapped into transaction Bundles before timing, posted by a minimal `requests` loop;
- import: set S+1 through the Importer (outbox, workers), in a child process for its peak RSS;
- re-import: set S+1 again with the same outbox (nothing changed: nothing should be written);
- naive: the first `--naive-limit` resources of set S+2, one conditional write per resource.
See README.md beside this file for what each number means.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
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
from adapter.sources import SourceKind, kind_of, read_file
from adapter.sync import Importer, SyncSettings, Tally, open_outbox
from adapter.synth import SynthConfig, generate

HAPI_SCRIPT = REPO_ROOT / "deploy" / "hapi" / "hapi.sh"
FHIR_JSON = "application/fhir+json"
RESULT_PREFIX = "BENCH-RESULT "
HTTP_TIMEOUT = 600  # seconds: a 200-entry transaction on a loaded 2-core machine can be slow
HAPI_START_TIMEOUT = 600


# --- data sets ---


def synth(out: Path, patients: int, seed: int) -> Path:
    generate(SynthConfig(patients=patients, seed=seed), out)
    return out


def source_files(directory: Path) -> list[Path]:
    """The synth files in dependency order: risk lists, plans, events, discharge notices."""
    order = list(SourceKind)
    kinds = {path: kind_of(path) for path in directory.iterdir()}
    return sorted(
        (path for path, kind in kinds.items() if kind is not None),
        key=lambda path: (order.index(kinds[path]), path.name),  # type: ignore[arg-type]
    )


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


def batches(records: Iterable[list[MappedResource]], size: int) -> Iterator[list[MappedResource]]:
    """Whole records up to `size` distinct resources, as the outbox's `claim` groups them."""
    batch: list[MappedResource] = []
    keys: set[str] = set()
    for resources in records:
        fresh = {r.match_url for r in resources} - keys
        if keys and len(keys) + len(fresh) > size:
            yield batch
            batch, keys = [], set()
        batch.extend(resources)
        keys.update(r.match_url for r in resources)
        if len(keys) >= size:
            yield batch
            batch, keys = [], set()
    if batch:
        yield batch


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


def _checked(response: requests.Response) -> requests.Response:
    if response.status_code >= 300:
        raise RuntimeError(f"HTTP {response.status_code}: {response.text[:2000]}")
    return response


def post_bundles(base_url: str, bodies: Sequence[bytes]) -> float:
    """The minimal loop: one session, one transaction after the other."""
    with requests.Session() as session:
        session.headers.update({"Content-Type": FHIR_JSON, "Accept": FHIR_JSON})
        started = time.perf_counter()
        for body in bodies:
            _checked(session.post(base_url, data=body, timeout=HTTP_TIMEOUT))
        return time.perf_counter() - started


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
            _checked(session.request(r.method, url, headers=r.headers, data=r.body, timeout=60))
        return time.perf_counter() - started


# --- the import, in a child process (its own peak RSS, its own SIP_FHIR_DATA_DIR) ---


@dataclass(frozen=True, slots=True)
class ImportRun:
    seconds: float
    written: int
    created: int
    unchanged: int
    dead: int
    rss_before_kb: int  # RSS of the child just before the import (interpreter + modules)
    rss_peak_kb: int


def _current_rss_kb() -> int:
    """VmRSS now (Linux); ru_maxrss is the peak so far, which module loading may have set."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child_import(directory: Path, base_url: str, data_dir: Path) -> None:
    """Runs in the child: import `directory`, print the result as one JSON line."""
    settings = get_settings()
    tally = Tally()
    sync_settings = SyncSettings(batch_size=settings.batch_size)
    rss_before = _current_rss_kb()
    with FhirClient(EndpointSettings(base_url=base_url), on_retry=tally.client_retry) as client:
        importer = Importer(
            open_outbox(data_dir), client, settings.mappings_dir, tally, sync_settings
        )
        started = time.perf_counter()
        result = importer.run(source_files(directory))
        seconds = time.perf_counter() - started
    if not result.complete:
        stop = result.stop.message if result.stop else ""
        raise SystemExit(f"importen blev inte klar: {result.open_left} kvar {stop}")
    run = ImportRun(
        seconds=seconds,
        written=tally.written,
        created=tally.created,
        unchanged=tally.unchanged,
        dead=tally.dead,
        rss_before_kb=rss_before,
        rss_peak_kb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    )
    print(RESULT_PREFIX + json.dumps(asdict(run)))


def run_import(directory: Path, base_url: str, data_dir: Path) -> ImportRun:
    command = [sys.executable, "-m", "tests.benchmarks.bench_import", "--child-import"]
    command += [str(directory), "--base-url", base_url, "--data-dir", str(data_dir)]
    env = {**os.environ, "SIP_FHIR_DATA_DIR": str(data_dir)}
    done = subprocess.run(
        command, env=env, cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"importen misslyckades ({done.returncode}):\n{done.stderr[-3000:]}")
    return ImportRun(**json.loads(lines[-1].removeprefix(RESULT_PREFIX)))


# --- the server ---


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LocalHapi:
    """deploy/hapi/hapi.sh on a free port and a fresh data dir; `start` does not wait."""

    def __init__(self, data_dir: Path) -> None:
        self.port = _free_port()
        self.env = {
            **os.environ,
            "HAPI_PORT": str(self.port),
            "HAPI_DATA_DIR": str(data_dir),
            "HAPI_START_TIMEOUT": str(HAPI_START_TIMEOUT),
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

    def stop(self) -> None:
        if self._starting is not None and self._starting.poll() is None:
            self._starting.wait()  # a start in progress: let it finish, so stop finds the pid
        subprocess.run([str(HAPI_SCRIPT), "stop"], env=self.env, capture_output=True, check=False)

    def stop_command(self) -> str:
        data_dir = shlex.quote(self.env["HAPI_DATA_DIR"])
        return f"HAPI_PORT={self.port} HAPI_DATA_DIR={data_dir} {HAPI_SCRIPT} stop"


# --- the run ---


@dataclass(frozen=True, slots=True)
class Report:
    measurements: list[Measurement]
    warm_up: ImportRun
    first: ImportRun
    again: ImportRun
    small_patients: int
    patients: int


def _mib(kb: int) -> str:
    return f"{kb / 1024:.0f} MiB"


def print_report(report: Report, command: str) -> None:
    by_name = {m.name: m for m in report.measurements}
    raw, first, again, naive = (by_name[n] for n in ("raw", "import", "re-import", "naive"))
    columns = ("data set", "resources", "sent", "seconds", "res/s")
    header = f"{'measurement':<11} {columns[0]:<16}" + "".join(f" {c:>9}" for c in columns[1:])
    print(header)
    print("-" * len(header))
    for m in report.measurements:
        print(
            f"{m.name:<11} {m.data_set:<16} {m.resources:>9} {m.sent:>9} "
            f"{m.seconds:>9.1f} {m.rate:>9.1f}"
        )
    print()
    print(f"import/raw          {first.rate / raw.rate:.2f}  (share of the plain loop's rate)")
    print(f"re-import speed-up  {first.seconds / again.seconds:.1f}x  (import s / re-import s)")
    print(f"import/naive        {first.rate / naive.rate:.1f}x  (import rate / naive rate)")
    for label, patients, run in (
        ("N/4", report.small_patients, report.warm_up),
        ("N", report.patients, report.first),
        ("N again", report.patients, report.again),
    ):
        print(
            f"import peak RSS {label:<8} ({patients:>6} patients): {_mib(run.rss_peak_kb)}"
            f"  (before the import: {_mib(run.rss_before_kb)})"
        )
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"machine: {os.cpu_count()} cores, load average {load}")
    print(f"command: {command}")


def _measure_import(name: str, data_set: str, resources: int, run: ImportRun) -> Measurement:
    return Measurement(name, data_set, resources, run.written, run.seconds)


def benchmark(args: argparse.Namespace, work: Path, base_url_of: Callable[[], str]) -> Report:
    settings = get_settings()
    mappings_dir = settings.mappings_dir
    mappings = load_mappings(mappings_dir)
    n, seed = args.patients, args.seed
    small = max(1, n // 4)
    sets = {
        "raw": synth(work / "data-a", n, seed),
        "import": synth(work / "data-b", n, seed + 1),
        "naive": synth(work / "data-c", n, seed + 2),
        "warm-up": synth(work / "data-d", small, seed + 3),
    }
    names = {k: f"seed {seed + i} N={small if k == 'warm-up' else n}" for i, k in enumerate(sets)}

    def records(key: str) -> Iterator[list[MappedResource]]:
        return mapped_records(sets[key], mappings_dir, mappings)

    # Everything the plain loops send is built before any timing.
    raw_batches = list(batches(records("raw"), settings.batch_size))
    raw_bodies = [json.dumps(transaction_bundle(b)).encode() for b in raw_batches]
    raw_entries = sum(len(json.loads(b)["entry"]) for b in raw_bodies)
    raw_resources = sum(len(b) for b in raw_batches)
    naive_items = list(islice(chain.from_iterable(records("naive")), args.naive_limit))
    naive_requests = [naive_request(item) for item in naive_items]
    import_resources = sum(len(r) for r in records("import"))
    small_resources = sum(len(r) for r in records("warm-up"))

    base_url = base_url_of()
    with FhirClient(EndpointSettings(base_url=base_url)) as client:
        install_conformance(client, REPO_ROOT / "profiles")

    warm_up = run_import(sets["warm-up"], base_url, work / "outbox-d")
    raw_seconds = post_bundles(base_url, raw_bodies)
    first = run_import(sets["import"], base_url, work / "outbox-b")
    again = run_import(sets["import"], base_url, work / "outbox-b")
    naive_seconds = send_each(base_url, naive_requests)
    measurements = [
        _measure_import("warm-up", names["warm-up"], small_resources, warm_up),
        Measurement("raw", names["raw"], raw_resources, raw_entries, raw_seconds),
        _measure_import("import", names["import"], import_resources, first),
        _measure_import("re-import", names["import"], import_resources, again),
        Measurement(
            "naive", names["naive"], len(naive_requests), len(naive_requests), naive_seconds
        ),
    ]
    return Report(measurements, warm_up, first, again, small, n)


def _arguments(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.bench_import")
    parser.add_argument("--patients", type=int, default=10_000, help="patients per data set")
    parser.add_argument("--seed", type=int, default=1, help="seed of the first data set")
    parser.add_argument("--naive-limit", type=int, default=2_000, help="resources sent naively")
    parser.add_argument("--base-url", help="use this FHIR server instead of starting one")
    parser.add_argument("--keep-server", action="store_true", help="leave the server running")
    parser.add_argument("--child-import", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _arguments(argv)
    configure(level="WARNING")  # to stderr; per-request debug lines would cost time too
    if args.child_import is not None:
        child_import(args.child_import, args.base_url, args.data_dir)
        return
    work = Path(tempfile.mkdtemp(prefix="sip-bench-"))
    server = None if args.base_url else LocalHapi(work / "hapi")
    keep = args.keep_server and server is not None
    if server is not None:
        server.start()  # starts while the data sets are generated and mapped
    try:
        report = benchmark(args, work, server.wait if server else lambda: args.base_url)
    finally:
        if server is not None and not keep:
            server.stop()
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    command = f".venv/bin/python -m tests.benchmarks.bench_import {shlex.join(argv)}"
    print_report(report, command.strip())
    if keep and server is not None:
        print(f"server kept at {server.base_url}; stop it with: {server.stop_command()}")


if __name__ == "__main__":
    main()
