"""Follow-up rules: which Tasks should be open for a patient, and how to get there from what is.

Pure: a `PatientState`, `as_of` and a `RuleSet` in, decisions out. The reconciliation does the I/O.

Each rule opens one Task per *occasion*, a stable string in the Task's business identifier
(`task_key`): when the occasion passes (the thing got done, or no longer applies) the Task is closed
and a later need gets a new occasion, hence a new Task. Occasions and due dates:

- establish-plan, per listing unit whose risk group the patient is in and no active plan exists:
  occasion "<unit HSA-id>|<start>", where start is the first run of the unbroken streak of runs
  that keep the patient in the group, or the day the patient's last plan ended if later (a revoked
  plan brings a new Task). Opens on start, due start + establish_plan.due_days.
- follow-up, per patient in any risk group with an active plan: occasion "<latest follow-up
  date>|<start of the risk-group streak>" (the earliest over the units); due latest +
  follow_up.interval_days (exactly on that day it is due, the day after overdue); opens
  follow_up.due_soon_days before. A follow-up is an AW010 or UPPF event, a new version of an
  active plan (its `updated`, version > 1) or the creation of an active plan (the first).
- sip-call, per discharge notice needing both huvudmän with no SIPKALL on or after the notice day:
  occasion the Meddelande-id; due the end of the sip_call.working_days-th working day after it.
- renew-plan, per active plan past valid_until (as_of > valid_until): occasion
  "<plan key>|<valid_until>"; opens the day after, due valid_until + renew_plan.due_days.

The owner is the first plan participant with a role of owner.participant_roles (the fast
vårdkontakt), else the unit. Business status: due until the due day has passed, then overdue.

Safeguards around the rules (rules.json, enforced by the I/O around them):
- the risk group is that of the unit's newest *confirmed* Prea60 run. A new run that would drop
  more than prea60_guard.max_dropped_share of the previous confirmed run's risk group, or has
  fewer rows than prea60_guard.min_size_ratio of its rows, is stored unconfirmed
  (RiskAssessment.status preliminary) and read by no rule until a person confirms it
  (adapter/prea60/guard.py; `sip-fhir prea60 confirm`, the API, the worklist banner);
- a scan that would cancel more than scan.max_cancellations Tasks at once stops and asks (CLI)
  or keeps them open and flags it (scheduler, API); see reconcile.py;
- a unit scan covers every patient whose home unit (`PatientState.home_unit`, the rule of the
  lus-sip-call indicator) is the unit, also one known only through a recent discharge notice.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from adapter.canonical import TaskBusinessStatus, TaskType
from adapter.domain import PersonId, PlanKind
from adapter.followup.calendar import WorkingCalendar, sip_call_deadline
from adapter.followup.params import RuleParams
from adapter.followup.state import NoticeFacts, PatientState, PlanFacts, RiskMembership
from adapter.mapping.identifiers import stable_digest

# --- what a Task is about, and who owns it ---


@dataclass(frozen=True, slots=True)
class PlanFocus:
    plan_key: str  # source_system:plan_id (the CarePlan's business identifier)


@dataclass(frozen=True, slots=True)
class RiskFocus:
    unit_hsa_id: str
    run_date: date  # the unit's newest run: the RiskAssessment that keeps the patient in the group


@dataclass(frozen=True, slots=True)
class NoticeFocus:
    message_id: str  # Meddelande-id of the discharge notice


Focus = PlanFocus | RiskFocus | NoticeFocus


class OwnerKind(StrEnum):
    PRACTITIONER = "practitioner"  # a person's HSA-id (the fast vårdkontakt)
    ORGANIZATION = "organization"  # a unit's HSA-id


@dataclass(frozen=True, slots=True)
class Owner:
    kind: OwnerKind
    hsa_id: str


@dataclass(frozen=True, slots=True)
class TaskDecision:
    """A Task the world should have for the patient (open from `opens_on`)."""

    key: str  # business identifier value (ID_TASK): task_key(patient, task_type, occasion)
    task_type: TaskType
    occasion: str
    patient: PersonId
    focus: Focus
    owner: Owner | None  # None only for a sip-call of a patient no unit or plan is known for
    unit_hsa_id: str | None  # the unit whose worklist it belongs to
    opens_on: date
    due: date  # the last day to do it (Task.restriction.period.end = due_at)
    due_at: datetime  # end of the due day, local time
    business_status: TaskBusinessStatus
    description: str  # Swedish, for Task.description


class Outcome(StrEnum):
    """How a Task that no longer should be open ends (FHIR Task.status)."""

    COMPLETED = "completed"  # what it asked for was done
    CANCELLED = "cancelled"  # it no longer applies


@dataclass(frozen=True, slots=True)
class Closure:
    outcome: Outcome
    reason: str  # Swedish, for Task.statusReason


@dataclass(frozen=True, slots=True)
class OpenTask:
    """An open Task as the reconciliation found it on the server.

    `focus` is optional: the key alone is usually enough to tell what a Task was about, but a
    renew-plan Task of an earlier valid_until needs it to be closed as completed.
    `reason_in_focus`: written before reasons moved to Task.reasonReference; rewritten once.
    """

    key: str
    task_type: TaskType
    business_status: TaskBusinessStatus | None = None
    due: date | None = None
    owner: Owner | None = None
    focus: Focus | None = None
    reason_in_focus: bool = False

    @classmethod
    def of(cls, decision: TaskDecision) -> OpenTask:
        return cls(
            decision.key,
            decision.task_type,
            decision.business_status,
            decision.due,
            decision.owner,
            decision.focus,
        )


class ActionKind(StrEnum):
    CREATE = "create"
    UPDATE = "update"  # business status, due date, owner, focus or where the reason sits changed
    COMPLETE = "complete"
    CANCEL = "cancel"


@dataclass(frozen=True, slots=True)
class Action:
    kind: ActionKind
    key: str
    task_type: TaskType
    decision: TaskDecision | None = None  # create/update: the Task as it should be
    reason: str | None = None  # complete/cancel: Swedish statusReason
    changes: tuple[str, ...] = ()  # update: the fields that differ


@dataclass(frozen=True)
class RuleSet:
    """Rule parameters with the working calendar they define."""

    params: RuleParams
    calendar: WorkingCalendar

    @classmethod
    def from_params(cls, params: RuleParams) -> RuleSet:
        return cls(params, params.working_calendar())

    def notice_day(self, notice: NoticeFacts) -> date:
        """The local day of the notice: the SIP-call counting starts the day after."""
        return self.calendar.local_date(notice.ready_at)

    def notice_deadline(self, notice: NoticeFacts) -> datetime:
        return sip_call_deadline(notice.ready_at, self.calendar, self.params.sip_call.working_days)

    def in_risk_group(self, state: PatientState, unit_hsa_id: str, as_of: date) -> bool:
        return state.in_risk_group(unit_hsa_id, as_of, self.params.risk_group.threshold_percent)

    def follow_up_due(self, state: PatientState, as_of: date) -> date | None:
        """When the patient's next follow-up falls due (latest + interval); None without a plan.

        Due on that day, overdue after it: a patient is followed up in time on `as_of` exactly
        when `as_of <= follow_up_due`.
        """
        if not state.active_plans(as_of):
            return None
        latest = state.latest_follow_up(as_of)
        if latest is None:
            return None
        return latest.date + timedelta(days=self.params.follow_up.interval_days)


def task_key(patient: PersonId, task_type: TaskType, occasion: str) -> str:
    """The Task's business identifier value; never shows the personnummer."""
    return stable_digest(patient, task_type.value, occasion)


