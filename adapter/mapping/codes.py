"""Code translations a region edits (`mappings/conceptmaps/*.json`, FHIR ConceptMaps).

`load_mappings` is the only I/O of the mapping package; the mappers take the loaded `Mappings`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from adapter.canonical import canonical_system
from adapter.domain import EventCode, ParticipantRole, Responsible
from adapter.logs import get_logger
from adapter.mapping.fhir import Json, coding
from adapter.quality import CRITERIA_FILE, Criteria, CriteriaError, load_criteria

_log = get_logger("adapter.mapping.codes")


class MappingsError(ValueError):
    """The mapping files are missing or incomplete (message in Swedish, names the file)."""


@dataclass(frozen=True, slots=True)
class Translation:
    """One ConceptMap: source code → target codings (equivalent codings of one concept)."""

    name: str
    table: Mapping[str, tuple[Json, ...]]

    def codings(self, source_code: str) -> list[Json]:
        """The target codings (copies), or [] when the source code is not mapped."""
        return [dict(c) for c in self.table.get(source_code, ())]

    def display(self, source_code: str) -> str | None:
        targets = self.table.get(source_code, ())
        return str(targets[0]["display"]) if targets and "display" in targets[0] else None


@dataclass(frozen=True, slots=True)
class Mappings:
    participant_role: Translation  # plan participant/action role → Inera fast kontakt | project
    responsible: Translation  # action responsible → CS_RESPONSIBLE
    event_code: Translation  # Åtgärdskod → KVÅ | CS_LOCAL_ACTIVITY
    contact_type: Translation  # Kontakttyp → CS_CONTACT_TYPE
    plan_quality: Criteria  # plan-quality.json: the criteria every plan is scored against
    # The vårdgivare (care provider) the plans belong to: Provenance custodian (a setting,
    # SIP_FHIR_CARE_PROVIDER_HSA_ID); without it no Provenance is written.
    care_provider_hsa_id: str | None = None


# ConceptMap id (file name) → the source codes it must cover (None: open list).
_REQUIRED: dict[str, type[StrEnum] | None] = {
    "participant-role": ParticipantRole,
    "responsible": Responsible,
    "event-code": EventCode,
    "contact-type": None,
}


def translation_from_conceptmap(concept_map: Mapping[str, Any]) -> Translation:
    """Read the groups of an R4 ConceptMap; unmatched/disjoint targets are ignored.

    A target system named by an alias (kv_typ_av_fast_kontakt by its OID, as a region's older copy
    may) is written as its canonical URL.
    """
    table: dict[str, list[Json]] = {}
    for group in concept_map.get("group", []):
        system = group.get("target")
        if not system:
            continue
        system = canonical_system(system)
        for element in group.get("element", []):
            for target in element.get("target", []):
                if target.get("equivalence") in ("unmatched", "disjoint") or "code" not in target:
                    continue
                table.setdefault(element["code"], []).append(
                    coding(system, target["code"], target.get("display"))
                )
    return Translation(
        name=str(concept_map.get("id", "")), table={k: tuple(v) for k, v in table.items()}
    )


def _check_complete(path: Path, translation: Translation, codes: Iterable[str]) -> None:
    missing = [code for code in codes if code not in translation.table]
    if missing:
        raise MappingsError(f"{path}: saknar översättning för {', '.join(missing)}")


def load_mappings(mappings_dir: Path, *, care_provider_hsa_id: str | None = None) -> Mappings:
    """Load the ConceptMaps under `mappings_dir/conceptmaps` and the plan quality criteria
    (`plan-quality.json`, else the project's); MappingsError if one is missing or wrong."""
    translations: dict[str, Translation] = {}
    for name, codes in _REQUIRED.items():
        path = mappings_dir / "conceptmaps" / f"{name}.json"
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise MappingsError(f"{path}: filen saknas") from exc
        except json.JSONDecodeError as exc:
            raise MappingsError(f"{path}: ogiltig JSON ({exc.msg}, rad {exc.lineno})") from exc
        if document.get("resourceType") != "ConceptMap":
            raise MappingsError(f"{path}: är inte en FHIR ConceptMap")
        translation = translation_from_conceptmap(document)
        if codes is not None:
            _check_complete(path, translation, (c.value for c in codes))
        translations[name] = translation
    return Mappings(
        participant_role=translations["participant-role"],
        responsible=translations["responsible"],
        event_code=translations["event-code"],
        contact_type=translations["contact-type"],
        plan_quality=_criteria(mappings_dir / CRITERIA_FILE),
        care_provider_hsa_id=care_provider_hsa_id or None,
    )


# The project's own criteria: for a region's mappings directory from before plan quality.
DEFAULT_CRITERIA = Path(__file__).resolve().parents[2] / "mappings" / CRITERIA_FILE


def _criteria(path: Path) -> Criteria:
    """The region's criteria file; without one the project's defaults (a warning, not a stop:
    an upgrade must not stop an import over a file the region never had)."""
    if not path.is_file() and path != DEFAULT_CRITERIA:
        _log.warning("mappings.default_criteria", missing=str(path), used=str(DEFAULT_CRITERIA))
        path = DEFAULT_CRITERIA
    try:
        return load_criteria(path)
    except CriteriaError as exc:
        raise MappingsError(str(exc)) from None
