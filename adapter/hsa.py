"""HSA-id: the one rule for the identity of a unit (or a person) in Katalogtjänst HSA, used
wherever one is accepted: source rows, API paths, API keys, OIDC claims, CLI options, rules.json.

Inera's rule: "SE" + the directory owner's organisation number (10 digits) + "-" + letters
A–Z/a–z and/or digits (at least one), at most 31 characters in all. Values are normalised to
upper case, the form the sources give and the FHIR server holds, so a unit compares equal
however it was typed.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

# ASCII only ([0-9], not \d: no other script's digits); 2 + 10 + 1 + at most 18 = 31 characters
PATTERN = r"SE[0-9]{10}-[A-Za-z0-9]{1,18}"
EXAMPLE = "SE2321000057-E00000000001"
INVALID = f"Ogiltigt HSA-id: väntade t.ex. {EXAMPLE}"

_HSA_ID = re.compile(PATTERN)
_ANY_CASE = re.compile(PATTERN, re.IGNORECASE | re.ASCII)


class InvalidHsaId(ValueError):
    """Not an HSA-id; the message is the user-facing Swedish reason."""


def parse_hsa_id(text: str) -> str:
    """`text` (surrounding blanks and case ignored) as a normalised HSA-id; else InvalidHsaId."""
    value = text.strip()
    if not _ANY_CASE.fullmatch(value):  # checked before upper-casing: "ß".upper() is "SS"
        raise InvalidHsaId(INVALID)
    return value.upper()


def is_hsa_id(text: str) -> bool:
    """Is `text` an HSA-id exactly as written (no normalisation)?"""
    return _HSA_ID.fullmatch(text) is not None


# A pydantic field type: validated and normalised (the error names the field and says why).
HsaId = Annotated[str, AfterValidator(parse_hsa_id)]
