"""Follow-up Tasks as FHIR R4 JSON: built from the rules' decisions, and read back (pure).

A Task says (profile followup-task):
- `identifier` ID_TASK | task_key (patient + rule + occasion): the write is a conditional update
  on it, so a rerun never makes a second Task for the same occasion;
- `code` the rule (CS_TASK_TYPE), `description` what to do (Swedish), `businessStatus` due or
  overdue, `restriction.period` from the day it opened to the due day (`end`, a date: the whole day
  counts);
- `for` the Patient; `focus` the CarePlan acted on (follow-up, renew-plan) or, where there is no
  plan to act on, `reasonReference` the RiskAssessment (establish-plan) or discharge Encounter
  (sip-call) that caused it: literal references to what the loader found on the server. Tasks
  written before held those reasons in `focus`: they are read the same, and moved to
  `reasonReference` when the adapter next writes them;
- `owner` the fast vårdkontakt (a Practitioner by HSA-id) or else the unit (an Organization by
  HSA-id); `requester` the unit whose worklist it belongs to (searchable as `unit`, see
  profiles/SearchParameter-unit.json);
- `status` requested when made; completed or cancelled with `statusReason.text` (Swedish) when
  its occasion has passed. Whatever else someone adds (a note, status in-progress) is kept when
  the adapter revises or closes the Task.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from adapter.canonical import (
    CS_TASK_BUSINESS_STATUS,
    CS_TASK_TYPE,
    HSA_ID,
    ID_TASK,
    PROFILE_TASK,
    TaskBusinessStatus,
    TaskType,
)
from adapter.followup.rules import (
    Focus,
    OpenTask,
    Outcome,
    Owner,
    OwnerKind,
    PlanFocus,
    TaskDecision,
)
from adapter.mapping.fhir import Json, coding, concept, hsa_reference, identifier, meta, period
from adapter.mapping.narrative import with_narrative
from adapter.mapping.readback import business_identifier

# Task.status values of a Task still to be done; the others (completed, cancelled, rejected,
# failed, entered-in-error) close its occasion for good.
OPEN_STATUSES = frozenset(
    {"draft", "requested", "received", "accepted", "ready", "in-progress", "on-hold"}
)
NEW_STATUS = "requested"
INTENT = "order"

_OWNER_TYPE = {OwnerKind.PRACTITIONER: "Practitioner", OwnerKind.ORGANIZATION: "Organization"}
_OWNER_KIND = {value: kind for kind, value in _OWNER_TYPE.items()}
_SERVER_META = ("versionId", "lastUpdated", "source")


def owner_reference(owner: Owner) -> Json:
    return hsa_reference(_OWNER_TYPE[owner.kind], owner.hsa_id)


def _code(task_type: TaskType) -> Json:
    return concept(coding(CS_TASK_TYPE, task_type.value))


def _business_status(status: TaskBusinessStatus) -> Json:
    return concept(coding(CS_TASK_BUSINESS_STATUS, status.value))


def _reference_type(reference: Any) -> str | None:
    """The resource type of a literal (`[base/]Type/id[/_history/v]`) or conditional reference."""
    text = reference.get("reference") if isinstance(reference, dict) else None
    if not isinstance(text, str):
        return None
    if "?" in text:
        return text.split("?", 1)[0].rstrip("/").split("/")[-1]
    parts = text.split("/_history/")[0].rstrip("/").split("/")
    return parts[-2] if len(parts) >= 2 else None


def _reason_in_focus(task: Json) -> bool:
    """A Task of old whose `focus` holds its reason (anything but the CarePlan acted on)."""
    focus = task.get("focus")
    return focus is not None and _reference_type(focus) != "CarePlan"


def _placed(task: Json, reference: str, *, acted_on: bool) -> Json:
    """`reference` in `focus` (the plan acted on) or in `reasonReference` (what caused it)."""
    task.pop("focus", None)
    task.pop("reasonReference", None)
    task["focus" if acted_on else "reasonReference"] = {"reference": reference}
    return task


def _decided(task: Json, decision: TaskDecision, focus_reference: str) -> Json:
    """`task` with every element the decision sets; owner None leaves the owner as it is."""
    task["businessStatus"] = _business_status(decision.business_status)
    task["code"] = _code(decision.task_type)
    task["description"] = decision.description
    _placed(task, focus_reference, acted_on=isinstance(decision.focus, PlanFocus))
    if decision.unit_hsa_id:
        task["requester"] = hsa_reference("Organization", decision.unit_hsa_id)
    if decision.owner is not None:
        task["owner"] = owner_reference(decision.owner)
    task["restriction"] = {"period": period(decision.opens_on, decision.due)}
    return with_narrative(task)


def new_task(
    decision: TaskDecision, *, patient_reference: str, focus_reference: str, authored_on: date
) -> Json:
    """The Task for a decision nobody has a Task for yet (status requested)."""
    if decision.owner is None:
        raise ValueError("a follow-up Task needs an owner (the profile requires Task.owner)")
    task: Json = {
        "resourceType": "Task",
        "meta": meta(PROFILE_TASK),
        "identifier": [identifier(ID_TASK, decision.key)],
        "status": NEW_STATUS,
        "intent": INTENT,
        "for": {"reference": patient_reference},
        "authoredOn": authored_on.isoformat(),
    }
    return _decided(task, decision, focus_reference)


def _server_copy(current: Json) -> Json:
    """A deep copy of a Task read from the server, without the server's own bookkeeping."""
    task = copy.deepcopy(current)
    task_meta = {k: v for k, v in task.get("meta", {}).items() if k not in _SERVER_META}
    profiles = task_meta.setdefault("profile", [])
    if PROFILE_TASK not in profiles:
        profiles.append(PROFILE_TASK)
    task["meta"] = task_meta
    if _reason_in_focus(task) and "reasonReference" not in task:
        _placed(task, task["focus"]["reference"], acted_on=False)
    return task


