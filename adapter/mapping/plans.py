"""SIP and patientkontrakt → CarePlan + Goal(s) + CareTeam.

Every version of a plan maps to the same identifiers (ID_PLAN/ID_GOAL/ID_CARETEAM built from
`source_system:plan_id`), so a new version replaces the old one on the server. The source version
and updated date ride along in extensions: the follow-up rules count a new version of an active plan
as a follow-up.
"""

from __future__ import annotations

from urllib.parse import quote

from adapter.canonical import (
    CODE_NOPAT,
    CODE_PATIENTKONTRAKT,
    CODE_SIP,
    CODE_VARDPLAN,
    CS_PLAN_KIND,
    CS_PLAN_QUALITY_CRITERION,
    CS_SIP_CONSENT,
    EXT_HUVUDMAN,
    EXT_OVERALL_RESPONSIBILITY,
    EXT_PERFORMER_ROLE,
    EXT_PLAN_KIND,
    EXT_PLAN_KVA,
    EXT_PLAN_QUALITY,
    EXT_PLAN_UPDATED,
    EXT_PLAN_VERSION,
    EXT_RESPONSIBLE,
    EXT_SIP_CONSENT,
    EXT_WHAT_MATTERS,
    ID_CARETEAM,
    ID_GOAL,
    ID_PLAN,
    ID_PROVENANCE,
    INERA_CAREPLAN_TYPE,
    INERA_EXT_APPROVED_FOR_PATIENT,
    PROFILE_CARETEAM,
    PROFILE_GOAL,
    PROFILE_PATIENTKONTRAKT_CAREPLAN,
    PROFILE_PROVENANCE,
    PROFILE_SIP_CAREPLAN,
    PROVENANCE_PARTICIPANT_TYPE,
    SOURCE_BASE,
    V3_ACT_CODE,
)
from adapter.domain import (
    EventCode,
    ExpressedBy,
    Participant,
    ParticipantRole,
    Plan,
    PlanAction,
    PlanGoal,
    PlanKind,
    PlanStatus,
    Responsible,
)
from adapter.mapping.codes import Mappings
from adapter.mapping.discharge import CONSENT_DISPLAY
from adapter.mapping.errors import MappingError
from adapter.mapping.fhir import (
    Json,
    coding,
    concept,
    display_reference,
    extension,
    hsa_reference,
    identifier,
    local_instant,
    meta,
    patient_reference,
    period,
)
from adapter.mapping.identifiers import stable_digest
from adapter.mapping.patient import patient_stub
from adapter.mapping.plan_note import plan_note
from adapter.mapping.resource import MappedResource
from adapter.quality import PlanQuality, score_plan

CAREPLAN_STATUS = {
    PlanStatus.DRAFT: "draft",
    PlanStatus.ACTIVE: "active",
    PlanStatus.COMPLETED: "completed",
    PlanStatus.REVOKED: "revoked",
}
GOAL_STATUS = {
    PlanStatus.DRAFT: "proposed",
    PlanStatus.ACTIVE: "active",
    PlanStatus.COMPLETED: "completed",
    PlanStatus.REVOKED: "cancelled",
}
CARETEAM_STATUS = {
    PlanStatus.DRAFT: "proposed",
    PlanStatus.ACTIVE: "active",
    PlanStatus.COMPLETED: "inactive",
    PlanStatus.REVOKED: "inactive",
}
# CarePlan.activity.detail.status is required; the source has no per-action status.
ACTION_STATUS = {
    PlanStatus.DRAFT: "not-started",
    PlanStatus.ACTIVE: "in-progress",
    PlanStatus.COMPLETED: "completed",
    PlanStatus.REVOKED: "stopped",
}
APPOINTMENT_STATUS = {
    PlanStatus.DRAFT: "scheduled",
    PlanStatus.ACTIVE: "scheduled",
    PlanStatus.COMPLETED: "unknown",  # the source does not say whether it took place
    PlanStatus.REVOKED: "cancelled",
}
# The planned follow-up carries the code of the event that will fulfil it.
FOLLOW_UP_CODE = {PlanKind.SIP: EventCode.AW010, PlanKind.PATIENTKONTRAKT: EventCode.UPPF}
NEXT_FOLLOW_UP = "Nästa uppföljning"
NARSTAENDE = "Närstående"


