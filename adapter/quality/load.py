"""Reading the criteria file (the quality package's only I/O)."""

from __future__ import annotations

import json
from pathlib import Path

from adapter.quality.criteria import Criteria, CriteriaError, parse_criteria

CRITERIA_FILE = "plan-quality.json"  # in the mappings directory


def load_criteria(path: Path) -> Criteria:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CriteriaError(f"{path}: filen saknas") from None
    except json.JSONDecodeError as exc:
        raise CriteriaError(f"{path}: ogiltig JSON ({exc.msg}, rad {exc.lineno})") from None
    return parse_criteria(document, str(path))
