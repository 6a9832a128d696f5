"""Structural check of mapped JSON with the fhir.resources R4B models, and the R4 guard.

The mappers build plain dicts (fast: see mappings/README.md for the measured rates); this check
parses them with the typed models. For the resources we write R4B is element-for-element R4, so
what parses and carries no R4B-only element is valid R4 structure. Bindings, cardinalities of our
profiles and invariants are the server's `$validate`'s job.
"""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B import get_fhir_model_class

# Elements R4B added to types we use; R4 servers reject them.
R4B_ONLY = frozenset({"valueCodeableReference", "valueRatioRange"})


def r4b_only_elements(value: Any, path: str = "") -> list[str]:
    """Paths of R4B-only elements anywhere in `value`."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else key
            if key in R4B_ONLY:
                found.append(where)
            found.extend(r4b_only_elements(item, where))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(r4b_only_elements(item, f"{path}[{index}]"))
    return found


def check_structure(resource: dict[str, Any]) -> None:
    """Raise ValueError unless `resource` parses as its R4B model and has no R4B-only element."""
    model = get_fhir_model_class(resource["resourceType"])
    model.model_validate(resource)  # pydantic.ValidationError is a ValueError
    extra = r4b_only_elements(resource)
    if extra:
        raise ValueError(f"R4B-only elements: {', '.join(extra)}")