def business_status(due: date, as_of: date) -> TaskBusinessStatus:
    return TaskBusinessStatus.OVERDUE if as_of > due else TaskBusinessStatus.DUE


def _owner(plans: Iterable[PlanFacts], unit_hsa_id: str | None, rules: RuleSet) -> Owner | None:
    for plan in plans:
        hsa_id = plan.participant_hsa_id(rules.params.owner.participant_roles)
        if hsa_id:
            return Owner(OwnerKind.PRACTITIONER, hsa_id)
    return Owner(OwnerKind.ORGANIZATION, unit_hsa_id) if unit_hsa_id else None


_KIND_TEXT = {PlanKind.SIP: "SIP", PlanKind.PATIENTKONTRAKT: "patientkontrakt"}
_NO_LONGER_IN_GROUP = "Patienten ingår inte längre i riskgruppen (senaste Prea60-körningen)"
_NO_ACTIVE_PLAN = "Patienten har ingen aktiv SIP eller patientkontrakt"
_CHANGED = "Underlaget har ändrats; uppgiften gäller inte längre"


@dataclass(frozen=True, slots=True)
class _Context:
    state: PatientState
    as_of: date
    rules: RuleSet

    def decision(
        self,
        task_type: TaskType,
        occasion: str,
        *,
        focus: Focus,
        owner: Owner | None,
        unit_hsa_id: str | None,
        opens_on: date,
        due: date,
        description: str,
    ) -> TaskDecision:
        return TaskDecision(
            key=self.key(task_type, occasion),
            task_type=task_type,
            occasion=occasion,
            patient=self.state.patient,
            focus=focus,
            owner=owner,
            unit_hsa_id=unit_hsa_id,
            opens_on=opens_on,
            due=due,
            due_at=self.rules.calendar.end_of_day(due),
            business_status=business_status(due, self.as_of),
            description=description,
        )

    def key(self, task_type: TaskType, occasion: str) -> str:
        return task_key(self.state.patient, task_type, occasion)

    def memberships(self) -> list[RiskMembership]:
        return self.state.risk_memberships(
            self.as_of, self.rules.params.risk_group.threshold_percent
        )


