"""The patient's verdict on the SIP meeting: an anonymous survey (a FHIR Questionnaire from
mappings/), one-time codes printed on "Min plan", QuestionnaireResponses without a subject,
and the indicators per quarter."""
