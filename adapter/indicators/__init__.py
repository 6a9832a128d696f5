"""Indicators per listing unit and period, as FHIR MeasureReports.

    compute   pure: patient states → numerators, denominators, subject lists (IndicatorResult);
              `IndicatorTally` counts them chunk by chunk
    reports   pure: results → summary + subject-list MeasureReports and their Lists; read back
    store     server: load the states chunk by chunk (adapter.followup.load), write the reports,
              the weekly snapshot (`weekly_snapshot`, run by adapter/scheduler.py), read them back
    trend     pure: stored weekly snapshots → a trend per unit, with the targets of mappings/
    chart     the trend as PNG and SVG (matplotlib, Agg canvas)
    registry  the registry feed: ONE transaction to SIP_FHIR_REGISTRY_BASE_URL, or bulk NDJSON
    measures  profiles/Measure-*.json: the definitions and their Swedish titles
    present   JSON, CSV and tables for `sip-fhir indicators` / `sip-fhir report`

Decisions:
- A share is a snapshot on the period's last day, a count covers the period. Without --period,
  the period is the week (7 days) ending on --as-of: the same as the weekly snapshot, so a manual
  run and the scheduled one write the same resources.
- Both report types are kept on our server under business identifiers
  `<indicator>:<unit>:<start>/<end>` (summary) and `...:subject-list`, with Lists
  `...:<population>`: a re-run updates in place, and unchanged content gets no new version (no
  `date` element). List entries reference the Patients by the ids the loader resolved; no
  identifier value or URL the adapter writes carries a personnummer.
- A subject-list report's count must equal its List's size (HAPI's validator checks it), so a
  List names a patient once per counted item (per KVÅ event, per discharge notice).
- A proportion's score is the FHIR 0..1 decimal (4 decimals = the percent's 2); an empty
  denominator has no score: data-absent-reason "not-a-number".
- The registry gets the summary reports only (and, with --with-measures, the Measures): no
  patient lists, so its copy needs none of our Patients and holds no personal data. Contained
  Lists were the alternative; they would either point at Patients the registry does not have
  (HAPI refuses dangling references) or carry personnummer.
- Units are found by HSA-id through the SearchParameter `unit` of profiles/ (MeasureReport
  reporter, Procedure performer), since the units are logical references.
"""
