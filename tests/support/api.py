"""Helpers of the API tests against the real HAPI server (no tests here): the service with API
keys of each role, and a unit of the test's own with source files dated around today, which
the tests send through the ingest API (the import pipeline) before the follow-up engine runs."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from adapter.api import create_app
from adapter.api.apikeys import ApiKeyEntry, add_entry, new_key
from adapter.api.principal import Role
from adapter.audit import AuditLog
from adapter.followup.reconcile import FollowupReport, local_today
from adapter.followup.rulesfile import load_rules
from adapter.followup.service import FollowupService
from adapter.mapping import load_mappings
from adapter.settings import REPO_ROOT, Settings
from tests.support.formats import PREA60_LINE as PREA60_HEADER
from tests.support.people import fictional_personnummer
from tests.support.sync import unit_hsa_id

RULES = load_rules(REPO_ROOT / "mappings" / "rules.json")
MAPPINGS = load_mappings(REPO_ROOT / "mappings")
KARIN = "SE2321000057-P00000000011"
HOOK_SECRET = "test-hook-secret-0123456789"


def today() -> date:
    """Today as the service sees it (the rules' time zone)."""
    return local_today(RULES)


@dataclass
class Person:
    pnr: str  # ÅÅÅÅMMDD-NNNN
    family: str
    given: str
    risk: str  # as the CSV writes it, "23,5"

    @property
    def digits(self) -> str:
        return self.pnr.replace("-", "")

    @property
    def name(self) -> str:
        return f"{self.given} {self.family}"


@dataclass
class Clinic:
    """A unit of the test alone, and its patients:

    - `late`: in the risk group, a patientkontrakt made 100 days ago: follow-up overdue;
    - `no_plan`: in the risk group without a plan: a Task to establish one;
    - `sip`: in the risk group, a SIP made 30 days ago: followed up in time, no open Task;
    - `low`: on the list under the threshold: not in the risk group.
    """

    unit: str
    run: date
    late: Person
    no_plan: Person
    sip: Person
    low: Person
    source_system: str
    people: list[Person] = field(default_factory=list)

    @classmethod
    def new(cls, seed: int | None = None) -> Clinic:
        rng = random.Random(seed)

        def person(family: str, given: str, risk: str) -> Person:
            return Person(fictional_personnummer(rng), family, given, risk)

        clinic = cls(
            unit=unit_hsa_id(rng),
            run=today() - timedelta(days=3),
            late=person("Lind", "Åsa", "23,5"),
            no_plan=person("Öberg", "Gösta", "31,0"),
            sip=person("Berg", "Karl", "17,0"),
            low=person("Ek", "Maja", "5,0"),
            source_system=f"apitest{rng.randrange(10**9)}",
        )
        clinic.people = [clinic.late, clinic.no_plan, clinic.sip, clinic.low]
        return clinic

    def prea60_csv(self) -> bytes:
        lines = [PREA60_HEADER]
        for p in self.people:
            lines.append(
                f"{p.pnr};{p.family}, {p.given};{p.risk};{self.run.isoformat()};{self.unit};"
                f"Testenhetens vårdcentral;SE2321000057-P00000000021"
            )
        return ("\n".join(lines) + "\n").encode("utf-8")

    def plan(self, who: Person, kind: str, created: date, plan_id: str) -> dict[str, Any]:
        plan: dict[str, Any] = {
            "source_system": self.source_system,
            "plan_id": plan_id,
            "version": 1,
            "kind": kind,
            "patient": who.pnr,
            "status": "active",
            "title": "SIP efter utskrivning" if kind == "sip" else "Patientkontrakt",
            "created": created.isoformat(),
            "updated": created.isoformat(),
            "unit_hsa_id": self.unit,
            "what_matters": "Att kunna bo kvar hemma",
            "goals": [
                {"id": "g1", "text": "Gå 20 minuter varje dag", "expressed_by": "patient"},
                {"id": "g2", "text": "Inga oplanerade inläggningar", "expressed_by": "care"},
            ],
            "actions": [
                {"text": "Väga mig varje måndag", "responsible": "patient", "goal": "g1"},
                {
                    "text": "Läkemedelsgenomgång var tredje månad",
                    "responsible": "region",
                    "role": "fast-lakarkontakt",
                },
                {
                    "text": "Hemtjänst morgon och kväll",
                    "responsible": "kommun",
                    "role": "hemtjanst",
                },
                {"text": "Handla varannan dag", "responsible": "narstaende"},
            ],
            "participants": [
                {
                    "role": "fast-vardkontakt",
                    "name": "Karin Ek",
                    "hsa_id": KARIN,
                    "organization": "Testenhetens vårdcentral",
                    "huvudman": "region",
                },
                {"role": "hemtjanst", "name": "Hemtjänsten Norr", "huvudman": "kommun"},
            ],
        }
        if kind == "sip":
            plan |= {"kva": "AU124", "overall_responsibility": "region"}
        return plan

    def plans(self) -> list[dict[str, Any]]:
        return [
            self.plan(self.late, "patientkontrakt", today() - timedelta(days=100), "PK-1"),
            self.plan(self.sip, "sip", today() - timedelta(days=30), "SIP-1"),
        ]


class Keys:
    """API keys of each role, in a key file of the test's own."""

    def __init__(self, path: Path, unit: str) -> None:
        self.path = path
        self.admin = self._add("admin-test", Role.ADMIN, [])
        self.integration = self._add("integration-test", Role.INTEGRATION, [])
        self.vardsamordnare = self._add("Vera Vårdsamordnare", Role.VARDSAMORDNARE, [unit])
        self.other_unit = self._add(
            "Olle Annan", Role.VARDSAMORDNARE, ["SE2321000057-E99999999999"]
        )

    def _add(self, name: str, role: Role, units: list[str]) -> str:
        key = new_key()
        add_entry(self.path, key, ApiKeyEntry(name=name, role=role, units=units))
        return key


@dataclass
class Service:
    app: FastAPI
    settings: Settings
    keys: Keys
    audit: AuditLog

    def client(self) -> TestClient:
        return TestClient(self.app, raise_server_exceptions=False)

    def followups(self, unit: str) -> FollowupReport:
        """The follow-up engine on the unit (what the scheduler's scan does)."""
        report = FollowupService(self.settings).run(units=[unit])
        assert report.errors == [], report.errors
        return report


def make_service(tmp_path: Path, base_url: str, unit: str) -> Service:
    keys = Keys(tmp_path / "keys.json", unit)
    settings = Settings(
        base_url=base_url,
        data_dir=tmp_path / "data",
        api_keys_file=keys.path,
        scheduler=False,
        hook_secret=HOOK_SECRET,
        max_attempts=2,
    )
    audit = AuditLog(settings.audit_db_path)
    return Service(create_app(settings, audit_log=audit), settings, keys, audit)


def ingest(client: TestClient, key: str, clinic: Clinic) -> None:
    """The unit's Prea60 list and plans through the ingest API; every row must land."""
    auth = {"X-API-Key": key}
    files = {"file": ("prea60-test.csv", clinic.prea60_csv(), "text/csv")}
    answer = client.post("/ingest/prea60", files=files, headers=auth)
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == len(clinic.people), answer.text
    answer = client.post(
        "/ingest/plans",
        content=json.dumps(clinic.plans()),
        headers=auth | {"Content-Type": "application/json"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == 2, answer.text


@contextmanager
def running(app: FastAPI, port: int) -> Iterator[str]:
    """The app under uvicorn on 127.0.0.1:`port` in a thread; yields its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
