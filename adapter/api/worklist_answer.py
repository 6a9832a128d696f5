"""The worklist API's answer as JSON, encoded once per version of the unit's list: the read
model hands out the same rows object while the unit is unchanged (adapter/readmodel/
worklists.py), so fifty users reading one unit's list share one encoding of its 1 000 rows."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import date

from adapter.api.models import worklist_out
from adapter.worklist import WorklistRow

CACHED_UNITS = 32
_answers: dict[tuple[str, date], tuple[Sequence[WorklistRow], bytes]] = {}
_lock = threading.Lock()


def worklist_json(unit: str, as_of: date, rows: Sequence[WorklistRow]) -> bytes:
    """`worklist_out(...)` as JSON bytes; reused while `rows` is the very same object (the
    entry holds it, so its identity cannot pass to another list)."""
    with _lock:
        found = _answers.get((unit, as_of))
    if found is not None and found[0] is rows:
        return found[1]
    body = worklist_out(unit, as_of, list(rows)).model_dump_json().encode()
    with _lock:
        _answers.pop((unit, as_of), None)
        _answers[(unit, as_of)] = (rows, body)
        while len(_answers) > CACHED_UNITS:
            _answers.pop(next(iter(_answers)))
    return body
