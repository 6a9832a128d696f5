"""Discharge notices (`discharges*.csv`, Lifecare SP / Cosmic Link: "utskrivningsklar").

- Utskrivningsklar is `YYYY-MM-DD HH:MM` Europe/Stockholm; the personnummer's century is
  counted back from its date.
- Insatser kommun/region are `Ja`/`Nej`; Samtycke SIP `Ja`/`Nej`/`Okänt` (case-insensitive).
- Sjukhus and Avdelning are shown only and may be blank (or absent): a notice that obliges a
  SIP call is not dropped for want of a ward name.
- Meddelande-id identifies the notice: repeated with the same values it is a repeat, with
  other values an error (the second row).
"""

from __future__ import annotations

from adapter.domain import Consent, DischargeNotice
from adapter.sources.csvfile import Column, CsvFormat, CsvRow, IdentityRule
from adapter.sources.reading import SourceKind
from adapter.sources.values import parse_choice, parse_datetime, parse_yes_no

COLUMNS = (
    Column("message_id"),
    Column("personnummer"),
    Column("ready_at"),
    Column("hospital", required=False),
    Column("ward", required=False),
    Column("needs_kommun"),
    Column("needs_region"),
    Column("consent"),
)

IDENTITY: IdentityRule[DischargeNotice] = IdentityRule(
    field="message_id",
    key=lambda notice: notice.message_id,
    reason="Meddelande-id finns redan på rad {line} med andra värden",
)

_CONSENTS = {"ja": Consent.JA, "nej": Consent.NEJ, "okänt": Consent.OKANT, "okant": Consent.OKANT}


def parse_consent(text: str) -> Consent:
    return parse_choice(text, _CONSENTS, "Ja, Nej, Okänt")


def _build(row: CsvRow) -> DischargeNotice | None:
    message_id = row.required("message_id", str)
    ready_at = row.required("ready_at", parse_datetime)
    patient = row.person("personnummer", ready_at.date() if ready_at else None)
    needs_kommun = row.required("needs_kommun", parse_yes_no)
    needs_region = row.required("needs_region", parse_yes_no)
    consent = row.required("consent", parse_consent)
    if (
        message_id is None
        or ready_at is None
        or patient is None
        or needs_kommun is None
        or needs_region is None
        or consent is None
    ):
        return None
    return DischargeNotice(
        message_id=message_id,
        patient=patient,
        ready_at=ready_at,
        hospital=row.text("hospital"),
        ward=row.text("ward"),
        needs_kommun=needs_kommun,
        needs_region=needs_region,
        consent=consent,
        source=row.source,
    )


FORMAT = CsvFormat(SourceKind.DISCHARGES, COLUMNS, _build, IDENTITY)
read_discharges = FORMAT.read  # (source, *, mappings_dir, name=None) -> Reading
