"""One place per fact: canonical URLs, code systems, identifier systems, profiles, Task types.

Everything the adapter writes names its systems from here; nothing else spells a URL.
"""

from __future__ import annotations

from enum import StrEnum

# The project's canonical base: profiles, code systems and identifier systems live below it.
CANONICAL_BASE = "https://sip-fhir.se/fhir"

# --- External identifier and code systems (HL7 Sweden base, Inera, Socialstyrelsen) ---
PERSONNUMMER = "http://electronichealth.se/identifier/personnummer"
SAMORDNINGSNUMMER = "http://electronichealth.se/identifier/samordningsnummer"
HSA_ID = "urn:oid:1.2.752.29.4.19"
KVA = "urn:oid:1.2.752.116.1.3.2.1.4"
INERA_CAREPLAN_TYPE = "https://fhir.inera.se/CodeSystem/typeofcareplan-cs"
# kv_typ_av_fast_kontakt: Coding.system is the canonical URL (as Inera's CareTeam IG writes it);
# the OID is only the code system's identifier, but data written before 2026-12 carries it.
INERA_FAST_KONTAKT = (
    "https://terminologitjansten.inera.se/inera-kodverksforvaltning/kodverk/kv_typ_av_fast_kontakt"
)
INERA_FAST_KONTAKT_OID = "urn:oid:1.2.752.129.5.1.69"
SNOMED = "http://snomed.info/sct"
SNOMED_HOSPITAL_ADMISSION = "32485007"
V3_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"  # Encounter.class (IMP)
MEASURE_POPULATION = "http://terminology.hl7.org/CodeSystem/measure-population"
LIST_EMPTY_REASON = "http://terminology.hl7.org/CodeSystem/list-empty-reason"
MEASURE_IMPROVEMENT = "http://terminology.hl7.org/CodeSystem/measure-improvement-notation"
EXT_DATA_ABSENT_REASON = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
PROVENANCE_PARTICIPANT_TYPE = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
# Inera EHDS-TK PDL-001: a record not approved for the patient gets a security label "not for the
# patient". Inera writes NOPATIENT, which v3-ActCode lacks (HAPI: unknown code, an error); the code
# with that meaning is NOPAT ("no disclosure to patient, family or caregivers without attending
# provider's authorization").
CODE_NOPAT = "NOPAT"  # V3_ACT_CODE

# --- Inera EHDS-TK (canonical https://fhir.inera.se/ig/ehds-tk; see mappings/README.md) ---
INERA_IG = "https://fhir.inera.se/ig/ehds-tk"
INERA_EXT_APPROVED_FOR_PATIENT = f"{INERA_IG}/StructureDefinition/approved-for-patient"
INERA_PROFILE_CAREPLAN = f"{INERA_IG}/StructureDefinition/inera-ehds-care-plan"
INERA_PROFILE_PATIENT = f"{INERA_IG}/StructureDefinition/inera-ehds-patient"
INERA_PROFILE_PROVENANCE = f"{INERA_IG}/StructureDefinition/inera-ehds-provenance"

# Other names of a code system that data (ours of old, or another system's) uses in Coding.system.
SYSTEM_ALIASES = {INERA_FAST_KONTAKT_OID: INERA_FAST_KONTAKT}


def canonical_system(system: str) -> str:
    """The Coding.system the adapter writes for `system` (an alias such as an OID → its URL)."""
    return SYSTEM_ALIASES.get(system, system)


def _cs(name: str) -> str:
    return f"{CANONICAL_BASE}/CodeSystem/{name}"


def _vs(name: str) -> str:
    return f"{CANONICAL_BASE}/ValueSet/{name}"


def _sd(name: str) -> str:
    return f"{CANONICAL_BASE}/StructureDefinition/{name}"


def _ident(name: str) -> str:
    return f"{CANONICAL_BASE}/identifier/{name}"


# --- Project code systems ---
CS_PLAN_KIND = _cs("plan-kind")  # patientkontrakt (SIP and vårdplan use Inera's codes)
CS_PARTICIPANT_ROLE = _cs("participant-role")  # SIP roles that Inera's fast-kontakt codes lack
CS_RESPONSIBLE = _cs("responsible")  # region | kommun | patient | narstaende
CS_LOCAL_ACTIVITY = _cs("local-activity")  # UPPF, SIPKALL (non-KVÅ event codes)
CS_TASK_TYPE = _cs("task-type")
CS_TASK_BUSINESS_STATUS = _cs("task-business-status")  # due | overdue
CS_RISK_MODEL = _cs("risk-model")  # prea60

