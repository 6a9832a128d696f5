"""The project's profiles on the server, and what $validate says about a resource."""

from __future__ import annotations

from typing import Any

from adapter.settings import REPO_ROOT

PROFILES_DIR = REPO_ROOT / "profiles"


Json = dict[str, Any]


def problems(outcome: Json, *severities: str) -> list[str]:
    """Diagnostics of the issues of the given severities in an OperationOutcome."""
    return [
        f"{issue.get('diagnostics', '')} @ {', '.join(issue.get('location', []))}"
        for issue in outcome.get("issue", [])
        if issue.get("severity") in severities
    ]


def errors(outcome: Json) -> list[str]:
    return problems(outcome, "error", "fatal")