def _category(kind: PlanKind) -> Json:
    """Only Inera's codes: IneraEHDSCarePlan binds every category repetition (no slice) to
    TypeOfCarePlanVS (required), and HAPI checks every coding, so the project's plan-kind code
    rides in an extension (EXT_PLAN_KIND) instead."""
    if kind is PlanKind.SIP:
        return concept(coding(INERA_CAREPLAN_TYPE, CODE_SIP, "SIP"))
    return concept(coding(INERA_CAREPLAN_TYPE, CODE_VARDPLAN, "VP"))  # a patientkontrakt is a VP


def _plan_meta(plan: Plan, profile: str) -> Json:
    """meta.profile, and the label NOPAT (Inera PDL-001, see canonical.CODE_NOPAT) when the
    source says the patient may not see the plan."""
    result = meta(profile)
    if plan.approved_for_patient is False:
        result["security"] = [coding(V3_ACT_CODE, CODE_NOPAT)]
    return result


def goal_key(plan: Plan, goal: PlanGoal) -> str:
    return f"{plan.key}:{goal.id}"


def _role(role: str, mappings: Mappings) -> Json:
    """The role as a CodeableConcept; an unmapped role keeps its text (extensible binding)."""
    translation = mappings.participant_role
    return concept(*translation.codings(role), text=translation.display(role) or role)


def _is_person(participant: Participant) -> bool:
    """A named staff member (HSA-id or name), not the patient and not just an organisation."""
    return participant.role != ParticipantRole.PATIENT and bool(
        participant.hsa_id or participant.name
    )


def _member(plan: Plan, participant: Participant) -> Json:
    if participant.role == ParticipantRole.PATIENT:
        return patient_reference(plan.patient)
    if participant.hsa_id:
        return hsa_reference("Practitioner", participant.hsa_id, participant.name)
    if participant.name:
        return display_reference(participant.name)
    if participant.organization:  # nobody named: the organisation itself takes part
        return {"type": "Organization", "display": participant.organization}
    return display_reference(participant.role)


def _participant(plan: Plan, participant: Participant, mappings: Mappings) -> Json:
    result: Json = {}
    if participant.huvudman is not None:
        result["extension"] = [
            extension(EXT_HUVUDMAN, "Coding", mappings.responsible.codings(participant.huvudman)[0])
        ]
    result["role"] = [_role(participant.role, mappings)]
    result["member"] = _member(plan, participant)
    # ctm-1: onBehalfOf is for a Practitioner member (the organisation a person acts for).
    if participant.organization and _is_person(participant):
        result["onBehalfOf"] = display_reference(participant.organization)
    return result


def map_care_team(plan: Plan, mappings: Mappings) -> MappedResource:
    resource: Json = {
        "resourceType": "CareTeam",
        "meta": _plan_meta(plan, PROFILE_CARETEAM),
        "identifier": [identifier(ID_CARETEAM, plan.key)],
        "status": CARETEAM_STATUS[plan.status],
        "name": plan.title,
        "subject": patient_reference(plan.patient),
        "period": period(plan.created, plan.valid_until),
    }
    if plan.participants:
        resource["participant"] = [_participant(plan, p, mappings) for p in plan.participants]
    resource["managingOrganization"] = [hsa_reference("Organization", plan.unit_hsa_id)]
    return MappedResource("CareTeam", ID_CARETEAM, plan.key, resource)


def map_goal(plan: Plan, goal: PlanGoal) -> MappedResource:
    key = goal_key(plan, goal)
    resource: Json = {
        "resourceType": "Goal",
        "meta": _plan_meta(plan, PROFILE_GOAL),
        "identifier": [identifier(ID_GOAL, key)],
        "lifecycleStatus": GOAL_STATUS[plan.status],
        "description": {"text": goal.text},
        "subject": patient_reference(plan.patient),
    }
    if goal.due is not None:
        resource["target"] = [{"dueDate": goal.due.isoformat()}]
    if goal.expressed_by is ExpressedBy.PATIENT:
        resource["expressedBy"] = patient_reference(plan.patient)
    return MappedResource("Goal", ID_GOAL, key, resource)


def _performer(plan: Plan, action: PlanAction, mappings: Mappings) -> Json:
    """Who does it: the patient, a named participant (HSA-id when known), or a display."""
    if action.responsible is Responsible.PATIENT:
        return patient_reference(plan.patient)
    role = action.role or (
        ParticipantRole.NARSTAENDE if action.responsible is Responsible.NARSTAENDE else None
    )
    participant = plan.participant(role) if role else None
    if participant is not None and participant.role != ParticipantRole.PATIENT:
        return _member(plan, participant)
    if action.responsible is Responsible.NARSTAENDE:
        return display_reference(NARSTAENDE)
    huvudman = mappings.responsible.display(action.responsible) or action.responsible
    if action.role:
        role_name = mappings.participant_role.display(action.role) or action.role
        return display_reference(f"{role_name} ({huvudman.lower()})")
    return display_reference(huvudman)