# --- Codes written by the mapping and read back by the follow-up engine ---
CODE_SIP = "SIP"  # INERA_CAREPLAN_TYPE
CODE_VARDPLAN = "VP"  # INERA_CAREPLAN_TYPE
CODE_PATIENTKONTRAKT = "patientkontrakt"  # CS_PLAN_KIND
CODE_PREA60 = "prea60"  # CS_RISK_MODEL
CS_INDICATOR = _cs("indicator")
CS_CONTACT_TYPE = _cs("contact-type")  # besök | telefon | video | hembesök
CS_SIP_CONSENT = _cs("sip-consent")  # ja | nej | okant
CS_PLAN_QUALITY_CRITERION = _cs("plan-quality-criterion")  # ids of mappings/plan-quality.json

# --- Project value sets ---
VS_TASK_TYPE = _vs("task-type")
VS_PARTICIPANT_ROLE = _vs("participant-role")  # Inera fast-kontakt codes + CS_PARTICIPANT_ROLE
VS_TASK_BUSINESS_STATUS = _vs("task-business-status")
VS_RESPONSIBLE = _vs("responsible")
VS_HUVUDMAN = _vs("huvudman")  # region | kommun of CS_RESPONSIBLE
VS_EVENT_CODE = _vs("event-code")  # KVÅ AU124, AU125, AW010 + CS_LOCAL_ACTIVITY
VS_SIP_KVA = _vs("sip-kva")  # KVÅ AU124, AU125
VS_CONTACT_TYPE = _vs("contact-type")
VS_SIP_CONSENT = _vs("sip-consent")
VS_INDICATOR = _vs("indicator")

# --- Business identifier systems of the resources the adapter writes ---
ID_PLAN = _ident("plan")  # value: "<source_system>:<plan_id>"
ID_GOAL = _ident("goal")  # value: "<source_system>:<plan_id>:<goal id>"
ID_CARETEAM = _ident("careteam")  # value: "<source_system>:<plan_id>"
ID_RISK_ASSESSMENT = _ident("prea60")  # value: opaque digest of unit + run date + patient
ID_PROCEDURE = _ident("event")  # value: opaque digest of the event row's content
ID_DISCHARGE = _ident("discharge-notice")  # value: Meddelande-id
ID_TASK = _ident("task")  # value: opaque digest of patient + rule + occasion
# value: "<indicator>:<unit>:<start>/<end>", ":subject-list" added for the report with patient
# lists; a patient's individual report: opaque digest of indicator + unit + period + patient
ID_MEASURE_REPORT = _ident("measure-report")
ID_SUBJECT_LIST = _ident("subject-list")  # value: "<indicator>:<unit>:<start>/<end>:<population>"

# --- Search parameters (profiles/SearchParameter-*.json) and tags of the adapter's resources ---
SP_UNIT = f"{CANONICAL_BASE}/SearchParameter/unit"  # code "unit": RiskAssessment, CarePlan, Task
SP_RISK_STATUS = f"{CANONICAL_BASE}/SearchParameter/riskassessment-status"  # code "status"
# The business identifier of each type the adapter writes (code "sip-business-id"), and HAPI's
# unique combo index over it: the server refuses a second resource with the same identifier.
SP_BUSINESS_ID = f"{CANONICAL_BASE}/SearchParameter/business-identifier"
SP_BUSINESS_ID_UNIQUE = f"{CANONICAL_BASE}/SearchParameter/business-identifier-unique"
TAG_ADAPTER = f"{CANONICAL_BASE}/adapter"  # meta.tag system: e.g. the follow-up Subscriptions
# Provenance has no identifier element: its business key is a meta.tag of this system (the
# conditional write searches `_tag`, see mapping/identifiers.py). value: the CarePlan's key.
ID_PROVENANCE = _ident("provenance")
# meta.source of what the mapping writes: "<SOURCE_BASE>/<source system>" (see mappings/README.md)
SOURCE_BASE = f"{CANONICAL_BASE}/source"