@dataclass(frozen=True, slots=True)
class _Past:
    """An occasion recovered from the state: what a Task was about, and the occasion's day."""

    focus: Focus | None
    day: date | None = None


class _Rule:
    task_type: TaskType

    def applicable(self, ctx: _Context) -> list[TaskDecision]:
        """Decisions for the occasions that apply now (some may not be open yet)."""
        raise NotImplementedError

    def history(self, ctx: _Context) -> dict[str, _Past]:
        """Keys of the occasions the state shows ever happened, with what they were about."""
        raise NotImplementedError

    def close(self, past: _Past, ctx: _Context) -> Closure:
        """Why a Task of this rule that no longer applies ends."""
        raise NotImplementedError


def _establish_occasion(unit_hsa_id: str, start: date) -> str:
    return f"{unit_hsa_id}|{start.isoformat()}"


class _EstablishPlan(_Rule):
    task_type = TaskType.ESTABLISH_PLAN

    def applicable(self, ctx: _Context) -> list[TaskDecision]:
        if ctx.state.active_plans(ctx.as_of):
            return []
        last_end = ctx.state.last_plan_end(ctx.as_of)
        decisions = []
        for m in ctx.memberships():
            start = max(m.since, last_end) if last_end else m.since
            decisions.append(
                ctx.decision(
                    self.task_type,
                    _establish_occasion(m.unit_hsa_id, start),
                    focus=RiskFocus(m.unit_hsa_id, m.run_date),
                    owner=_owner(ctx.state.draft_plans(ctx.as_of), m.unit_hsa_id, ctx.rules),
                    unit_hsa_id=m.unit_hsa_id,
                    opens_on=start,
                    due=start + timedelta(days=ctx.rules.params.establish_plan.due_days),
                    description=(
                        "Upprätta SIP eller patientkontrakt: patienten ingår i riskgruppen "
                        f"(Prea60-körning {m.run_date.isoformat()}) och har ingen aktiv plan."
                    ),
                )
            )
        return decisions

    def history(self, ctx: _Context) -> dict[str, _Past]:
        ends = {end for p in ctx.state.plans if (end := p.ended_on(ctx.as_of)) is not None}
        past = {}
        for entry in ctx.state.risk_entries:
            for start in ends | {entry.run_date}:
                focus = RiskFocus(entry.unit_hsa_id, entry.run_date)
                key = ctx.key(self.task_type, _establish_occasion(entry.unit_hsa_id, start))
                past[key] = _Past(focus, start)
        return past

    def close(self, past: _Past, ctx: _Context) -> Closure:
        active = ctx.state.active_plans(ctx.as_of)
        if active:
            plan = active[0]
            return Closure(
                Outcome.COMPLETED, f"Plan upprättad ({_KIND_TEXT[plan.kind]} {plan.key})"
            )
        units = {m.unit_hsa_id for m in ctx.memberships()}
        if isinstance(past.focus, RiskFocus):
            units &= {past.focus.unit_hsa_id}
        if units:  # still in the group: the need got a new occasion (a new streak, a plan ended)
            return Closure(Outcome.CANCELLED, "Ersatt av en ny uppgift om att upprätta plan")
        return Closure(Outcome.CANCELLED, _NO_LONGER_IN_GROUP)


