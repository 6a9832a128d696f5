"""Plans (`plans*.jsonl`, SIP and patientkontrakt): one JSON object per line, or an API body.

The input schema is `PlanIn` (pydantic); a valid object becomes a `domain.Plan`. Every problem
is a `RowError` whose column is the JSON path of the field (`actions[1].goal`, 0-based indexes,
as jq writes them), for example:

- not JSON, JSON nested deeper than `adapter.safejson.MAX_DEPTH` levels, or JSON that is not an
  object; unknown `kind`, `status`, `responsible`, `role`,
  `expressed_by`, `huvudman`; a missing or empty required field; dates not `YYYY-MM-DD`;
- a SIP without `kva`, or `kva` other than AU124/AU125; `kva` or `overall_responsibility` on a
  patientkontrakt; a SIP (other than a draft) without `overall_responsibility`, which the law
  requires a SIP to state;
- an action whose `goal` names no goal of the plan; two goals with one id;
- `updated` or `valid_until` before `created`; a bad personnummer (century counted back from
  `updated`).

Unknown fields are ignored (source systems add their own). A later `version` of the same
`source_system` + `plan_id` replaces the earlier one, but that is for mapping to decide: the
reader yields every version it reads. The same object twice is reported as a repeat; the same
version with other content is an error (the second line).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from datetime import date
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    ValidationError,
)
from pydantic_core import PydanticCustomError

from adapter import personnummer, safejson
from adapter.domain import (
    Appointment,
    Consent,
    ExpressedBy,
    Huvudman,
    Participant,
    ParticipantRole,
    PersonId,
    Plan,
    PlanAction,
    PlanGoal,
    PlanKind,
    PlanStatus,
    Responsible,
    RowError,
    SourceRef,
)
from adapter.jsontext import canonical_json
from adapter.sources.reading import (
    Decoded,
    Outcome,
    Reading,
    RowResult,
    SourceKind,
    repeat,
    shown,
)
from adapter.sources.repeats import RepeatCheck, digest
from adapter.sources.textfile import (
    UTF8,
    FileProblem,
    Source,
    invalid_reason,
    open_text,
    source_name,
)
from adapter.sources.values import InvalidValue, parse_date, parse_hsa_id

T = TypeVar("T")
Errors = tuple[RowError, ...]

SIP_KVA = ("AU124", "AU125")


def _checked(parse: Callable[[str], T]) -> Callable[[str], T]:
    """A value parser as a pydantic validator: its Swedish reason becomes the error message."""

    def validate(text: str) -> T:
        try:
            return parse(text)
        except InvalidValue as exc:
            raise PydanticCustomError("invalid_value", str(exc)) from None

    return validate


def _date_text(value: Any) -> Any:
    if not isinstance(value, str):  # not a number of seconds, as pydantic would allow
        raise PydanticCustomError("date_type", "Ska vara ett datum som text: ÅÅÅÅ-MM-DD")
    return value.strip()


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Day = Annotated[date, BeforeValidator(_checked(parse_date)), BeforeValidator(_date_text)]
HsaId = Annotated[Text, AfterValidator(_checked(parse_hsa_id))]


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, coerce_numbers_to_str=True)


class GoalIn(_In):
    id: Text
    text: Text
    due: Day | None = None
    expressed_by: ExpressedBy


class ActionIn(_In):
    text: Text
    responsible: Responsible
    role: ParticipantRole | None = None
    goal: Text | None = None


class ParticipantIn(_In):
    role: ParticipantRole
    name: str | None = None
    hsa_id: HsaId | None = None
    organization: str | None = None
    huvudman: Huvudman | None = None


class AppointmentIn(_In):
    date: Day
    with_: Text = Field(alias="with")


class PlanIn(_In):
    """One line of plans*.jsonl (and one plan of the ingest API), as the source system sends it."""

    source_system: Text
    plan_id: Text
    version: int = Field(ge=1)
    kind: PlanKind
    patient: Text
    status: PlanStatus
    title: Text
    created: Day
    updated: Day
    valid_until: Day | None = None
    kva: Literal["AU124", "AU125"] | None = None
    unit_hsa_id: HsaId
    what_matters: str | None = None
    overall_responsibility: Huvudman | None = None
    goals: list[GoalIn] = []
    actions: list[ActionIn] = []
    participants: list[ParticipantIn] = []
    next_follow_up: Day | None = None
    agreed_appointments: list[AppointmentIn] = []
    consent: Consent | None = None
    approved_for_patient: StrictBool | None = None


def read_plans(source: Source, *, name: str | None = None) -> Reading:
    """A plans*.jsonl file (or a seekable binary stream of one)."""
    file = source_name(source, name)
    return Reading(file, SourceKind.PLANS, _file_outcomes(source, file))


def read_plan_lines(lines: Iterable[str], *, name: str) -> Reading:
    """JSON Lines text (e.g. an API request body split into lines), numbered from 1."""
    return Reading(name, SourceKind.PLANS, _line_outcomes(name, enumerate(lines, start=1)))


def read_plan_objects(objects: Iterable[tuple[int, Any]], *, name: str) -> Reading:
    """Already parsed JSON values with their line (or position) numbers, e.g. a JSON array body."""
    return Reading(name, SourceKind.PLANS, _object_outcomes(name, objects))


def _file_outcomes(source: Source, file: str) -> Iterator[Outcome]:
    try:
        with open_text(source) as text:
            yield Decoded(text.encoding)
            yield from _line_outcomes(file, enumerate(text, start=1), text.invalid_in)
    except FileProblem as exc:
        yield RowError(file, exc.line, None, exc.reason)


def _no_invalid(_first: int, _last: int) -> None:
    return None


def _line_outcomes(
    file: str,
    lines: Iterable[tuple[int, str]],
    invalid_in: Callable[[int, int], tuple[int, int] | None] = _no_invalid,
) -> Iterator[Outcome]:
    with RepeatCheck() as repeats:
        for line, raw in lines:
            text = raw.strip()
            invalid = invalid_in(line, line)
            if invalid is not None:
                reason = invalid_reason(invalid[1], UTF8)
                yield RowResult(line, None, (RowError(file, line, None, reason),))
                continue
            if not text:
                continue
            try:
                obj = safejson.loads(text)
            except json.JSONDecodeError as exc:
                reason = f"Ogiltig JSON (tecken {exc.colno})"
                yield RowResult(line, None, (RowError(file, line, None, reason, shown(text)),))
                continue
            except safejson.TooDeep as exc:
                yield RowResult(line, None, (RowError(file, line, None, exc.reason),))
                continue
            yield _outcome(file, line, obj, repeats)


def _object_outcomes(file: str, objects: Iterable[tuple[int, Any]]) -> Iterator[Outcome]:
    with RepeatCheck() as repeats:
        for line, obj in objects:
            yield _outcome(file, line, obj, repeats)


def _outcome(file: str, line: int, obj: Any, repeats: RepeatCheck) -> RowResult:
    def error(column: str | None, reason: str, value: str | None = None) -> RowResult:
        return RowResult(line, None, (RowError(file, line, column, reason, value),))

    if not isinstance(obj, dict):
        return error(None, "Raden är inte ett JSON-objekt")
    content = digest(canonical_json(obj))
    errors, plan = _validated(file, line, obj)
    key = f"{plan.source_system}|{plan.plan_id}|{plan.version}" if plan else None
    earlier = repeats.earlier(key, content, line)
    if earlier is not None and earlier.same_content:
        return repeat(file, line, earlier.line)
    if earlier is not None and plan is not None:
        reason = f"Versionen finns redan på rad {earlier.line} med annat innehåll"
        return error("version", reason, str(plan.version))
    return RowResult(line, plan, errors)


def _validated(file: str, line: int, obj: dict[str, Any]) -> tuple[Errors, Plan | None]:
    """((), the plan), or (every problem found in it, None)."""
    try:
        plan_in = PlanIn.model_validate(obj)
    except ValidationError as exc:
        errors = [_row_error(file, line, err) for err in exc.errors()]
        raw_patient = obj.get("patient")
        if isinstance(raw_patient, str) and all(e.column != "patient" for e in errors):
            try:  # `updated` may be the broken field: check what needs no reference date
                personnummer.check(raw_patient)
            except personnummer.PersonnummerError as pnr_exc:
                masked = personnummer.mask(raw_patient, whole=True)
                errors.append(RowError(file, line, "patient", pnr_exc.reason, masked))
        return tuple(errors), None
    problems = list(_rule_problems(plan_in))
    patient = _patient(plan_in, problems)
    if problems or patient is None:
        return tuple(RowError(file, line, *p) for p in problems), None
    return (), _to_domain(plan_in, patient, SourceRef(file, line))


def _patient(plan: PlanIn, problems: list[tuple[str, str, str | None]]) -> PersonId | None:
    try:
        return personnummer.parse(plan.patient, plan.updated)
    except personnummer.PersonnummerError as exc:
        problems.append(("patient", exc.reason, personnummer.mask(plan.patient, whole=True)))
        return None


def _rule_problems(plan: PlanIn) -> Iterator[tuple[str, str, str | None]]:
    """What the schema alone cannot say: (JSON path, Swedish reason, shown value)."""
    if plan.kind is PlanKind.SIP:
        if plan.kva is None:
            yield "kva", "Värde saknas: en SIP ska ha kva AU124 eller AU125", None
        if plan.overall_responsibility is None and plan.status is not PlanStatus.DRAFT:
            reason = "Värde saknas: en SIP ska ange huvudmannen med det övergripande ansvaret"
            yield "overall_responsibility", reason, None
    else:
        if plan.kva is not None:
            yield "kva", "Ett patientkontrakt har ingen kva (bara SIP)", plan.kva
        if plan.overall_responsibility is not None:
            reason = "Övergripande ansvar anges bara för SIP"
            yield "overall_responsibility", reason, plan.overall_responsibility.value
    if plan.updated < plan.created:
        yield "updated", "Ligger före created", plan.updated.isoformat()
    if plan.valid_until is not None and plan.valid_until < plan.created:
        yield "valid_until", "Ligger före created", plan.valid_until.isoformat()
    goal_ids: set[str] = set()
    for i, goal in enumerate(plan.goals):
        if goal.id in goal_ids:
            yield f"goals[{i}].id", "Målets id finns redan i planen", shown(goal.id)
        goal_ids.add(goal.id)
    for i, action in enumerate(plan.actions):
        if action.goal is not None and action.goal not in goal_ids:
            known = ", ".join(sorted(goal_ids)) or "planen har inga mål"
            yield f"actions[{i}].goal", f"Okänt mål ({known})", shown(action.goal)


def _to_domain(plan: PlanIn, patient: PersonId, source: SourceRef) -> Plan:
    return Plan(
        source_system=plan.source_system,
        plan_id=plan.plan_id,
        version=plan.version,
        kind=plan.kind,
        patient=patient,
        status=plan.status,
        title=plan.title,
        created=plan.created,
        updated=plan.updated,
        unit_hsa_id=plan.unit_hsa_id,
        source=source,
        valid_until=plan.valid_until,
        kva=plan.kva,
        what_matters=plan.what_matters or None,
        overall_responsibility=plan.overall_responsibility,
        goals=tuple(PlanGoal(g.id, g.text, g.expressed_by, g.due) for g in plan.goals),
        actions=tuple(
            PlanAction(a.text, a.responsible, a.role.value if a.role else None, a.goal)
            for a in plan.actions
        ),
        participants=tuple(
            Participant(p.role.value, p.name or None, p.hsa_id, p.organization or None, p.huvudman)
            for p in plan.participants
        ),
        next_follow_up=plan.next_follow_up,
        agreed_appointments=tuple(Appointment(a.date, a.with_) for a in plan.agreed_appointments),
        consent=plan.consent,
        approved_for_patient=plan.approved_for_patient,
    )


# --- pydantic errors in Swedish ---

_REASONS = {
    "missing": "Värde saknas",
    "string_type": "Ska vara text",
    "string_too_short": "Får inte vara tomt",
    "int_type": "Ska vara ett heltal",
    "int_parsing": "Ska vara ett heltal",
    "int_from_float": "Ska vara ett heltal",
    "list_type": "Ska vara en lista",
    "model_type": "Ska vara ett objekt",
    "model_attributes_type": "Ska vara ett objekt",
    "dict_type": "Ska vara ett objekt",
    "bool_type": "Ska vara true eller false",
}


def _row_error(file: str, line: int, err: Any) -> RowError:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind in ("enum", "literal_error"):
        reason = f"Okänt värde; tillåtna: {str(ctx.get('expected', '')).replace(' or ', ' eller ')}"
    elif kind == "greater_than_equal":
        reason = f"Ska vara minst {ctx.get('ge')}"
    elif kind in ("invalid_value", "date_type"):
        reason = err["msg"]  # our own validators speak Swedish already
    else:
        reason = _REASONS.get(kind, f"Ogiltigt värde ({kind})")
    value = err.get("input")
    path = json_path(err["loc"])
    if path == "patient" and isinstance(value, str):
        shown_value: str | None = personnummer.mask(value, whole=True)
    elif isinstance(value, str | int | float) and kind != "missing":
        shown_value = shown(str(value))
    else:
        shown_value = None
    return RowError(file, line, path, reason, shown_value)


def json_path(loc: Iterable[str | int]) -> str:
    """A pydantic location as a JSON path: ("actions", 1, "goal") -> "actions[1].goal"."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else part)
    return path
