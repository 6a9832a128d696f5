"""plans.jsonl lines of the plan reader tests."""

from __future__ import annotations

import json
from typing import Any

SIP: dict[str, Any] = {
    "source_system": "lifecare",
    "plan_id": "SIP-1",
    "version": 1,
    "kind": "sip",
    "patient": "19330927-9887",
    "status": "active",
    "title": "SIP",
    "created": "2024-11-20",
    "updated": "2024-11-20",
    "kva": "AU124",
    "unit_hsa_id": "se2321000057-e00000000101",
    "what_matters": "  Att bo kvar hemma  ",
    "overall_responsibility": "kommun",
    "goals": [{"id": "g1", "text": "Duscha själv", "due": "20250331", "expressed_by": "patient"}],
    "actions": [
        {"text": "Hemtjänst", "responsible": "kommun", "role": "hemtjanst"},
        {"text": "Träna", "responsible": "patient", "goal": "g1"},
    ],
    "participants": [
        {"role": "samordningsansvarig", "name": "Petra Ahl", "huvudman": "kommun"},
        {"role": "narstaende", "name": ""},
    ],
    "next_follow_up": "2025-02-18",
    "agreed_appointments": [{"date": "2025-01-10", "with": "arbetsterapeut"}],
    "extra_field_from_lifecare": {"anything": True},
}


def lines(*objects: dict[str, Any]) -> list[str]:
    return [json.dumps(o, ensure_ascii=False) for o in objects]