def _follow_up_occasion(latest: date, since: date) -> str:
    # The risk-group episode is part of it: back in the group after leaving, a new Task.
    return f"{latest.isoformat()}|{since.isoformat()}"


class _FollowUp(_Rule):
    task_type = TaskType.FOLLOW_UP

    def applicable(self, ctx: _Context) -> list[TaskDecision]:
        due = ctx.rules.follow_up_due(ctx.state, ctx.as_of)
        latest = ctx.state.latest_follow_up(ctx.as_of)
        memberships = ctx.memberships()
        if due is None or latest is None or not memberships:
            return []
        since = min(m.since for m in memberships)
        active = ctx.state.active_plans(ctx.as_of)
        # Focus on the plan the latest follow-up concerns, when it is an active one.
        plan = next((p for p in active if p.key == latest.plan_key), active[0])
        due_soon = timedelta(days=ctx.rules.params.follow_up.due_soon_days)
        return [
            ctx.decision(
                self.task_type,
                _follow_up_occasion(latest.date, since),
                focus=PlanFocus(plan.key),
                owner=_owner([plan, *active], plan.unit_hsa_id, ctx.rules),
                unit_hsa_id=plan.unit_hsa_id,
                opens_on=max(latest.date, due - due_soon),
                due=due,
                description=(
                    f"Följ upp {_KIND_TEXT[plan.kind]}: senaste uppföljning "
                    f"{latest.date.isoformat()} ({latest.what}); "
                    f"ska följas upp senast {due.isoformat()}."
                ),
            )
        ]

    def history(self, ctx: _Context) -> dict[str, _Past]:
        days = {e.date for e in ctx.state.events if e.code.is_follow_up}
        for plan in ctx.state.plans:
            days.add(plan.created)
            if (version_day := plan.new_version_on()) is not None:
                days.add(version_day)
        starts = {e.run_date for e in ctx.state.risk_entries}
        return {
            ctx.key(self.task_type, _follow_up_occasion(day, since)): _Past(None, day)
            for day in days
            for since in starts
        }

    def close(self, past: _Past, ctx: _Context) -> Closure:
        latest = ctx.state.latest_follow_up(ctx.as_of)
        if latest is not None and past.day is not None and latest.date > past.day:
            return Closure(Outcome.COMPLETED, f"Uppföljd {latest.date.isoformat()} ({latest.what})")
        if not ctx.state.active_plans(ctx.as_of):
            return Closure(Outcome.CANCELLED, _NO_ACTIVE_PLAN)
        if not ctx.memberships():
            return Closure(Outcome.CANCELLED, _NO_LONGER_IN_GROUP)
        if past.day is None and latest is not None:  # an occasion we cannot see: it moved on
            return Closure(Outcome.COMPLETED, f"Uppföljd {latest.date.isoformat()} ({latest.what})")
        return Closure(Outcome.CANCELLED, _CHANGED)


