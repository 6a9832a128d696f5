"""Walks the listed population once, patient by patient, writing every file as it goes.

Deterministic: one `random.Random(seed)` drives everything, the default period is fixed, and
nothing reads the clock, so the same arguments give byte-identical files. Memory holds one
patient's story at a time (plus the set of personnummer handed out, to keep them distinct).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from adapter.synth import catalog, writers
from adapter.synth.calendar import mondays
from adapter.synth.people import NO_DASH_SHARE, PersonFactory, UnitStaff
from adapter.synth.risk import RISK_THRESHOLD, RiskModel, Trajectory
from adapter.synth.story import ListedPatient, Region, Story, patient_story
from adapter.synth.writers import CsvSink, JsonLinesSink

DEFAULT_END = date(2024, 12, 31)
DEFAULT_UNITS = 6
DEFAULT_RISK_SHARE = 0.04
DEFAULT_MIN_LISTED = 10.0  # Diver's export lists patients from this risk up
MAX_RUNS = 262  # five years of Mondays: every run's file stays open while patients are walked
GP_SHARE = 0.9  # patients with a fast läkarkontakt


class SynthError(ValueError):
    """Arguments that cannot make a data set; the message is for the user (Swedish)."""


@dataclass(frozen=True, slots=True)
class SynthConfig:
    patients: int
    seed: int = 1
    units: int = DEFAULT_UNITS
    start: date | None = None  # default: one year up to `end`
    end: date = DEFAULT_END
    risk_share: float = DEFAULT_RISK_SHARE
    min_listed: float = DEFAULT_MIN_LISTED

    @property
    def first_day(self) -> date:
        """`start`, or the day after the same date a year before `end` (2024-01-01 by default)."""
        if self.start:
            return self.start
        day = min(self.end.day, 28) if (self.end.month, self.end.day) == (2, 29) else self.end.day
        return self.end.replace(year=self.end.year - 1, day=day) + timedelta(days=1)


@dataclass(slots=True)
class SynthSummary:
    out: Path
    patients: int
    units: int
    runs: list[date]
    prea60_files: int = 0
    prea60_rows: int = 0
    plan_lines: int = 0
    plans: int = 0
    events: int = 0
    notices: int = 0
    notices_needing_sip: int = 0
    risk_group: int = 0  # in the newest run
    risk_group_ever: int = 0
    files: list[str] = field(default_factory=list)

    def count(self, trajectory: Trajectory, story: Story, last_run: int) -> None:
        if trajectory.in_group:
            self.risk_group_ever += 1
            self.risk_group += trajectory.in_group[-1] == last_run
        self.plans += len({line["plan_id"] for line in story.plan_lines})
        self.notices_needing_sip += sum(n.needs_kommun and n.needs_region for n in story.notices)


def _check(config: SynthConfig, runs: list[date]) -> None:
    if config.patients < 1:
        raise SynthError("--patients måste vara minst 1")
    if not 1 <= config.units <= len(catalog.UNITS):
        raise SynthError(f"--units måste vara mellan 1 och {len(catalog.UNITS)}")
    if config.first_day > config.end:
        raise SynthError("--start måste vara före --end")
    if not 0 < config.risk_share < 0.5:
        raise SynthError("--risk-share måste vara större än 0 och mindre än 0,5")
    if not 0.1 <= config.min_listed <= RISK_THRESHOLD:
        raise SynthError(f"--min-risk måste vara mellan 0,1 och {RISK_THRESHOLD:g} %")
    if not runs:
        raise SynthError("perioden innehåller ingen måndag, alltså ingen Prea60-körning")
    if len(runs) > MAX_RUNS:
        raise SynthError(f"perioden är för lång: högst {MAX_RUNS} veckor")


def _split(total: int, weights: list[float]) -> list[int]:
    """Largest-remainder split of `total` patients over units by weight."""
    exact = [total * w / sum(weights) for w in weights]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(exact)), key=lambda i: (counts[i] - exact[i], i))
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


@dataclass(frozen=True, slots=True)
class _RunFiles:
    """One export's run files: a sink per run, and the run dates as that export writes them."""

    sinks: list[CsvSink]
    days: list[str]
    format: writers.CsvFormat

    @classmethod
    def open(
        cls, out: Path, runs: list[date], fmt: writers.CsvFormat, tag: str | None
    ) -> _RunFiles:
        sinks: list[CsvSink] = []
        try:
            for run in runs:
                path = out / writers.prea60_name(run, tag)
                sinks.append(CsvSink(path, fmt, writers.PREA60_HEADER))
        except BaseException:
            for sink in sinks:
                sink.close()
            raise
        return cls(sinks, [fmt.day(run) for run in runs], fmt)

    def write(self, pnr: str, patient: ListedPatient, trajectory: Trajectory) -> None:
        unit = patient.staff.unit
        gp = patient.doctor.hsa_id if patient.doctor else None
        name = patient.person.listed_name
        for k, risk in trajectory.listed:
            row = (pnr, name, writers.decimal_comma(risk), self.days[k], unit.hsa_id, unit.name)
            self.sinks[k].write((*row, gp or ""))


