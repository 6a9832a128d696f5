"""The sections of "Min plan" in reading order, shared by the page and the PDF so both say the
same thing in the same words."""

from __future__ import annotations

from dataclasses import dataclass

from adapter.minplan.view import Doing, MinPlan

NOTHING = "Inget planerat här."


@dataclass(frozen=True, slots=True)
class Section:
    key: str  # an HTML id
    heading: str
    lines: tuple[str, ...]


def _day(value: object) -> str:
    return str(value) if value else ""


def _doing(items: tuple[Doing, ...], section_who: str | None = None) -> tuple[str, ...]:
    """Each action, with who does it unless the section's heading already says so."""
    lines = (d.text + (f" – {d.who}" if d.who and d.who != section_who else "") for d in items)
    return tuple(lines) or (NOTHING,)


def sections(plan: MinPlan) -> tuple[Section, ...]:
    contacts = tuple(
        f"{c.name}, {c.role}" + (f". Du når hen via {c.organization}." if c.organization else ".")
        for c in plan.contacts
    ) or ("Ingen fast vårdkontakt är utsedd ännu. Fråga din vårdcentral.",)
    visit = plan.next_visit
    next_visit = (
        (
            f"{visit.day.isoformat()}: {visit.text}",
            *(f"Sedan {v.day.isoformat()}: {v.text}" for v in plan.later_visits),
        )
        if visit
        else ("Ingen ny tid är bokad. Din fasta vårdkontakt hör av sig.",)
    )
    goals = tuple(f"Mitt mål: {g}" for g in plan.my_goals) + tuple(
        f"Gemensamt mål: {g}" for g in plan.shared_goals
    )
    result = [
        Section(
            "viktigt",
            "Det här är viktigt för mig",
            (plan.what_matters or "Inte ifyllt ännu.",),
        ),
    ]
    if goals:
        result.append(Section("mal", "Mina mål", goals))
    result += [
        Section("jag", "Vad jag gör", _doing(plan.i_do, "Patienten")),
        Section("varden", "Vad vården gör", _doing(plan.care_does)),
        Section("kommunen", "Vad kommunen gör", _doing(plan.municipality_does)),
    ]
    if plan.relatives_do:
        result.append(
            Section(
                "narstaende", "Vad mina närstående gör", _doing(plan.relatives_do, "Närstående")
            )
        )
    result += [
        Section("kontakt", "Min fasta vårdkontakt", contacts),
        Section("tid", "Nästa tid", next_visit),
    ]
    return tuple(result)


def footer(plan: MinPlan) -> str:
    parts = []
    if plan.updated:
        parts.append(f"Planen ändrades senast {_day(plan.updated)}")
    if plan.valid_until:
        parts.append(f"den gäller till {_day(plan.valid_until)}")
    if plan.overall_responsibility:
        parts.append(f"{plan.overall_responsibility.lower()} har det övergripande ansvaret")
    return (", ".join(parts) + ".").capitalize() if parts else ""
