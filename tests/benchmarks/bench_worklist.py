"""Load benchmark of the worklist (issue "Region scale", item 4): page and API under concurrent
users, served from the read model, against a real `sip-fhir serve`.

    .venv/bin/python -m tests.benchmarks.bench_worklist [--listed 150] [--rows 1200]
        [--users 50 [10 ...]] [--seconds 30] [--loads paced closed]
        [--before-seconds 0] [--before-users 5] [--base-url URL] [--unit HSA-ID] [--replicas N]
        [--database-url URL]

1. A unit of its own on the FHIR server (`--base-url`, default the shared test server): a Prea60
   list of `--listed` patients (about two thirds in the risk group, half of those with a plan made
   100 or 30 days ago) through the real ingest pipeline, then the real follow-up scan of the
   unit, which builds the unit's read model.
2. The read model's rows copied (new Patient ids, fictional personnummer) up to `--rows` rows in
   scope: the size of a unit of 10 000 listed patients, without loading them into HAPI.
3. `sip-fhir serve` in a child process on a free port (scheduler off), on the same data dir.
4. `--users` virtual users (threads of this process, the bounded client), each with its own
   keep-alive connection and page session, ask in turn for the worklist page and
   `GET /units/{unit}/worklist`, each as it opens, sorted by risk, filtered, searched and paged
   (`targets`), for `--seconds` per load model (`LOADS`: `paced` 1–5 s between an answer and the
   next request, `closed` none). Then, for `--before-seconds`, `--before-users` users call the
   API for yesterday (`?as_of=`), which takes the old path: a FHIR load of the unit per request
   (of the `--listed` patients really on the server, not `--rows`).
Prints p50/p95/p99 per target. See README.md beside this file.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path

import httpx

from adapter.api.apikeys import ApiKeyEntry, add_entry, new_key
from adapter.api.ingestion import Ingestion
from adapter.api.principal import Role
from adapter.conformance import install_conformance
from adapter.domain import PersonId
from adapter.fhirclient import FhirClient
from adapter.followup.load import missing_search_params
from adapter.followup.service import FollowupService
from adapter.personnummer import fictional_number
from adapter.readmodel.worklists import store_for
from adapter.settings import REPO_ROOT, Settings
from adapter.sources import SourceKind
from adapter.worklist.rows import WorklistRow
from tests.support.api import Clinic, Person, today
from tests.support.people import fictional_personnummer
from tests.support.sync import unit_hsa_id

PURPOSE = "uppfoljning"
START_TIMEOUT = 60.0
REQUEST_TIMEOUT = 120.0  # an answer slower than this counts as an error
# Seconds a user waits between an answer and the next request. `paced`: a vårdsamordnare
# reading the list and clicking on (the target is judged on this); `closed`: no pause at all,
# every user always has a request in flight (a stress figure: 50 such users offer the load of
# hundreds of people).
LOADS = {"paced": (1.0, 5.0), "closed": (0.0, 0.0)}
SERVE = "from adapter.cli import app; app()"  # `sip-fhir`, with this tree on PYTHONPATH
FAMILIES = ("Lind", "Berg", "Ek", "Öberg", "Holm", "Sjöberg", "Nyström", "Lundqvist")
GIVEN = ("Åsa", "Karl", "Maja", "Gösta", "Eva", "Nils", "Ingrid", "Olof")


@dataclass
class Sample:
    target: str
    seconds: float
    status: int


@dataclass
class Load:
    samples: list[Sample] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, sample: Sample) -> None:
        with self.lock:
            self.samples.append(sample)


# --- data ---


def make_unit(listed: int, seed: int) -> Clinic:
    rng = random.Random(seed)
    people = [
        Person(
            fictional_personnummer(rng),
            rng.choice(FAMILIES),
            rng.choice(GIVEN),
            f"{rng.uniform(1, 45):.1f}",
        )
        for _ in range(listed)
    ]
    clinic = Clinic(
        unit=unit_hsa_id(rng),
        run=today() - timedelta(days=3),
        late=people[0],
        no_plan=people[1],
        sip=people[2],
        low=people[3],
        source_system=f"bench{rng.randrange(10**9)}",
    )
    clinic.people = [replace(p, risk=p.risk.replace(".", ",")) for p in people]
    return clinic


def plans(clinic: Clinic) -> list[dict[str, object]]:
    """Half the risk group has a plan: a patientkontrakt 100 days old (follow-up overdue) or a
    SIP 30 days old."""
    group = [p for p in clinic.people if float(p.risk.replace(",", ".")) >= 15]
    made = []
    for n, person in enumerate(group[::2]):
        kind, age = ("patientkontrakt", 100) if n % 2 else ("sip", 30)
        made.append(clinic.plan(person, kind, today() - timedelta(days=age), f"P-{n}"))
    return made


def fill(settings: Settings, clinic: Clinic) -> None:
    """The unit through the real ingest pipeline, then the real scan (which builds the rows)."""
    with FhirClient(settings.endpoint()) as client:
        if missing_search_params(client):
            install_conformance(client, REPO_ROOT / "profiles")
    ingestion = Ingestion(settings)
    started = time.monotonic()
    for kind, body in (
        (SourceKind.PREA60, clinic.prea60_csv()),
        (SourceKind.PLANS, "\n".join(json.dumps(p) for p in plans(clinic)).encode()),
    ):
        report = ingestion.run(io.BytesIO(body), kind, f"bench {kind.value}")
        if report.rejected or report.dead or report.pending:
            sys.exit(f"import of {kind.value} failed: {report.errors[:3]}")
    print(f"imported {len(clinic.people)} listed patients in {time.monotonic() - started:.1f} s")
    started = time.monotonic()
    report = FollowupService(settings).run(units=[clinic.unit])
    if report.errors:
        sys.exit(f"scan failed: {report.errors}")
    print(f"scan + read model build in {time.monotonic() - started:.1f} s")


def widen(settings: Settings, unit: str, rows: int) -> tuple[int, int]:
    """The unit's rows copied up to `rows` (fictional personnummer, Patient ids `bench-n`)."""
    store = store_for(settings)
    state = store.unit_state(unit)
    real = store.rows(unit)
    if state is None or not real:
        sys.exit("the scan built no rows")
    copies: list[WorklistRow] = []
    for n in range(max(0, rows - len(real))):
        born = date(1930, 1, 1) + timedelta(days=n // 20)
        digits = fictional_number(born, female=n % 2 == 0, pick=(n // 2) % 10)
        copies.append(
            replace(
                real[n % len(real)],
                patient_id=f"bench-{n}",
                person=PersonId(digits),
                name=f"Kopia {n}",
            )
        )
    store.replace_unit(
        unit,
        [*real, *copies],
        as_of=state.as_of,
        seq=state.seq,
        since=state,
        unconfirmed=store.unconfirmed(unit),
    )
    return len(real), len(real) + len(copies)


# --- the service ---


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def existing_unit(settings: Settings, unit: str) -> int:
    """A unit already on the server (e.g. a `bench_import` region): the real follow-up scan of
    the unit builds its read model; nothing is copied. Returns the rows in scope."""
    started = time.monotonic()
    report = FollowupService(settings).run(units=[unit])
    if report.errors:
        sys.exit(f"scan failed: {report.errors}")
    total = time.monotonic() - started
    state = store_for(settings).unit_state(unit)
    rows = len(store_for(settings).rows(unit))
    scan = report.load_seconds + report.write_seconds
    print(
        f"scan of {unit}: {report.patients} patients, {report.changes} Task changes, "
        f"read {report.load_seconds:.1f} s, write {report.write_seconds:.1f} s; "
        f"read model after it: {total - scan:.1f} s, {rows} rows"
        + ("" if state is not None else " (NOT BUILT)")
    )
    return rows


def serve(settings: Settings, keys: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = os.environ | {
        "SIP_FHIR_BASE_URL": settings.base_url,
        "SIP_FHIR_DATA_DIR": str(settings.data_dir),
        "SIP_FHIR_API_KEYS_FILE": str(keys),
        "SIP_FHIR_SCHEDULER": "off",
        "PYTHONPATH": str(REPO_ROOT),
    }
    if settings.database_url is not None:  # the replicas share read model, audit, sessions
        env["SIP_FHIR_DATABASE_URL"] = settings.database_url.get_secret_value()
    out = log.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            sys.exit(f"serve did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.3)


# --- the load ---


def user(
    urls: list[str],
    key: str,
    targets: list[tuple[str, str]],
    until: float,
    load: Load,
    rng: random.Random,
    think: tuple[float, float],
) -> None:
    # One keep-alive connection per user to one replica, as a Kubernetes Service balances
    # connections; the page session is on the shared database, so any replica knows it.
    url = urls[rng.randrange(len(urls))]
    with httpx.Client(
        base_url=url, timeout=REQUEST_TIMEOUT, headers={"X-Purpose": PURPOSE}
    ) as client:
        login = client.post(
            "/ui/login",
            data={"api_key": key, "purpose": PURPOSE},
            headers={"Origin": url},
        )
        if login.status_code != 303:
            load.add(Sample("login", 0.0, login.status_code))
            return
        step = rng.randrange(len(targets))
        time.sleep(rng.uniform(0, max(think[1], 0.5)))  # users arrive spread out
        while time.monotonic() < until:
            name, path = targets[step % len(targets)]
            step += 1
            headers = {"X-API-Key": key} if name.startswith("api") else {}
            started = time.perf_counter()
            try:
                status = client.get(path, headers=headers).status_code  # the body is read
            except httpx.TimeoutException:
                status = 0  # counted as an error
            load.add(Sample(name.split(":")[0], time.perf_counter() - started, status))
            if think[1] > 0:
                time.sleep(rng.uniform(*think))


def run_load(
    urls: list[str],
    key: str,
    targets: list[tuple[str, str]],
    users: int,
    seconds: float,
    think: tuple[float, float],
) -> tuple[Load, float]:
    load = Load()
    until = time.monotonic() + seconds
    threads = [
        threading.Thread(
            target=user,
            args=(urls, key, targets, until, load, random.Random(n), think),
            daemon=True,
        )
        for n in range(users)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return load, time.monotonic() - started


def targets(page: str, api: str) -> list[tuple[str, str]]:
    """What a user asks for, in turn: the list as it opens, sorted by risk, the overdue only
    (their second page), a birth year typed in, a later page; the page and the API alike."""
    queries = ("", "?sort=-risk", "?overdue=1&page=2", "?q=1931", "?page=5")
    return [
        (f"{name}:{n}", f"{path}{query}")
        for n, query in enumerate(queries)
        for name, path in (("page", page), ("api", api))
    ]


def _load_average() -> str:
    return ", ".join(f"{value:.1f}" for value in os.getloadavg())


def report(
    phase: str, users: int, load: Load, elapsed: float, out: Callable[[str], None] = print
) -> None:
    for target in sorted({s.target for s in load.samples}):
        samples = [s for s in load.samples if s.target == target]
        ok = sorted(s.seconds * 1000 for s in samples if s.status == 200)
        errors = len(samples) - len(ok)
        head = f"{phase:<7} {users:>5} {target:<8} {len(samples):>6} {errors:>6}"
        if len(ok) < 2:
            out(f"{head}   (too few answers)")
            continue
        cuts = statistics.quantiles(ok, n=100, method="inclusive")
        out(
            f"{head} {len(samples) / elapsed:>6.1f} "
            f"{cuts[49]:>7.0f} {cuts[94]:>7.0f} {cuts[98]:>7.0f} {ok[-1]:>7.0f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listed", type=int, default=150, help="patients put on the server")
    parser.add_argument("--rows", type=int, default=1200, help="rows in scope in the read model")
    parser.add_argument("--users", type=int, nargs="+", default=[50], help="one run per count")
    parser.add_argument("--seconds", type=float, default=30.0, help="per load model and count")
    parser.add_argument(
        "--loads", nargs="+", choices=sorted(LOADS), default=["paced", "closed"], help="models"
    )
    parser.add_argument("--before-seconds", type=float, default=0.0, help="0: no old path")
    parser.add_argument(
        "--before-users", type=int, default=5, help="old path: each request loads from FHIR"
    )
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--unit", help="a unit already on the server (HSA-id): scan it, no fill, no copies"
    )
    parser.add_argument("--replicas", type=int, default=1, help="`sip-fhir serve` processes")
    parser.add_argument(
        "--database-url", help="SIP_FHIR_DATABASE_URL of the adapter (default: SQLite files)"
    )
    parser.add_argument(
        "--base-url",
        default=os.environ.get("SIP_FHIR_TEST_SERVER", "http://localhost:8080/fhir"),
    )
    argv = sys.argv[1:]
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(10**9)
    with tempfile.TemporaryDirectory(prefix="bench-worklist-") as scratch:
        root = Path(scratch)
        keys = root / "keys.json"
        clinic = None if args.unit else make_unit(args.listed, seed)
        unit = clinic.unit if clinic else args.unit
        key = new_key()
        add_entry(keys, key, ApiKeyEntry(name="Bänk", role=Role.VARDSAMORDNARE, units=[unit]))
        settings = Settings(
            base_url=args.base_url,
            data_dir=root / "data",
            api_keys_file=keys,
            scheduler=False,
            database_url=args.database_url,
        )
        if clinic is None:
            existing_unit(settings, unit)
        else:
            fill(settings, clinic)
            real, rows = widen(settings, unit, args.rows)
            print(f"read model: {real} rows from the scan, {rows} rows in scope after copying")
        served = [
            serve(settings, keys, root / f"serve-{n}.log") for n in range(max(1, args.replicas))
        ]
        urls = [url for _, url in served]
        try:
            page, api = f"/ui/units/{unit}", f"/units/{unit}/worklist"
            yesterday = (today() - timedelta(days=1)).isoformat()
            print(
                "\nms from sending a request to the last byte of its answer\n"
                f"{'load':<7} {'users':>5} {'target':<8} {'reqs':>6} {'errors':>6} {'req/s':>6} "
                f"{'p50':>7} {'p95':>7} {'p99':>7} {'max':>7}"
            )
            for name in args.loads:
                for users in args.users:
                    load, elapsed = run_load(
                        urls, key, targets(page, api), users, args.seconds, LOADS[name]
                    )
                    report(name, users, load, elapsed)
            if args.before_seconds > 0:
                old = [("api-old", f"{api}?as_of={yesterday}")]
                load, elapsed = run_load(
                    urls, key, old, args.before_users, args.before_seconds, LOADS["paced"]
                )
                report("before", args.before_users, load, elapsed)
            print(f"machine: {os.cpu_count()} cores, load average {_load_average()}")
            shown = " ".join(re.sub(r"(://[^:/@]+:)[^@]+@", r"\1***@", arg) for arg in argv)
            print(f"command: .venv/bin/python -m tests.benchmarks.bench_worklist {shown}")
        finally:
            for process, _ in served:
                process.terminate()
            for process, _ in served:
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:  # a request still waiting for the FHIR server
                    process.kill()
                    process.wait()


if __name__ == "__main__":
    main()
