"""The business identifiers the server must keep unique (test_business_identifier_rule,
test_unique_identifiers)."""

from __future__ import annotations

from adapter import canonical as c

# Every (type, business identifier system) the adapter writes with a conditional write.
WRITTEN = {
    ("Patient", c.PERSONNUMMER),
    ("Patient", c.SAMORDNINGSNUMMER),
    ("CarePlan", c.ID_PLAN),
    ("Goal", c.ID_GOAL),
    ("CareTeam", c.ID_CARETEAM),
    ("Provenance", c.ID_PROVENANCE),
    ("RiskAssessment", c.ID_RISK_ASSESSMENT),
    ("Procedure", c.ID_PROCEDURE),
    ("Encounter", c.ID_DISCHARGE),
    ("Task", c.ID_TASK),
    ("MeasureReport", c.ID_MEASURE_REPORT),
    ("List", c.ID_SUBJECT_LIST),
    ("Basic", c.ID_OUTBOX_EPOCH),
}
