"""CarePlan.note: the plan's content as Swedish plain text (Inera's `note`, GetCarePlans content).

NPÖ and 1177 Journal show a care plan as its title and its content text; the structured
elements (Goal, activity, CareTeam) are for machines. The text is built from the plan alone, the
same plan always giving the same text.
"""

from __future__ import annotations

from adapter.domain import Plan, PlanKind
from adapter.mapping.codes import Mappings

_KIND = {
    PlanKind.SIP: "Samordnad individuell plan (SIP)",
    PlanKind.PATIENTKONTRAKT: "Patientkontrakt",
}


def _responsible(plan_action_responsible: str, role: str | None, mappings: Mappings) -> str:
    who = mappings.responsible.display(plan_action_responsible) or plan_action_responsible
    if role:
        return f"{mappings.participant_role.display(role) or role} ({who.lower()})"
    return who


def plan_note(plan: Plan, mappings: Mappings) -> str:
    lines = [f"{_KIND[plan.kind]}: {plan.title}"]
    if plan.what_matters:
        lines.append(f"Det som är viktigt för patienten: {plan.what_matters}")
    if plan.goals:
        lines.append("Mål:")
        for goal in plan.goals:
            due = f" (senast {goal.due.isoformat()})" if goal.due else ""
            lines.append(f"- {goal.text}{due}")
    if plan.actions:
        lines.append("Åtgärder:")
        for action in plan.actions:
            who = _responsible(action.responsible, action.role, mappings)
            lines.append(f"- {action.text} – ansvarig: {who}")
    if plan.next_follow_up:
        lines.append(f"Nästa uppföljning: {plan.next_follow_up.isoformat()}")
    if plan.agreed_appointments:
        lines.append("Överenskomna tider:")
        for appointment in plan.agreed_appointments:
            lines.append(f"- {appointment.date.isoformat()} med {appointment.with_whom}")
    return "\n".join(lines)
