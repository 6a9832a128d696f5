"""The source files' column headers as /work/shared/formats/README.md names them, written out by
hand: the tests' expectation, not read from mappings/columns (which they check)."""

from __future__ import annotations

PREA60 = [
    "Personnummer",
    "Namn",
    "Risk (%)",
    "Beräkningsdatum",
    "Listningsenhet HSA-id",
    "Listningsenhet",
    "Fast läkarkontakt HSA-id",
]
EVENTS = ["Personnummer", "Datum", "Åtgärdskod", "Utförande enhet HSA-id", "Kontakttyp", "Plan-id"]
DISCHARGES = [
    "Meddelande-id",
    "Personnummer",
    "Utskrivningsklar",
    "Sjukhus",
    "Avdelning",
    "Insatser kommun",
    "Insatser region",
    "Samtycke SIP",
]
# The header lines of semicolon-separated files, as the readers' default dialect writes them.
PREA60_LINE, EVENTS_LINE, DISCHARGES_LINE = (";".join(h) for h in (PREA60, EVENTS, DISCHARGES))
