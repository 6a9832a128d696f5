"""The server-side uniqueness rule (profiles/SearchParameter-business-identifier*.json) covers the
business identifier of every resource type the adapter writes, and is a HAPI unique combo index."""

from __future__ import annotations

import json
import re
from typing import Any

from adapter import canonical as c
from adapter.mapping import load_mappings, map_record
from adapter.settings import REPO_ROOT
from tests.support.business_ids import WRITTEN
from tests.support.records import sip

PROFILES = REPO_ROOT / "profiles"
HAPI_SP_UNIQUE = "http://hapifhir.io/fhir/StructureDefinition/sp-unique"


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((PROFILES / f"SearchParameter-{name}.json").read_text())
    return data


def covered() -> set[tuple[str, str]]:
    """(type, system) pairs the token parameter indexes: `Type.path.where(system = …)`."""
    pairs = set()
    for path in _load("business-identifier")["expression"].split(" | "):
        resource_type = path.split(".", 1)[0]
        pairs |= {(resource_type, system) for system in re.findall(r"system = '([^']+)'", path)}
    return pairs


def test_every_business_identifier_the_adapter_writes_is_covered() -> None:
    assert covered() == WRITTEN


def test_a_mapped_sip_record_writes_only_covered_identifiers() -> None:
    written = {
        (r.resource_type, r.identifier_system)
        for r in map_record(sip(), load_mappings(REPO_ROOT / "mappings"))
    }
    assert written and written <= covered()


def test_the_rule_is_a_unique_combo_over_the_token_parameter_on_the_same_types() -> None:
    token, rule = _load("business-identifier"), _load("business-identifier-unique")
    assert token["url"] == c.SP_BUSINESS_ID and token["type"] == "token"
    assert rule["url"] == c.SP_BUSINESS_ID_UNIQUE and rule["type"] == "composite"
    assert rule["extension"] == [{"url": HAPI_SP_UNIQUE, "valueBoolean": True}]
    assert [component["definition"] for component in rule["component"]] == [token["url"]]
    assert rule["base"] == token["base"] == sorted({t for t, _ in WRITTEN}, key=token["base"].index)
    assert {p.split(".", 1)[0] for p in token["expression"].split(" | ")} == set(token["base"])
