"""Hand out a code for a SIP's meeting: the staff page and `sip-fhir survey issue` alike.

The meeting date is the day the SIP was last changed (ext-plan-updated): a SIP is made or
followed up at a meeting (AU124/AU125), and the source's new version is dated that day."""

from __future__ import annotations

from datetime import date

from adapter.minplan.view import MinPlan
from adapter.survey.codes import CodeStore


class NotASip(ValueError):
    pass


def issue_for(codes: CodeStore, plan: MinPlan, patient_id: str, today: date) -> tuple[str, date]:
    """A new code for `plan`'s latest meeting; returns (code, meeting date)."""
    if not plan.is_sip or not plan.unit_hsa_id:
        raise NotASip("Enkäten gäller SIP-möten; planen är ingen SIP.")
    meeting = plan.updated or today
    return codes.issue(plan.unit_hsa_id, meeting, plan.plan_id, patient_id), meeting