class _Output:
    """Every file of one data set, open while the patients are walked."""

    def __init__(self, out: Path, units: tuple[catalog.UnitInfo, ...], runs: list[date]) -> None:
        self.sinks: list[CsvSink | JsonLinesSink] = []
        self.prea60: dict[str, _RunFiles] = {}  # by unit HSA-id
        self.prea60_sinks: list[CsvSink] = []
        try:
            diver: _RunFiles | None = None
            for unit in units:
                if unit.own_export:
                    files = self._add(
                        _RunFiles.open(out, runs, writers.OWN_EXPORT, unit.own_export)
                    )
                else:
                    diver = diver or self._add(_RunFiles.open(out, runs, writers.DIVER, None))
                    files = diver
                self.prea60[unit.hsa_id] = files
            self.plans = JsonLinesSink(out / writers.PLANS_FILE)
            self.sinks.append(self.plans)
            self.events = CsvSink(out / writers.EVENTS_FILE, writers.EVENTS, writers.EVENTS_HEADER)
            self.sinks.append(self.events)
            header = writers.DISCHARGES_HEADER
            self.notices = CsvSink(out / writers.DISCHARGES_FILE, writers.DISCHARGES, header)
            self.sinks.append(self.notices)
        except BaseException:
            self.close()
            raise

    def _add(self, files: _RunFiles) -> _RunFiles:
        self.prea60_sinks.extend(files.sinks)
        self.sinks.extend(files.sinks)
        return files

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()

    def write(
        self, rng: random.Random, patient: ListedPatient, trajectory: Trajectory, story: Story
    ) -> None:
        """The patient's Prea60 rows, then the story's plans, events and notices."""
        person, unit_hsa = patient.person, patient.staff.unit.hsa_id
        if trajectory.listed:
            run_files = self.prea60[unit_hsa]
            dash = run_files.format.dashed_ids and rng.random() >= NO_DASH_SHARE
            run_files.write(person.written(dash), patient, trajectory)
        for line in story.plan_lines:
            self.plans.write(line)
        if story.events:
            pnr = person.written(rng.random() >= NO_DASH_SHARE)
            for e in story.events:
                row = (pnr, e.day.isoformat(), e.code, unit_hsa, e.contact or "", e.plan_ref or "")
                self.events.write(row)
        for n in story.notices:
            self.notices.write(
                (
                    n.message_id,
                    person.written(),
                    n.ready_at.strftime("%Y-%m-%d %H:%M"),
                    n.hospital,
                    n.ward,
                    "Ja" if n.needs_kommun else "Nej",
                    "Ja" if n.needs_region else "Nej",
                    n.consent,
                )
            )


def _age(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def generate(config: SynthConfig, out: Path) -> SynthSummary:
    """Write one data set into `out` (created if missing; files of the same name replaced)."""
    start, end = config.first_day, config.end
    runs = mondays(start, end) if start <= end else []
    _check(config, runs)
    model = RiskModel(config.risk_share, config.min_listed)
    rng = random.Random(config.seed)  # noqa: S311 -- synthetic test data, not security
    units = catalog.UNITS[: config.units]
    staff = [UnitStaff.make(rng, unit) for unit in units]
    region = Region(start, end, runs, config.seed)
    factory = PersonFactory(rng, end)
    summary = SynthSummary(out, config.patients, config.units, runs)

    out.mkdir(parents=True, exist_ok=True)
    output = _Output(out, units, runs)
    try:
        counts = _split(config.patients, [u.weight for u in units])
        for unit_staff, count in zip(staff, counts, strict=True):
            for _ in range(count):
                person = factory.make()
                doctor = rng.choice(unit_staff.doctors) if rng.random() < GP_SHARE else None
                patient = ListedPatient(person, unit_staff, doctor, _age(person.birth, end))
                trajectory = model.trajectory(rng, patient.age, len(runs))
                story = patient_story(rng, region, patient, trajectory)
                output.write(rng, patient, trajectory, story)
                summary.count(trajectory, story, last_run=len(runs) - 1)
    finally:
        output.close()

    summary.prea60_files = len(output.prea60_sinks)
    summary.prea60_rows = sum(sink.rows for sink in output.prea60_sinks)
    summary.plan_lines = output.plans.rows
    summary.events = output.events.rows
    summary.notices = output.notices.rows
    summary.files = sorted(sink.path.name for sink in output.sinks)
    return summary