def _action_activity(
    plan: Plan, action: PlanAction, goal_refs: dict[str, Json], mappings: Mappings
) -> Json:
    extensions = [
        extension(EXT_RESPONSIBLE, "Coding", mappings.responsible.codings(action.responsible)[0])
    ]
    if action.role:
        extensions.append(
            extension(EXT_PERFORMER_ROLE, "CodeableConcept", _role(action.role, mappings))
        )
    detail: Json = {
        "extension": extensions,
        "status": ACTION_STATUS[plan.status],
        "description": action.text,
        "performer": [_performer(plan, action, mappings)],
    }
    if action.goal is not None:
        if action.goal not in goal_refs:
            raise MappingError(
                f"åtgärden '{action.text}' hänvisar till målet '{action.goal}' som planen saknar",
                field="actions.goal",
            )
        detail["goal"] = [dict(goal_refs[action.goal])]
    return {"detail": detail}


def _appointment(plan: Plan, day_text: str, description: str, extra: Json) -> Json:
    detail: Json = {"kind": "Appointment", **extra}
    detail["status"] = APPOINTMENT_STATUS[plan.status]
    detail["description"] = description
    detail["scheduledPeriod"] = {"start": day_text, "end": day_text}
    return {"detail": detail}


def _activities(plan: Plan, goal_refs: dict[str, Json], mappings: Mappings) -> list[Json]:
    activities = [_action_activity(plan, a, goal_refs, mappings) for a in plan.actions]
    if plan.next_follow_up is not None:
        code = concept(*mappings.event_code.codings(FOLLOW_UP_CODE[plan.kind]))
        activities.append(
            _appointment(plan, plan.next_follow_up.isoformat(), NEXT_FOLLOW_UP, {"code": code})
        )
    for appointment in plan.agreed_appointments:
        activities.append(
            _appointment(
                plan,
                appointment.date.isoformat(),
                f"Överenskommen tid med {appointment.with_whom}",
                {"performer": [display_reference(appointment.with_whom)]},
            )
        )
    return activities


def quality_extension(quality: PlanQuality) -> Json:
    """The score with the criteria version and each unmet criterion (code + Swedish label)."""
    parts = [
        extension("score", "Decimal", float(quality.score)),  # 2 decimals survive float
        extension("version", "String", quality.version),
    ]
    parts.extend(
        extension("unmet", "Coding", coding(CS_PLAN_QUALITY_CRITERION, u.id, u.label))
        for u in quality.unmet
    )
    return {"url": EXT_PLAN_QUALITY, "extension": parts}


def _plan_extensions(plan: Plan, mappings: Mappings) -> list[Json]:
    extensions = [
        extension(EXT_PLAN_VERSION, "Integer", plan.version),
        extension(EXT_PLAN_UPDATED, "Date", plan.updated.isoformat()),
    ]
    if plan.kind is PlanKind.PATIENTKONTRAKT:
        kind = coding(CS_PLAN_KIND, CODE_PATIENTKONTRAKT, "Patientkontrakt")
        extensions.append(extension(EXT_PLAN_KIND, "Coding", kind))
    if plan.approved_for_patient is not None:
        extensions.append(
            extension(INERA_EXT_APPROVED_FOR_PATIENT, "Boolean", plan.approved_for_patient)
        )
    if plan.what_matters:
        extensions.append(extension(EXT_WHAT_MATTERS, "String", plan.what_matters))
    if plan.kind is PlanKind.SIP:
        if plan.overall_responsibility is not None:
            huvudman = mappings.responsible.codings(plan.overall_responsibility)[0]
            extensions.append(extension(EXT_OVERALL_RESPONSIBILITY, "Coding", huvudman))
        if plan.kva:
            kva = mappings.event_code.codings(plan.kva)
            if not kva:
                raise MappingError(f"okänd KVÅ-kod '{plan.kva}' för SIP", field="kva")
            extensions.append(extension(EXT_PLAN_KVA, "Coding", kva[0]))
    if plan.consent is not None:
        consent = coding(CS_SIP_CONSENT, plan.consent.value, CONSENT_DISPLAY[plan.consent])
        extensions.append(extension(EXT_SIP_CONSENT, "Coding", consent))
    extensions.append(quality_extension(score_plan(plan, mappings.plan_quality)))
    return extensions


