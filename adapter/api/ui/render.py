"""The pages' templates (Jinja2, Swedish), their filters and the answer every page goes out as:
no inline script or style, nothing from elsewhere (the Content-Security-Policy below)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi import Request, status
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from adapter.api.principal import Role
from adapter.api.sessions import PageSession
from adapter.audit import Purpose
from adapter.canonical import TaskType
from adapter.domain import PersonId
from adapter.indicators.distribution import BANDS, band_label
from adapter.indicators.present import scores_text, swedish
from adapter.personnummer import written
from adapter.worklist.labels import TASK_TITLES

PACKAGE_DIR = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = PACKAGE_DIR / "templates"
STATIC_DIR = PACKAGE_DIR / "static"
PREFIX = "/ui"
# No inline script or style, nothing from elsewhere; the chart is a data: image.
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
PURPOSE_LABELS = {
    Purpose.VARD: "Vård och behandling",
    Purpose.UPPFOLJNING: "Uppföljning av planer",
    Purpose.KVALITET: "Kvalitetsarbete",
}
# Tasks a button can mark done (the others close when a plan arrives: adapter/api/clinic.py)
DONE_TYPES = frozenset({TaskType.FOLLOW_UP, TaskType.SIP_CALL})

templates = Jinja2Templates(directory=TEMPLATES_DIR)


def _masked(person: PersonId) -> str:
    return person.masked


def _full(person: PersonId) -> str:
    return written(person.digits)


def _percent(value: Decimal | float | None) -> str:
    return swedish(None if value is None else Decimal(str(value)))


def _risk(value: Decimal | None) -> str:
    """A Prea60 risk as the list gives it: one decimal, "23,5 %"."""
    return "–" if value is None else f"{value:.1f}".replace(".", ",") + " %"


def _score(value: Decimal | None) -> str:
    """A plan's quality score as Swedish write it: "0,58"."""
    return "–" if value is None else f"{value:.2f}".replace(".", ",")


def _day(value: date | None) -> str:
    return value.isoformat() if value else "–"


def _bands(counts: tuple[int, ...]) -> list[tuple[str, int]]:
    """Plans per score band, labelled in Swedish: [("0,0–0,2", 1), ...]."""
    return [(band_label(band), n) for band, n in zip(BANDS, counts, strict=True)]


templates.env.filters.update(
    masked=_masked,
    pnr=_full,
    percent=_percent,
    risk=_risk,
    day=_day,
    score=_score,
    scores=scores_text,
    bands=_bands,
)
templates.env.globals.update(
    purpose_labels=PURPOSE_LABELS, done_types=DONE_TYPES, task_titles=TASK_TITLES
)


def render(
    request: Request,
    name: str,
    session: PageSession | None,
    status_code: int = status.HTTP_200_OK,
    **context: Any,
) -> HTMLResponse:
    context |= {
        "session": session,
        "flash": session.take_flash() if session else [],
        "is_admin": bool(session and session.principal.has_role(Role.ADMIN)),
    }
    return templates.TemplateResponse(
        request, name, context, status_code=status_code, headers={"Content-Security-Policy": CSP}
    )


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=status.HTTP_303_SEE_OTHER)
