""" "Min plan": the patient's own plan in plain Swedish, built from the CarePlan on the FHIR
server (with its Goals and CareTeam), as a page and as a PDF."""

from adapter.minplan.view import MinPlan, min_plan

__all__ = ["MinPlan", "min_plan"]
