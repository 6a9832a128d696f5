"""What the vårdsamordnare's routes do, JSON and pages alike: read the worklist, a patient, the
indicators and their trend from the FHIR server, and mark a Task done.

Reads go through the follow-up loader (`adapter.followup.load`), so the list shows exactly what
the rules see; the read models are pure (`adapter.worklist`). Today's worklist is served from
the read model (`adapter.readmodel`), which the loader fills and the adapter's writes refresh.
Every search that names a patient is a POST `_search` or a batch entry: no personnummer in a
request line.

Marking a Task done records the act that fulfils it as an event through the ingest pipeline
(an AW010 for a SIP, UPPF for a patientkontrakt, SIPKALL for a call to SIP: a Procedure, as an
events file would give), then lets the follow-up engine re-evaluate the patient, which
completes the Task with its own reason and opens the next one when it falls due. A Task the
engine still wants open (the act was already registered that day) is completed directly, with
If-Match on the version read. A Task that only a new plan can fulfil (establish or renew a
plan) is not marked done here: it closes when the plan arrives.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from functools import cached_property

from adapter import personnummer
from adapter.api.ingestion import Ingestion, IngestReport
from adapter.canonical import TaskType
from adapter.domain import Event, EventCode, PlanKind, SourceRef
from adapter.fhirclient import Conflict, FhirClient, NotFound, Rejected, entry_error
from adapter.followup.facts import Translations
from adapter.followup.load import load_states
from adapter.followup.loaded import LoadedPatient
from adapter.followup.reconcile import local_today
from adapter.followup.rules import Outcome, PlanFocus, RuleSet
from adapter.followup.service import FollowupService
from adapter.followup.tasks import ServerTask, closed_task, read_task
from adapter.indicators.compute import IndicatorResult, Period
from adapter.indicators.store import indicators_from_server, read_reports
from adapter.indicators.trend import UnitTrend, snapshot_period, unit_trends
from adapter.logs import get_logger
from adapter.mapping import Mappings
from adapter.mapping.fhir import Json
from adapter.prea60.guard import RunCheck
from adapter.readmodel.store import Touched
from adapter.readmodel.worklists import names
from adapter.settings import Settings
from adapter.worklist import (
    PatientView,
    WorklistRow,
    patient_name,
    patient_units,
    patient_view,
    worklist_rows,
)

PLAN_TYPES = ("CarePlan", "Goal", "CareTeam")
PAGE = "1000"
_FOLLOW_UP_EVENT = {PlanKind.SIP: EventCode.AW010, PlanKind.PATIENTKONTRAKT: EventCode.UPPF}
_log = get_logger("adapter.api.clinic")


class TaskNotDoable(Exception):
    """The Task cannot be marked done here (Swedish reason)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class EventNotRecorded(Exception):
    """The pipeline did not land the event (Swedish reason); the Task stays open."""

    def __init__(self, reason: str, report: IngestReport) -> None:
        super().__init__(reason)
        self.reason = reason
        self.report = report


@dataclass(frozen=True, slots=True)
class TaskContext:
    """An open Task of the adapter and the patient it is for."""

    task: ServerTask
    patient: LoadedPatient

    @property
    def units(self) -> set[str]:
        """The units that may act on it: the Task's own, else the patient's."""
        return {self.task.unit_hsa_id} if self.task.unit_hsa_id else patient_units(self.patient)


@dataclass(frozen=True, slots=True)
class TaskDone:
    task_id: str
    status: str
    reason: str | None
    event_code: EventCode
    event_date: date
    next_due: date | None  # the patient's next follow-up, if the rules set one


@dataclass(frozen=True, slots=True)
class Indicators:
    unit_hsa_id: str
    period: Period
    results: list[IndicatorResult]