class _SipCall(_Rule):
    task_type = TaskType.SIP_CALL

    def applicable(self, ctx: _Context) -> list[TaskDecision]:
        decisions = []
        for notice in ctx.state.notices:
            day = ctx.rules.notice_day(notice)
            if not notice.needs_sip or day > ctx.as_of:
                continue
            if ctx.state.sip_call_on_or_after(day, ctx.as_of) is not None:
                continue
            due = ctx.rules.notice_deadline(notice).date()
            unit = ctx.state.home_unit(ctx.as_of)
            plans = [*ctx.state.active_plans(ctx.as_of), *ctx.state.draft_plans(ctx.as_of)]
            decisions.append(
                ctx.decision(
                    self.task_type,
                    notice.message_id,
                    focus=NoticeFocus(notice.message_id),
                    owner=_owner(plans, unit, ctx.rules),
                    unit_hsa_id=unit,
                    opens_on=day,
                    due=due,
                    description=(
                        f"Kalla till SIP: utskrivningsklar {day.isoformat()} med behov av insatser "
                        f"från både kommun och region; kallelse senast {due.isoformat()}."
                    ),
                )
            )
        return decisions

    def history(self, ctx: _Context) -> dict[str, _Past]:
        return {
            ctx.key(self.task_type, n.message_id): _Past(NoticeFocus(n.message_id))
            for n in ctx.state.notices
        }

    def close(self, past: _Past, ctx: _Context) -> Closure:
        notice = (
            ctx.state.notice(past.focus.message_id) if isinstance(past.focus, NoticeFocus) else None
        )
        if notice is None:
            return Closure(Outcome.CANCELLED, "Utskrivningsmeddelandet finns inte längre")
        call = ctx.state.sip_call_on_or_after(ctx.rules.notice_day(notice), ctx.as_of)
        if call is not None:
            return Closure(
                Outcome.COMPLETED, f"Kallelse till SIP registrerad {call.date.isoformat()}"
            )
        if not notice.needs_sip:
            return Closure(
                Outcome.CANCELLED,
                "Meddelandet anger inte längre behov av insatser från både kommun och region",
            )
        return Closure(Outcome.CANCELLED, _CHANGED)


def _renew_occasion(plan_key: str, valid_until: date) -> str:
    return f"{plan_key}|{valid_until.isoformat()}"


class _RenewPlan(_Rule):
    task_type = TaskType.RENEW_PLAN

    def applicable(self, ctx: _Context) -> list[TaskDecision]:
        decisions = []
        for plan in ctx.state.active_plans(ctx.as_of):
            if plan.valid_until is None or ctx.as_of <= plan.valid_until:
                continue
            due = plan.valid_until + timedelta(days=ctx.rules.params.renew_plan.due_days)
            decisions.append(
                ctx.decision(
                    self.task_type,
                    _renew_occasion(plan.key, plan.valid_until),
                    focus=PlanFocus(plan.key),
                    owner=_owner([plan], plan.unit_hsa_id, ctx.rules),
                    unit_hsa_id=plan.unit_hsa_id,
                    opens_on=plan.valid_until + timedelta(days=1),
                    due=due,
                    description=(
                        f"Förnya {_KIND_TEXT[plan.kind]}: giltig till "
                        f"{plan.valid_until.isoformat()}; förnyas senast {due.isoformat()}."
                    ),
                )
            )
        return decisions

    def history(self, ctx: _Context) -> dict[str, _Past]:
        return {
            ctx.key(self.task_type, _renew_occasion(p.key, p.valid_until)): _Past(
                PlanFocus(p.key), p.valid_until
            )
            for p in ctx.state.plans
            if p.valid_until is not None
        }

    def close(self, past: _Past, ctx: _Context) -> Closure:
        if not isinstance(past.focus, PlanFocus):  # an earlier valid_until, and no focus given
            return Closure(Outcome.CANCELLED, _CHANGED)
        plan = ctx.state.plan(past.focus.plan_key)
        if plan is None:
            return Closure(Outcome.CANCELLED, "Planen finns inte längre")
        if not plan.is_active(ctx.as_of):
            return Closure(
                Outcome.CANCELLED,
                f"Planen är inte längre aktiv ({plan.status.swedish})",
            )
        # Active and no longer this occasion: valid_until was moved (or removed).
        until = plan.valid_until.isoformat() if plan.valid_until else "tills vidare"
        return Closure(Outcome.COMPLETED, f"Planen har förnyats (giltig till {until})")


