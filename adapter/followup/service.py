"""The follow-up engine as a service: settings in, runs out. Used by `sip-fhir followups`, the
scheduler's jobs and the subscription hook, so all three do exactly the same thing.

Runs in one process are serialised (a lock): a scheduled scan and a notification never write the
same patient's Tasks at the same time here. Between processes the writes stay safe (conditional
creates, If-Match on updates) but wasteful: run one scheduler (see adapter/scheduler.py).

Notifications are coalesced: each names a patient, a single worker thread re-evaluates the
patients that arrived since its last round, in one run (a Prea60 import that touches a patient
50 times evaluates them once or twice, not 50 times).

Every run that writes journals what it wrote for the worklist read model and brings the
worklists up to date (adapter/readmodel/worklists.py: how fresh they are).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import date
from functools import cached_property

from sqlalchemy.exc import SQLAlchemyError

from adapter.fhirclient import FhirClient, FhirError
from adapter.followup.facts import subject_of
from adapter.followup.reconcile import (
    CancelPolicy,
    FollowupReport,
    RequestCounter,
    local_today,
    run_followups,
)
from adapter.followup.rules import RuleSet
from adapter.followup.rulesfile import rules_of
from adapter.followup.scope import ScopeError
from adapter.logs import get_logger
from adapter.mapping import Mappings, load_mappings
from adapter.mapping.fhir import Json
from adapter.readmodel.scanrows import ScanRows
from adapter.readmodel.store import Touched
from adapter.readmodel.worklists import Worklists, touched_units
from adapter.settings import Settings

_log = get_logger("adapter.followup.service")


class FollowupService:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._run_lock = threading.Lock()
        self._pending: set[str] = set()
        self._wake = threading.Condition()
        self._worker: threading.Thread | None = None
        self.notified_runs = 0  # rounds of the notification worker (tests and logs)

    @cached_property
    def rules(self) -> RuleSet:
        return rules_of(self.settings)

    @cached_property
    def mappings(self) -> Mappings:
        return load_mappings(self.settings.mappings_dir)

    def client(self, counter: RequestCounter | None = None) -> FhirClient:
        return FhirClient(self.settings.endpoint(), on_request=counter)

    def run(
        self,
        *,
        as_of: date | None = None,
        units: Sequence[str] | None = None,
        patient_refs: Sequence[str] | None = None,
        quick: bool = False,
        dry_run: bool = False,
        counter: RequestCounter | None = None,
        cancellations: CancelPolicy = CancelPolicy.HOLD,
    ) -> FollowupReport:
        """One reconciliation (see reconcile.run_followups); `as_of` defaults to today.

        Above the cancellation cap the default keeps the Tasks open and flags it (`held`)."""
        today = local_today(self.rules)
        as_of = as_of or today
        # A scan for today makes the worklists' rows from what it reads (readmodel/scanrows.py).
        scan = (
            self.worklists.scan_rows(units, as_of)
            if as_of == today and patient_refs is None and not quick and not dry_run
            else None
        )
        with self._run_lock, self.client(counter) as client:
            report = run_followups(
                client,
                self.rules,
                as_of,
                units=units,
                patient_refs=patient_refs,
                quick=quick,
                dry_run=dry_run,
                mappings=self.mappings,
                batch_size=self.settings.batch_size,
                cancellations=cancellations,
                on_patient=scan.seen if scan is not None else None,
            )
        if not dry_run:
            whole = scan is not None and not report.errors and not report.stopped
            self._written(units, patient_refs, scan if whole else None)
        return report

    @cached_property
    def worklists(self) -> Worklists:
        """The worklist read model (adapter/readmodel): the runs keep it current."""
        return Worklists(self.settings, self.rules, self.mappings)

    def _written(
        self,
        units: Sequence[str] | None,
        patient_refs: Sequence[str] | None,
        scan: ScanRows | None,
    ) -> None:
        """Journal what the run wrote (a unit's scan: the unit; notified patients: them) and
        refresh the worklists now: the scanned units, or every unit the read model holds; a
        whole scan's `scan` rows first."""
        if patient_refs is not None:
            touched, scope = Touched(patient_refs=frozenset(patient_refs)), None
        else:
            touched, scope = touched_units(units), units
        last = self.worklists.written(touched)
        try:
            if scan is not None:
                self.worklists.seed(scan, touched, last)
            self.worklists.refresh(local_today(self.rules), scope)
        except (FhirError, ScopeError, SQLAlchemyError) as error:  # the next reader retries
            _log.error("worklists not refreshed after the run", error=str(error))

    # --- notifications (the subscription hook) ---

    def notified(self, resource_type: str, resource_id: str, resource: Json | None) -> None:
        """A resource was written: queue its patient (the resource is read if not delivered)."""
        if resource is None:
            with self.client() as client:
                resource = client.read(resource_type, resource_id)
        patient = subject_of(resource)
        if patient is None:
            _log.info("notification without a patient", resource=f"{resource_type}/{resource_id}")
            return
        with self._wake:
            self._pending.add(patient)
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(
                    target=self._drain, name="followup-notifications", daemon=True
                )
                self._worker.start()
            self._wake.notify()

    def _drain(self) -> None:
        while True:
            with self._wake:
                while not self._pending:
                    self._wake.wait()
                refs, self._pending = sorted(self._pending), set()
            try:
                report = self.run(patient_refs=refs)
                _log.info("notified patients evaluated", patients=len(refs), changes=report.changes)
            except (FhirError, OSError, ValueError) as error:
                # The next notification or scan retries; the worker must not die.
                _log.error("notified patients not evaluated", patients=len(refs), error=str(error))
            self.notified_runs += 1
