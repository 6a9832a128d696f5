"""Registered actions (`events*.csv`, Medrave-like): KVÅ AU124/AU125/AW010 and local codes.

- The personnummer's century is counted back from the row's Datum.
- Åtgärdskod and Kontakttyp are matched case-insensitively; other codes are errors.
- Plan-id, when given, is `source_system:plan_id`.
- Events have no identity of their own: a row repeated cell for cell is reported as a repeat.
"""

from __future__ import annotations

from adapter.domain import Event, EventCode
from adapter.sources.csvfile import Column, CsvFormat, CsvRow
from adapter.sources.reading import SourceKind
from adapter.sources.values import InvalidValue, parse_choice, parse_date, parse_hsa_id

COLUMNS = (
    Column("personnummer"),
    Column("date"),
    Column("code"),
    Column("unit_hsa_id"),
    Column("contact_type", required=False),
    Column("plan_ref", required=False),
)

CONTACT_TYPES = ("besök", "telefon", "video", "hembesök")
_CODES = {code.value.casefold(): code for code in EventCode}
_CONTACTS = {contact: contact for contact in CONTACT_TYPES}


def parse_code(text: str) -> EventCode:
    return parse_choice(text, _CODES, ", ".join(_CODES.values()))


def parse_contact_type(text: str) -> str:
    return parse_choice(text, _CONTACTS, ", ".join(CONTACT_TYPES))


def parse_plan_ref(text: str) -> str:
    system, sep, plan_id = text.partition(":")
    if not (sep and system.strip() and plan_id.strip()):
        raise InvalidValue("Ogiltigt plan-id: väntade källsystem:plan-id, t.ex. lifecare:SIP-77")
    return f"{system.strip()}:{plan_id.strip()}"


def _build(row: CsvRow) -> Event | None:
    when = row.required("date", parse_date)
    patient = row.person("personnummer", when)
    code = row.required("code", parse_code)
    unit = row.required("unit_hsa_id", parse_hsa_id)
    contact = row.optional("contact_type", parse_contact_type)
    plan_ref = row.optional("plan_ref", parse_plan_ref)
    if when is None or patient is None or code is None or unit is None:
        return None
    return Event(
        patient=patient,
        date=when,
        code=code,
        unit_hsa_id=unit,
        source=row.source,
        contact_type=contact,
        plan_ref=plan_ref,
    )


FORMAT = CsvFormat(SourceKind.EVENTS, COLUMNS, _build, None)
read_events = FORMAT.read  # (source, *, mappings_dir, name=None) -> Reading
