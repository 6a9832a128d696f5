"""Prea60 lists (`prea60*.csv`, Diver): one row per listed patient and prediction run.

- The personnummer's century is counted back from the row's Beräkningsdatum.
- `Namn` is `Efternamn, Förnamn`. A name without a comma is taken as the family name alone:
  the name is only shown, the personnummer identifies, and rejecting the row would drop the
  patient from the risk group. Digits, more than one comma or an empty family name are errors.
- Risk (%) 0–100, decimal comma or point, a trailing `%` allowed.
- The same patient twice in one run for one unit with other values is an error (the second row).
"""

from __future__ import annotations

import re

from adapter.domain import Prea60Row
from adapter.sources.csvfile import Column, CsvFormat, CsvRow, IdentityRule
from adapter.sources.reading import SourceKind
from adapter.sources.values import InvalidValue, parse_date, parse_hsa_id, parse_risk_percent

_DIGIT = re.compile(r"\d")

COLUMNS = (
    Column("personnummer"),
    Column("name"),
    Column("risk_percent"),
    Column("run_date"),
    Column("unit_hsa_id"),
    Column("unit_name", required=False),
    Column("gp_hsa_id", required=False),
)

IDENTITY: IdentityRule[Prea60Row] = IdentityRule(
    field="personnummer",
    key=lambda r: f"{r.unit_hsa_id}|{r.run_date.isoformat()}|{r.patient.digits}",
    reason="Patienten finns redan på rad {line} i samma körning och enhet, med andra värden",
)


def parse_name(text: str) -> tuple[str, str]:
    """(family name, given name) from `Efternamn, Förnamn`; a lone name is the family name."""
    if _DIGIT.search(text):
        raise InvalidValue("Namnet innehåller siffror (fel kolumn?)")
    parts = [part.strip() for part in text.split(",")]
    if len(parts) > 2:
        raise InvalidValue("Namnet har mer än ett kommatecken: väntade 'Efternamn, Förnamn'")
    if not parts[0]:
        raise InvalidValue("Efternamn saknas: väntade 'Efternamn, Förnamn'")
    return parts[0], parts[1] if len(parts) == 2 else ""


def _build(row: CsvRow) -> Prea60Row | None:
    run_date = row.required("run_date", parse_date)
    patient = row.person("personnummer", run_date)
    name = row.required("name", parse_name)
    risk = row.required("risk_percent", parse_risk_percent)
    unit = row.required("unit_hsa_id", parse_hsa_id)
    gp = row.optional("gp_hsa_id", parse_hsa_id)
    if run_date is None or patient is None or name is None or risk is None or unit is None:
        return None
    return Prea60Row(
        patient=patient,
        family_name=name[0],
        given_name=name[1],
        risk_percent=risk,
        run_date=run_date,
        unit_hsa_id=unit,
        unit_name=row.text("unit_name"),
        gp_hsa_id=gp,
        source=row.source,
    )


FORMAT = CsvFormat(SourceKind.PREA60, COLUMNS, _build, IDENTITY)
read_prea60 = FORMAT.read  # (source, *, mappings_dir, name=None) -> Reading