def map_care_plan(
    plan: Plan, goals: list[MappedResource], team: MappedResource, mappings: Mappings
) -> MappedResource:
    goal_refs = {
        goal.id: {"reference": mapped.match_url}
        for goal, mapped in zip(plan.goals, goals, strict=True)
    }
    sip = plan.kind is PlanKind.SIP
    plan_meta = _plan_meta(plan, PROFILE_SIP_CAREPLAN if sip else PROFILE_PATIENTKONTRAKT_CAREPLAN)
    plan_meta["source"] = plan_source(plan)
    resource: Json = {
        "resourceType": "CarePlan",
        "meta": plan_meta,
        "extension": _plan_extensions(plan, mappings),
        "identifier": [identifier(ID_PLAN, plan.key)],
        "status": CAREPLAN_STATUS[plan.status],
        "intent": "plan",
        "category": [_category(plan.kind)],
        "title": plan.title,
        "subject": patient_reference(plan.patient),
        "period": period(plan.created, plan.valid_until),
        "created": plan.created.isoformat(),
        "author": hsa_reference("Organization", plan.unit_hsa_id),
        "contributor": _contributors(plan),
        "careTeam": [{"reference": team.match_url}],
    }
    if goal_refs:
        resource["goal"] = [dict(ref) for ref in goal_refs.values()]
    activities = _activities(plan, goal_refs, mappings)
    if activities:
        resource["activity"] = activities
    resource["note"] = [{"text": plan_note(plan, mappings)}]
    return MappedResource("CarePlan", ID_PLAN, plan.key, resource)


def plan_source(plan: Plan) -> str:
    """meta.source: the source system the plan came from (no `#`: HAPI appends its request id)."""
    return f"{SOURCE_BASE}/{quote(plan.source_system, safe='')}"


def _contributors(plan: Plan) -> list[Json]:
    """The participating units: the plan's own unit by HSA-id, then each other organisation a
    participant acts for (by name: the source has no HSA-id for them)."""
    result = [hsa_reference("Organization", plan.unit_hsa_id)]
    seen: set[str] = set()
    for participant in plan.participants:
        name = participant.organization
        if name and name not in seen:
            seen.add(name)
            result.append({"type": "Organization", "display": name})
    return result


def map_provenance(plan: Plan, care_plan: MappedResource, care_provider: str) -> MappedResource:
    """Who the plan comes from, as Inera's IneraEHDSProvenance says: author = the vårdenhet
    (inre spärr), custodian = the vårdgivare (yttre spärr). One per plan (all versions), keyed by
    a meta.tag, recorded = the day the source last changed the plan (midnight, Swedish time)."""
    key = stable_digest("provenance", plan.key)
    resource: Json = {
        "resourceType": "Provenance",
        "meta": meta(PROFILE_PROVENANCE) | {"tag": [coding(ID_PROVENANCE, key)]},
        "target": [{"reference": care_plan.match_url}],
        "recorded": local_instant(plan.updated),
        "agent": [
            {
                "type": concept(coding(PROVENANCE_PARTICIPANT_TYPE, "custodian", "Custodian")),
                "who": hsa_reference("Organization", care_provider),
            },
            {
                "type": concept(coding(PROVENANCE_PARTICIPANT_TYPE, "author", "Author")),
                "who": hsa_reference("Organization", plan.unit_hsa_id),
            },
        ],
    }
    return MappedResource("Provenance", ID_PROVENANCE, key, resource)


def _patient_name(plan: Plan) -> str | None:
    patient = plan.participant(ParticipantRole.PATIENT)
    return patient.name if patient is not None else None


def map_plan(plan: Plan, mappings: Mappings) -> list[MappedResource]:
    """Patient stub, Goals, CareTeam, the CarePlan that references them, and its Provenance
    (when the care provider's HSA-id is set)."""
    goals = [map_goal(plan, goal) for goal in plan.goals]
    team = map_care_team(plan, mappings)
    care_plan = map_care_plan(plan, goals, team, mappings)
    resources = [patient_stub(plan.patient, _patient_name(plan)), *goals, team, care_plan]
    if mappings.care_provider_hsa_id:
        resources.append(map_provenance(plan, care_plan, mappings.care_provider_hsa_id))
    return resources