class Clinic:
    """One per app (`app.state.clinic`); a FHIR client per call, the follow-up engine shared."""

    def __init__(self, settings: Settings, followups: FollowupService) -> None:
        self.settings = settings
        self.followups = followups
        self.ingestion = Ingestion(settings)

    # The follow-up engine's (same settings): the files are read once for both.
    @property
    def rules(self) -> RuleSet:
        return self.followups.rules

    @property
    def mappings(self) -> Mappings:
        return self.followups.mappings

    @cached_property
    def translations(self) -> Translations:
        return Translations.from_mappings(self.mappings)

    def client(self) -> FhirClient:
        return FhirClient(self.settings.endpoint())

    def today(self) -> date:
        """Today in the rules' time zone: the default `as_of` of every view."""
        return local_today(self.rules)

    # --- reads ---

    def worklist(self, unit_hsa_id: str, as_of: date) -> list[WorklistRow]:
        """Today's list from the read model (current with the adapter's last write); another
        day's (the API's `as_of`) read from the FHIR server."""
        if as_of == self.today():
            return self.followups.worklists.rows(unit_hsa_id, as_of)
        with self.client() as client:
            loaded = load_states(
                client, as_of=as_of, rules=self.rules, units=[unit_hsa_id], mappings=self.mappings
            )
            found = names(client, (p.reference for p in loaded.patients.values()))
        return worklist_rows(loaded, unit_hsa_id, as_of, self.rules, found)

    def unconfirmed_runs(self, unit_hsa_id: str) -> list[RunCheck]:
        """The unit's Prea60 runs held back for a person to confirm (adapter/prea60/), from
        the read model (a run held back, confirmed or rejected rebuilds it)."""
        return self.followups.worklists.unconfirmed_runs(unit_hsa_id, self.today())

    def load_patient(self, client: FhirClient, patient_id: str) -> LoadedPatient | None:
        """The patient with Patient logical id `patient_id`, if it exists and has a personnummer."""
        if personnummer.shaped(patient_id):
            return None
        loaded = load_states(
            client,
            as_of=self.today(),
            rules=self.rules,
            patient_refs=[f"Patient/{patient_id}"],
            mappings=self.mappings,
        )
        return next(iter(loaded.patients.values()), None)

    def patient(self, patient_id: str, as_of: date) -> tuple[PatientView, LoadedPatient] | None:
        """The patient's view, or None when there is no such patient (with a personnummer)."""
        if personnummer.shaped(patient_id):  # never a logical id: not sent to the server
            return None
        with self.client() as client:
            loaded = load_states(
                client,
                as_of=as_of,
                rules=self.rules,
                patient_refs=[f"Patient/{patient_id}"],
                mappings=self.mappings,
            )
            patient = next(iter(loaded.patients.values()), None)
            if patient is None:
                return None
            resources, name = self._plan_resources(client, patient.reference)
        view = patient_view(patient, resources, as_of, self.rules, self.translations, name=name)
        return view, patient

    def _plan_resources(self, client: FhirClient, reference: str) -> tuple[list[Json], str | None]:
        """The patient's CarePlans, Goals and CareTeams, and their name: one batch round-trip."""
        entries = [
            {"request": {"method": "GET", "url": f"{t}?subject={reference}&_count={PAGE}"}}
            for t in PLAN_TYPES
        ]
        entries.append({"request": {"method": "GET", "url": reference}})
        answer = client.batch({"resourceType": "Bundle", "type": "batch", "entry": entries})
        resources: list[Json] = []
        name = None
        for entry in answer.get("entry", ()):
            error = entry_error(entry)
            if error is not None:
                raise error
            found = entry.get("resource") or {}
            if found.get("resourceType") == "Bundle":
                resources.extend(e["resource"] for e in found.get("entry", ()) if "resource" in e)
            elif found.get("resourceType") == "Patient":
                name = patient_name(found)
        return resources, name

    # --- indicators ---

    def indicators(self, unit_hsa_id: str, as_of: date) -> Indicators:
        """The unit's indicators for the week ending on `as_of` (the weekly snapshot's period)."""
        period = snapshot_period(as_of)
        with self.client() as client:
            results, _ = indicators_from_server(
                client, [unit_hsa_id], period, self.rules, mappings=self.mappings
            )
        return Indicators(unit_hsa_id, period, results)

    def trend(self, unit_hsa_id: str) -> UnitTrend | None:
        """The unit's stored weekly snapshots; None before the first."""
        with self.client() as client:
            trends = unit_trends(read_reports(client, [unit_hsa_id]), self.rules)
        return next((t for t in trends if t.unit_hsa_id == unit_hsa_id), None)

    # --- marking a Task done ---

    def open_task(self, task_id: str) -> TaskContext | None:
        """The adapter's Task `task_id` with its patient; None if there is no such Task.

        An id shaped like a personnummer is no Task's: refused before any request, so the number
        a user typed into the URL never reaches the FHIR server's access log."""
        if personnummer.shaped(task_id):
            return None
        with self.client() as client:
            try:
                task = read_task(client.read("Task", task_id))
            except (NotFound, Rejected):  # Rejected: an id the server cannot hold
                return None
            if task is None or task.patient_reference is None:
                return None
            patient = self.load_patient(client, task.patient_reference.rsplit("/", 1)[-1])
        return TaskContext(task, patient) if patient is not None else None

    def fulfilling_event(self, context: TaskContext, day: date) -> Event:
        """The registered act that fulfils the Task; TaskNotDoable for the plan Tasks."""
        task, patient = context.task, context.patient
        if not task.is_open:
            raise TaskNotDoable("Uppgiften är redan avslutad.")
        plan_ref = None
        if task.task_type is TaskType.FOLLOW_UP:
            focus = patient.facts.focus.focus(task.focus_reference)
            plans = patient.state.active_plans(day)
            key = focus.plan_key if isinstance(focus, PlanFocus) else None
            plan = patient.state.plan(key) if key else (plans[0] if plans else None)
            if plan is None:
                raise TaskNotDoable("Planen som ska följas upp finns inte längre.")
            code, plan_ref = _FOLLOW_UP_EVENT[plan.kind], plan.key
        elif task.task_type is TaskType.SIP_CALL:
            code = EventCode.SIPKALL
        else:
            raise TaskNotDoable(
                "Uppgiften avslutas av sig själv när den nya planen (SIP eller patientkontrakt) "
                "har registrerats i källsystemet och importerats."
            )
        unit = task.unit_hsa_id or next(iter(sorted(context.units)), "")
        source = SourceRef(f"Task/{task.id}", 1)
        return Event(patient.person, day, code, unit, source, plan_ref=plan_ref)

    def mark_done(
        self, context: TaskContext, *, day: date, contact_type: str | None, by: str
    ) -> TaskDone:
        """Record the fulfilling event, let the engine close the Task, close it if it did not."""
        event = self.fulfilling_event(context, day)
        if contact_type:
            event = replace(event, contact_type=contact_type)
        report = self.ingestion.record_events([event], f"Task/{context.task.id}")
        if report.rejected or report.dead or report.pending or report.stopped:
            reasons = "; ".join(e.reason for e in report.errors) or report.stopped
            raise EventNotRecorded(
                f"Åtgärden {event.code.value} kunde inte registreras: {reasons or 'okänt fel'}",
                report,
            )
        as_of = self.today()
        self.followups.run(patient_refs=[context.patient.reference], as_of=as_of)
        with self.client() as client:
            task = self._close_if_open(client, context.task.id, event, by)
            patient = self.load_patient(client, context.patient.reference.rsplit("/", 1)[-1])
        worklists = self.followups.worklists
        worklists.written(Touched(patient_refs=frozenset({context.patient.reference})))
        worklists.refresh(as_of, sorted(context.units))  # the list the caller goes back to
        next_due = self.rules.follow_up_due(patient.state, as_of) if patient else None
        reason = (task.resource.get("statusReason") or {}).get("text")
        _log.info("task marked done", task=task.id, code=event.code.value, status=task.status)
        return TaskDone(task.id, task.status, reason, event.code, event.date, next_due)

    def _close_if_open(self, client: FhirClient, task_id: str, event: Event, by: str) -> ServerTask:
        for _attempt in range(3):  # a concurrent change (409) is read again
            task = read_task(client.read("Task", task_id))
            if task is None:
                raise TaskNotDoable("Uppgiften finns inte längre.")
            if not task.is_open:
                return task
            reason = f"Markerad som klar av {by}: {event.code.value} {event.date.isoformat()}"
            try:
                client.update(
                    closed_task(task.resource, Outcome.COMPLETED, reason), if_match=task.version
                )
            except Conflict:
                continue
        task = read_task(client.read("Task", task_id))
        if task is None or task.is_open:
            raise TaskNotDoable("Uppgiften ändrades samtidigt av någon annan; försök igen.")
        return task
