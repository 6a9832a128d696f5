"""One patient's year of care: discharge notices, SIP calls, plans and their follow-ups.

Built from the patient's risk trajectory so the files agree with each other: a notice that
needs both huvudmän is usually followed by a SIPKALL (mostly in time, sometimes late), often
by a SIP at discharge (AU125); most patients who enter the risk group get a SIP (AU124) or a
patientkontrakt, followed up every 60–120 days (some fall behind), some renewed, completed
or revoked, some left past their valid_until. Nothing is dated after the period's end.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from adapter.synth import catalog
from adapter.synth.calendar import WorkingDays
from adapter.synth.people import NO_DASH_SHARE, Person, StaffMember, UnitStaff, random_name
from adapter.synth.risk import Trajectory

PLAN_COVERAGE = 0.9  # risk-group patients who get a plan at all
PREEXISTING_SHARE = 0.6  # of those already in the group at the first run
SIP_SHARE = 0.35  # of risk-group plans; the rest are patientkontrakt
SIP_CALL_SHARE = 0.85  # notices needing both huvudmän that get a SIPKALL
SIP_AFTER_CALL_SHARE = 0.65  # calls that lead to a SIP at discharge (AU125)
NEGLECTED_SHARE = 0.25  # plans whose follow-ups drift to 90–200 days apart
PLAN_REF_SHARE = 0.95  # events that name their plan
# Working days from notice to SIPKALL: most within the three-day deadline, a tail after it.
CALL_DELAYS = (0, 1, 2, 3, 4, 5, 6, 8)
CALL_DELAY_WEIGHTS = (10, 30, 20, 20, 8, 5, 4, 3)
VISIT_CONTACTS = ("besök", "telefon", "video", "hembesök")
VISIT_WEIGHTS = (40, 35, 10, 15)
MEETING_CONTACTS = ("besök", "hembesök", "video")
NOTICE_HOURS = (8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 19, 21)
NOTICE_HOUR_WEIGHTS = (6, 12, 14, 14, 10, 12, 10, 8, 5, 3, 2, 1)
HOSPITALS = tuple(sorted({u.hospital for u in catalog.UNITS}))


@dataclass(frozen=True, slots=True)
class EventRow:
    day: date
    code: str
    contact: str | None
    plan_ref: str | None


@dataclass(frozen=True, slots=True)
class NoticeRow:
    message_id: str
    ready_at: datetime  # naive, Europe/Stockholm wall time
    hospital: str
    ward: str
    needs_kommun: bool
    needs_region: bool
    consent: str  # Ja | Nej | Okänt


@dataclass(slots=True)
class Story:
    plan_lines: list[dict[str, Any]] = field(default_factory=list)
    events: list[EventRow] = field(default_factory=list)
    notices: list[NoticeRow] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ListedPatient:
    person: Person
    staff: UnitStaff
    doctor: StaffMember | None
    age: int


class Region:
    """What all stories share: the period, the calendar and the running id counters.

    The ids carry the seed (`SIP-<seed>-1`): two data sets of different seeds loaded into one
    server must not overwrite each other's plans and notices; one seed still gives the same ids.
    """

    def __init__(self, start: date, end: date, runs: list[date], seed: int = 1) -> None:
        self.start, self.end, self.runs = start, end, runs
        self.calendar = WorkingDays()
        self.awkward = self.calendar.awkward_days(start, end)
        self._seed = seed
        self._sip_ids = itertools.count(1)
        self._pk_ids = itertools.count(1001)
        self._notice_ids = itertools.count(100001)

    def next_sip_id(self) -> str:
        return f"SIP-{self._seed}-{next(self._sip_ids)}"

    def next_pk_id(self) -> str:
        return f"VP-{self._seed}-{next(self._pk_ids)}"

    def next_notice_id(self) -> str:
        return f"LC-{self._seed}-{next(self._notice_ids)}"


def _days(n: int) -> timedelta:
    return timedelta(days=n)


class _StoryBuilder:
    def __init__(self, rng: random.Random, region: Region, patient: ListedPatient) -> None:
        self.rng, self.region, self.patient = rng, region, patient
        self.story = Story()
        self.has_sip = False

    def workday(self, day: date) -> date:
        """Planned care happens on working days: move a date forward to one."""
        return self.region.calendar.add(day, 0)

    # --- events ---

    def event(self, day: date, code: str, contact: str | None, plan_ref: str | None) -> None:
        if day > self.region.end:
            return
        if any(e.day == day and e.code == code for e in self.story.events):
            return  # one registration a day: a second call the same day is the same call
        self.story.events.append(EventRow(day, code, contact, plan_ref))

    def visit_contact(self) -> str:
        return self.rng.choices(VISIT_CONTACTS, VISIT_WEIGHTS)[0]

    # --- discharge notices ---

    def notice_day(self, run: int) -> date:
        rng, region = self.rng, self.region
        day = region.runs[run] + _days(rng.randrange(7))
        if rng.random() < 0.25:  # pull some onto holidays and the days before them
            near = [d for d in region.awkward if abs((d - day).days) <= 10]
            if near:
                day = rng.choice(near)
        return min(max(day, region.start), region.end)

    def notice(self, run: int) -> None:
        rng, region, unit = self.rng, self.region, self.patient.staff.unit
        day = self.notice_day(run)
        hour = rng.choices(NOTICE_HOURS, NOTICE_HOUR_WEIGHTS)[0]
        ready_at = datetime.combine(day, time(hour, rng.randrange(0, 60, 5)))
        need = rng.random()
        needs_kommun, needs_region = need < 0.75, need < 0.45 or 0.75 <= need < 0.95
        consent = rng.choices(("Ja", "Okänt", "Nej"), (70, 22, 8))[0]
        hospital = unit.hospital if rng.random() < 0.85 else rng.choice(HOSPITALS)
        self.story.notices.append(
            NoticeRow(
                region.next_notice_id(),
                ready_at,
                hospital,
                rng.choice(catalog.WARDS),
                needs_kommun,
                needs_region,
                consent,
            )
        )
        if needs_kommun and needs_region and rng.random() < SIP_CALL_SHARE:
            delay = rng.choices(CALL_DELAYS, CALL_DELAY_WEIGHTS)[0]
            if hour >= 16:  # the notice came after office hours
                delay = max(delay, 1)
            call = region.calendar.add(day, delay)
            contact = "telefon" if rng.random() < 0.9 else None
            self.event(call, "SIPKALL", contact, None)
            wants_sip = consent != "Nej" and rng.random() < SIP_AFTER_CALL_SHARE
            if wants_sip and not self.has_sip and call <= region.end:
                meeting = self.workday(call + _days(rng.randint(3, 14)))
                self.sip("AU125", draft=call, meeting=meeting)

    # --- plans ---

    def risk_group_plan(self, first_run: int) -> None:
        rng, region = self.rng, self.region
        if rng.random() >= PLAN_COVERAGE or (self.has_sip and rng.random() < 0.7):
            return  # no plan yet, or the SIP from a discharge already covers the patient
        if first_run == 0 and rng.random() < PREEXISTING_SHARE:
            established = region.start - _days(rng.randint(14, 300))
        else:
            established = region.runs[first_run] + _days(rng.randint(3, 30))
        established = self.workday(established)
        if established > region.end:
            return
        if rng.random() < SIP_SHARE and not self.has_sip:
            draft = self.workday(established - _days(rng.randint(7, 16)))
            if rng.random() < 0.5:
                self.event(draft, "SIPKALL", "telefon", None)
            meeting = established if rng.random() < 0.9 else None  # some never meet
            self.sip("AU124", draft=draft, meeting=meeting)
        else:
            self.patientkontrakt(established)

    def sip(self, kva: str, draft: date, meeting: date | None) -> None:
        self.has_sip = True
        rng = self.rng
        plan = _PlanWriter(self, "lifecare", self.region.next_sip_id(), "sip", draft)
        responsibility = "kommun" if rng.random() < (0.5 if kva == "AU125" else 0.4) else "region"
        plan.body.update(
            title=catalog.SIP_TITLES[kva],
            kva=kva,
            unit_hsa_id=self.patient.staff.unit.hsa_id,
            what_matters=rng.choice(catalog.WHAT_MATTERS),
            overall_responsibility=responsibility,
        )
        with_relative = rng.random() < 0.6
        goals = plan.goals(meeting or draft)
        plan.body["actions"] = self.actions(
            goals, rng.randint(1, 2), rng.randint(1, 3), with_relative
        )
        plan.body["participants"] = self.sip_participants(responsibility, plan.body["actions"])
        if with_relative:
            plan.body["participants"].append(self.relative())
        plan.version("draft", draft)
        if meeting is None or meeting > self.region.end:
            plan.flush()
            return
        self.event(meeting, kva, rng.choice(MEETING_CONTACTS), plan.ref_or_none())
        validity = 365 if rng.random() < 0.5 else None
        plan.run(meeting, "AW010", validity)

    def patientkontrakt(self, established: date) -> None:
        rng = self.rng
        plan = _PlanWriter(self, "cosmic", self.region.next_pk_id(), "patientkontrakt", established)
        plan.body.update(
            title=catalog.PK_TITLE,
            unit_hsa_id=self.patient.staff.unit.hsa_id,
            what_matters=rng.choice(catalog.WHAT_MATTERS),
        )
        goals = plan.goals(established)
        plan.body["actions"] = self.actions(goals, rng.randint(1, 2), 0, False)
        participants = self.care_participants()
        if rng.random() < 0.3:
            participants.append(self.relative())
        plan.body["participants"] = participants
        plan.with_appointments = True
        plan.run(established, "UPPF", rng.choice((182, 182, 365)))

    # --- plan content ---

    def actions(
        self, goals: list[str], region_n: int, kommun_n: int, relative: bool
    ) -> list[dict[str, Any]]:
        rng = self.rng
        actions: list[dict[str, Any]] = []
        picks = [("region", region_n), ("kommun", kommun_n), ("patient", rng.randint(1, 2))]
        if relative:
            picks.append(("narstaende", 1))
        for responsible, count in picks:
            for text, role in rng.sample(catalog.ACTIONS[responsible], count):
                action: dict[str, Any] = {"text": text, "responsible": responsible}
                if role:
                    action["role"] = role
                if goals and (responsible == "patient" or rng.random() < 0.3):
                    action["goal"] = rng.choice(goals)
                actions.append(action)
        return actions

    def care_participants(self) -> list[dict[str, Any]]:
        staff, unit = self.patient.staff, self.patient.staff.unit
        nurse = self.rng.choice(staff.nurses)
        found = [_member("fast-vardkontakt", nurse, unit.name, "region")]
        if self.patient.doctor:
            found.append(_member("fast-lakarkontakt", self.patient.doctor, unit.name, "region"))
        found.append({"role": "patient", "name": self.patient.person.full_name})
        return found

    def sip_participants(
        self, responsibility: str, actions: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        rng, staff = self.rng, self.patient.staff
        found = self.care_participants()
        kommun = staff.kommun_name
        if responsibility == "region":
            lead = _member(
                "samordningsansvarig", rng.choice(staff.nurses), staff.unit.name, "region"
            )
        else:
            lead = _member("samordningsansvarig", rng.choice(staff.kommun_staff), kommun, "kommun")
        found.append(lead)
        found.append(
            _member("bistandshandlaggare", rng.choice(staff.kommun_staff), kommun, "kommun")
        )
        if rng.random() < 0.4:
            contact = rng.choice(staff.kommun_staff)
            found.append(_member("fast-omsorgskontakt", contact, kommun, "kommun"))
        kommun_roles = {a["role"] for a in actions if a["responsible"] == "kommun" and "role" in a}
        for role in sorted(kommun_roles & {"hemtjanst", "hemsjukvard", "rehab"}):
            found.append({"role": role, "organization": kommun, "huvudman": "kommun"})
        return found

    def relative(self) -> dict[str, Any]:
        rng, person = self.rng, self.patient.person
        relation = rng.choice((*catalog.RELATIONS, catalog.SPOUSE[person.sex]))
        sex = "F" if relation in ("dotter", "syster", "maka") else "M"
        if relation in ("sambo", "barnbarn"):
            sex = rng.choice("FM")
        given, family = random_name(rng, sex)
        if relation in ("make", "maka", "son", "bror") or rng.random() < 0.5:
            family = person.family
        return {"role": "narstaende", "name": f"{given} {family} ({relation})"}


def _member(role: str, who: StaffMember, organization: str, huvudman: str) -> dict[str, Any]:
    found: dict[str, Any] = {"role": role, "name": who.name}
    if who.hsa_id:
        found["hsa_id"] = who.hsa_id
    found.update(organization=organization, huvudman=huvudman)
    return found


class _PlanWriter:
    """The versions of one plan: static content plus the fields that change per version."""

    def __init__(
        self, owner: _StoryBuilder, system: str, plan_id: str, kind: str, created: date
    ) -> None:
        self.owner, self.rng = owner, owner.rng
        self.key = f"{system}:{plan_id}"
        self.head = {"source_system": system, "plan_id": plan_id}
        self.kind, self.created = kind, created
        self.body: dict[str, Any] = {}
        self.versions: list[dict[str, Any]] = []
        self.with_appointments = False
        dash = self.rng.random() >= NO_DASH_SHARE
        self.patient = owner.patient.person.written(dash)

    def ref_or_none(self) -> str | None:
        return self.key if self.rng.random() < PLAN_REF_SHARE else None

    def goals(self, start: date) -> list[str]:
        goals = []
        for n, (text, by) in enumerate(self.rng.sample(catalog.GOALS, self.rng.randint(1, 3)), 1):
            goal: dict[str, Any] = {"id": f"g{n}", "text": text}
            if self.rng.random() < 0.5:
                goal["due"] = (start + _days(self.rng.randint(90, 180))).isoformat()
            goal["expressed_by"] = by
            goals.append(goal)
        self.body["goals"] = goals
        return [g["id"] for g in goals]

    def version(
        self,
        status: str,
        updated: date,
        valid_until: date | None = None,
        next_follow_up: date | None = None,
    ) -> None:
        line: dict[str, Any] = {**self.head, "version": len(self.versions) + 1}
        line.update(kind=self.kind, patient=self.patient, status=status)
        line.update(title=self.body["title"], created=self.created.isoformat())
        line["updated"] = updated.isoformat()
        if valid_until:
            line["valid_until"] = valid_until.isoformat()
        line.update((k, v) for k, v in self.body.items() if k != "title")
        if next_follow_up:
            line["next_follow_up"] = next_follow_up.isoformat()
            if self.with_appointments:
                with_whom = self.rng.choice(catalog.APPOINTMENT_WITH)
                line["agreed_appointments"] = [
                    {"date": next_follow_up.isoformat(), "with": with_whom}
                ]
        self.versions.append(line)

    def flush(self) -> None:
        self.owner.story.plan_lines.extend(self.versions)

    def run(self, active: date, follow_up_code: str, validity: int | None) -> None:
        """Activate at `active`, then follow up until the period ends or the plan does."""
        rng, end = self.rng, self.owner.region.end
        valid_until = active + _days(validity) if validity else None
        self.version("active", active, valid_until, active + _days(rng.randint(60, 90)))
        neglected = rng.random() < NEGLECTED_SHARE
        day = active
        while True:
            gap = rng.randint(90, 200) if neglected else rng.randint(60, 120)
            day = self.owner.workday(day + _days(gap))
            if day > end:
                break
            only_new_version = rng.random() < 0.1
            if not only_new_version:
                contact = self.owner.visit_contact()
                self.owner.event(day, follow_up_code, contact, self.ref_or_none())
            fate = rng.random()
            if fate < 0.04:
                self.version("completed", day, valid_until)
                break
            if fate < 0.06:
                self.version("revoked", day, valid_until)
                break
            next_follow_up = day + _days(rng.randint(60, 90))
            if valid_until and day >= valid_until - _days(30) and rng.random() < 0.6:
                valid_until = day + _days(validity or 365)
                self.version("active", day, valid_until, next_follow_up)
            elif only_new_version or rng.random() < 0.2:
                self.version("active", day, valid_until, next_follow_up)
        self.flush()


def patient_story(
    rng: random.Random, region: Region, patient: ListedPatient, trajectory: Trajectory
) -> Story:
    builder = _StoryBuilder(rng, region, patient)
    first_in_group = trajectory.in_group[0] if trajectory.in_group else None
    for run in trajectory.admissions:
        if first_in_group is not None and first_in_group <= run:
            builder.risk_group_plan(first_in_group)
            first_in_group = None
        builder.notice(run)
    if first_in_group is not None:
        builder.risk_group_plan(first_in_group)
    builder.story.events.sort(key=lambda e: e.day)
    return builder.story