_RULES: dict[TaskType, _Rule] = {
    rule.task_type: rule for rule in (_EstablishPlan(), _FollowUp(), _SipCall(), _RenewPlan())
}
_ORDER = {task_type: index for index, task_type in enumerate(_RULES)}


def _sorted(decisions: Iterable[TaskDecision]) -> list[TaskDecision]:
    return sorted(decisions, key=lambda d: (_ORDER[d.task_type], d.due, d.key))


def applicable(state: PatientState, as_of: date, rules: RuleSet) -> list[TaskDecision]:
    """Every Task whose occasion applies on `as_of`, including follow-ups not open yet."""
    ctx = _Context(state, as_of, rules)
    return _sorted(d for rule in _RULES.values() for d in rule.applicable(ctx))


def decide(state: PatientState, as_of: date, rules: RuleSet) -> list[TaskDecision]:
    """The Tasks the world should have open for the patient on `as_of`."""
    return [d for d in applicable(state, as_of, rules) if d.opens_on <= as_of]


def classify(task: OpenTask, state: PatientState, as_of: date, rules: RuleSet) -> Closure | None:
    """How an open Task should end on `as_of`, or None if its occasion still applies."""
    ctx = _Context(state, as_of, rules)
    if any(d.key == task.key for d in _RULES[task.task_type].applicable(ctx)):
        return None
    return _closure(task, ctx)


def _closure(task: OpenTask, ctx: _Context) -> Closure:
    rule = _RULES[task.task_type]
    # The state's history names the occasion behind the key; else trust the Task's own focus.
    return rule.close(rule.history(ctx).get(task.key) or _Past(task.focus), ctx)


def _changes(task: OpenTask, decision: TaskDecision) -> tuple[str, ...]:
    changed = []
    if task.business_status != decision.business_status:
        changed.append("business_status")
    if task.due != decision.due:
        changed.append("due")
    if task.owner != decision.owner:
        changed.append("owner")
    if task.focus is not None and task.focus != decision.focus:
        changed.append("focus")
    if task.reason_in_focus:
        changed.append("reason")
    return tuple(changed)


def reconcile_plan(
    open_tasks: Iterable[OpenTask],
    state: PatientState,
    as_of: date,
    rules: RuleSet,
    closed_keys: Collection[str] = (),
) -> list[Action]:
    """What to do with the patient's Tasks so that what `decide` wants is open.

    `open_tasks` are the patient's open Tasks of our codes on the server; `closed_keys` the keys
    of its Tasks that are completed or cancelled. A closed occasion is never opened again: the
    adapter closes a Task only when its occasion has passed (a later need has a new occasion),
    so a wanted key that is closed was closed by a person, and that decision stands.
    Applying the actions and calling again (with the closed keys added) gives no actions.
    """
    ctx = _Context(state, as_of, rules)
    wanted = {d.key: d for d in applicable(state, as_of, rules)}
    actions: list[Action] = []
    open_keys = set()
    for task in sorted(open_tasks, key=lambda t: t.key):
        open_keys.add(task.key)
        decision = wanted.get(task.key)
        if decision is not None:
            changes = _changes(task, decision)
            if changes:
                actions.append(
                    Action(ActionKind.UPDATE, task.key, task.task_type, decision, changes=changes)
                )
            continue
        closure = _closure(task, ctx)
        kind = ActionKind.COMPLETE if closure.outcome is Outcome.COMPLETED else ActionKind.CANCEL
        actions.append(Action(kind, task.key, task.task_type, reason=closure.reason))
    known = open_keys | set(closed_keys)
    for decision in wanted.values():
        if decision.opens_on <= as_of and decision.key not in known:
            actions.append(Action(ActionKind.CREATE, decision.key, decision.task_type, decision))
    return actions


def apply_actions(open_tasks: Iterable[OpenTask], actions: Iterable[Action]) -> list[OpenTask]:
    """The open Tasks after `actions`: what the reconciliation does, without a server."""
    tasks = {t.key: t for t in open_tasks}
    for action in actions:
        if action.decision is not None:  # create or update
            tasks[action.key] = OpenTask.of(action.decision)
        else:
            tasks.pop(action.key, None)
    return sorted(tasks.values(), key=lambda t: t.key)