def revised_task(current: Json, decision: TaskDecision, *, focus_reference: str) -> Json:
    """The open Task `current` brought in line with `decision` (status and the rest kept)."""
    return _decided(_server_copy(current), decision, focus_reference)


def closed_task(current: Json, outcome: Outcome, reason: str) -> Json:
    """`current` completed or cancelled, with the reason (Swedish) in statusReason."""
    task = _server_copy(current)
    task["status"] = outcome.value
    task["statusReason"] = {"text": reason}
    return with_narrative(task)


# --- the way back ---


def _date_part(value: Any) -> date | None:
    """The calendar date an R4 date or dateTime names (its own local date)."""
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def _coded(element: Any, system: str) -> str | None:
    if not isinstance(element, dict):
        return None
    return next(
        (c.get("code") for c in element.get("coding", ()) if c.get("system") == system), None
    )


def read_owner(reference: Any) -> Owner | None:
    """An owner the adapter writes: a logical Practitioner/Organization reference by HSA-id."""
    if not isinstance(reference, dict):
        return None
    ident = reference.get("identifier") or {}
    kind = _OWNER_KIND.get(str(reference.get("type")))
    if kind is None or ident.get("system") != HSA_ID or not ident.get("value"):
        return None
    return Owner(kind, str(ident["value"]))


@dataclass(frozen=True, slots=True)
class ServerTask:
    """One of the adapter's Tasks as the server holds it (`resource` is the server's JSON)."""

    id: str
    version: str | None
    key: str
    task_type: TaskType
    status: str
    business_status: TaskBusinessStatus | None
    due: date | None
    owner: Owner | None
    focus_reference: str | None  # what it is about: `focus`, else `reasonReference`
    patient_reference: str | None
    unit_hsa_id: str | None
    resource: Json = field(compare=False, repr=False)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def reference(self) -> str:
        return f"Task/{self.id}"

    def open_task(self, focus: Focus | None) -> OpenTask:
        """What the rules compare with their decisions; `focus` resolved by the caller."""
        return OpenTask(
            self.key,
            self.task_type,
            self.business_status,
            self.due,
            self.owner,
            focus,
            reason_in_focus=_reason_in_focus(self.resource),
        )


def read_task(resource: Json) -> ServerTask | None:
    """A Task the adapter wrote (its identifier and code systems), or None for anyone else's."""
    key = business_identifier(resource, ID_TASK)
    type_code = _coded(resource.get("code"), CS_TASK_TYPE)
    if resource.get("resourceType") != "Task" or not key or not resource.get("id"):
        return None
    if type_code not in {t.value for t in TaskType}:
        return None
    status_code = _coded(resource.get("businessStatus"), CS_TASK_BUSINESS_STATUS)
    restriction_period = (resource.get("restriction") or {}).get("period") or {}
    unit = (resource.get("requester") or {}).get("identifier") or {}
    return ServerTask(
        id=str(resource["id"]),
        version=(resource.get("meta") or {}).get("versionId"),
        key=key,
        task_type=TaskType(type_code),
        status=str(resource.get("status", "")),
        business_status=(
            TaskBusinessStatus(status_code)
            if status_code in {s.value for s in TaskBusinessStatus}
            else None
        ),
        due=_date_part(restriction_period.get("end")),
        owner=read_owner(resource.get("owner")),
        focus_reference=(resource.get("focus") or resource.get("reasonReference") or {}).get(
            "reference"
        ),
        patient_reference=(resource.get("for") or {}).get("reference"),
        unit_hsa_id=unit.get("value") if unit.get("system") == HSA_ID else None,
        resource=resource,
    )
