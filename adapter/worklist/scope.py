"""Inner confidentiality (PDL 4 kap.): of one patient, a caller sees what belongs to the units
granted. Pure: `scoped_view(view, scope)` is the one function every patient route and page
answers through (adapter/api/services.py `read_patient`).

What belongs to a unit:
- a plan (SIP, patientkontrakt): the CarePlan's unit, the one that made it. Another unit's plan
  is shown as `PlanElsewhere` only: unit, kind, status and dates, none of its content (title,
  what matters, goals, actions, appointments, participants, its key);
- a Task: the Task's unit (`requester`); a Task without one goes with the patient;
- history: an event by its performing unit, a plan's entries by the plan's unit;
- a Prea60 risk: the listing unit.

The patient's name, personnummer and the rules' dates for the patient as a whole (latest
follow-up, next one due) are shown to anyone who may see the patient. Who may see the patient
at all (any of its units granted) is decided before: adapter/api/deps.py `may_see`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from adapter.worklist.patient import PatientView, PlanElsewhere, PlanView


@dataclass(frozen=True, slots=True)
class UnitScope:
    """The units a caller sees patient data of; `units=None`: every unit (an admin)."""

    units: frozenset[str] | None

    def covers(self, unit: str | None) -> bool:
        """Data of `unit` (None: data of no unit in particular, which goes with the patient)."""
        return self.units is None or unit is None or unit in self.units


EVERY_UNIT = UnitScope(None)


def elsewhere(plan: PlanView) -> PlanElsewhere:
    """A plan as seen from outside its unit: that it exists, never what it says."""
    return PlanElsewhere(
        unit_hsa_id=plan.unit_hsa_id,
        kind=plan.kind,
        status=plan.status,
        active=plan.active,
        created=plan.created,
        updated=plan.updated,
        valid_until=plan.valid_until,
    )


def scoped_view(view: PatientView, scope: UnitScope) -> PatientView:
    """`view` with only what `scope` covers; other units' plans as summaries."""
    if scope.units is None:
        return view
    covered = scope.covers
    foreign_keys = {p.key for p in view.plans if not covered(p.unit_hsa_id)}
    history = (
        replace(h, plan_key=None) if h.plan_key in foreign_keys else h
        for h in view.history
        if covered(h.unit_hsa_id)
    )
    return replace(
        view,
        units=tuple(u for u in view.units if covered(u)),
        risks=tuple(r for r in view.risks if covered(r.unit_hsa_id)),
        plans=tuple(p for p in view.plans if covered(p.unit_hsa_id)),
        plans_elsewhere=(
            *view.plans_elsewhere,
            *(elsewhere(p) for p in view.plans if not covered(p.unit_hsa_id)),
        ),
        history=tuple(history),  # an own event about another unit's plan: without its key
        tasks=tuple(t for t in view.tasks if covered(t.unit_hsa_id)),
    )


def shown(view: PatientView) -> str:
    """What a view shows, for the audit log's detail (counts and units, no personal data)."""
    elsewhere_units = ",".join(sorted({p.unit_hsa_id for p in view.plans_elsewhere})) or "-"
    return (
        f"units={','.join(view.units) or '-'} plans={len(view.plans)} "
        f"plans_elsewhere={len(view.plans_elsewhere)}({elsewhere_units}) "
        f"history={len(view.history)} tasks={len(view.tasks)} risks={len(view.risks)}"
    )