# --- Profiles (meta.profile of every resource the adapter writes) ---
PROFILE_PATIENT = _sd("sip-patient")
PROFILE_SIP_CAREPLAN = _sd("sip-careplan")
PROFILE_PATIENTKONTRAKT_CAREPLAN = _sd("patientkontrakt-careplan")
PROFILE_GOAL = _sd("sip-goal")
PROFILE_CARETEAM = _sd("sip-careteam")
PROFILE_RISK_ASSESSMENT = _sd("prea60-riskassessment")
PROFILE_PROCEDURE = _sd("kva-procedure")
PROFILE_DISCHARGE = _sd("discharge-notice")
PROFILE_TASK = _sd("followup-task")
PROFILE_MEASURE_REPORT = _sd("indicator-measurereport")
PROFILE_INDIVIDUAL_REPORT = _sd("indicator-individual-measurereport")
PROFILE_SUBJECT_LIST = _sd("indicator-subject-list")
PROFILE_PROVENANCE = _sd("plan-provenance")

# --- Extensions (profiles/StructureDefinition-ext-*.json; see mappings/README.md) ---
EXT_PLAN_VERSION = _sd("ext-plan-version")  # CarePlan: version in the source system (integer)
EXT_PLAN_KIND = _sd("ext-plan-kind")  # CarePlan: CS_PLAN_KIND (outside category: Inera's binding)
EXT_PLAN_UPDATED = _sd("ext-plan-updated")  # CarePlan: date the source last changed the plan
EXT_WHAT_MATTERS = _sd("ext-what-matters")  # CarePlan: what matters to the patient
EXT_OVERALL_RESPONSIBILITY = _sd("ext-overall-responsibility")  # CarePlan (SIP): huvudman
EXT_PLAN_KVA = _sd("ext-plan-kva")  # CarePlan (SIP): KVÅ AU124 | AU125
EXT_RESPONSIBLE = _sd("ext-responsible")  # CarePlan.activity.detail: who is responsible
EXT_PERFORMER_ROLE = _sd("ext-performer-role")  # CarePlan.activity.detail: role in the plan
EXT_HUVUDMAN = _sd("ext-huvudman")  # CareTeam.participant: region | kommun
EXT_LISTING_UNIT = _sd("ext-listing-unit")  # RiskAssessment: the unit whose list it is
EXT_CONTACT_TYPE = _sd("ext-contact-type")  # Procedure: besök | telefon | video | hembesök
EXT_READY_FOR_DISCHARGE = _sd("ext-ready-for-discharge")  # Encounter: utskrivningsklar
EXT_DISCHARGE_SUPPORT = _sd("ext-discharge-support")  # Encounter: needs from kommun/region
EXT_SIP_CONSENT = _sd("ext-sip-consent")  # Encounter, CarePlan: consent to a SIP / the plan
EXT_PLAN_QUALITY = _sd("ext-plan-quality")  # CarePlan: quality score + unmet criteria
EXT_QUALITY_SUMMARY = _sd("ext-quality-summary")  # MeasureReport.group (plan-quality): statistics


class TaskType(StrEnum):
    """Codes of CS_TASK_TYPE: what a follow-up Task asks someone to do."""

    ESTABLISH_PLAN = "establish-plan"
    FOLLOW_UP = "follow-up"
    SIP_CALL = "sip-call"
    RENEW_PLAN = "renew-plan"


class TaskBusinessStatus(StrEnum):
    """Codes of CS_TASK_BUSINESS_STATUS: where an open Task stands against its due date."""

    DUE = "due"  # to do; the due date has not passed
    OVERDUE = "overdue"  # the due date has passed


def measure_url(indicator: str) -> str:
    """Canonical URL of an indicator's Measure (profiles/Measure-<indicator>.json)."""
    return f"{CANONICAL_BASE}/Measure/{indicator}"


class IndicatorCode(StrEnum):
    """Codes of CS_INDICATOR: the indicators the adapter reports as MeasureReports."""

    PLAN_COVERAGE = "plan-coverage"
    FOLLOWUP_90D = "followup-90d"
    KVA_AU124 = "kva-AU124"
    KVA_AU125 = "kva-AU125"
    KVA_AW010 = "kva-AW010"
    LUS_SIP_CALL = "lus-sip-call"
    PLAN_QUALITY = "plan-quality"


# --- The adapter's own bookkeeping on a server (sync/servercheck.py, sandbox.py) ---
ID_OUTBOX_EPOCH = _ident("outbox-epoch")  # value: random uuid per outbox and server (its marker)
EXT_OUTBOX_GENERATION = _sd("ext-outbox-generation")  # marker: writing runs counted (integer)
TAG_RUN = _cs("run-tag")  # meta.tag system of sandbox runs: code = the run tag
