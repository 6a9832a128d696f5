"""One spelling of JSON content, for what is hashed or compared rather than read."""

from __future__ import annotations

import json
from typing import Any


def canonical_json(value: Any) -> str:
    """Sorted keys, no blanks, UTF-8 kept as is: equal content gives equal text on every run."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
