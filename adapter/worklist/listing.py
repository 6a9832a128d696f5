"""One page of a unit's worklist: the list filtered, sorted and cut to a page, with the totals of
the whole list. Pure; the API (`GET /units/{hsa_id}/worklist`) and the page (/ui/units/{hsa_id})
both answer through `worklist_page`, on the read model's rows (adapter/readmodel/worklists.py).

Paged because a unit of 10 000 listed patients has 1 000+ on its list: a vårdsamordnare works
through the overdue and the next due (the default order) a screenful at a time, and each
patient shown is audited (PDL), so a page shows (and logs) the 50 rows asked for, not all of
them. The filters and the order apply to the whole list before it is cut.

The text filter matches a name or a birth date (ÅÅÅÅMMDD, ÅÅMMDD, or a part of one): a full
personnummer typed in is matched on its date part, so the filter never needs the number itself
(the page's script sends only the date part: adapter/api/static/worklist.js).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from adapter.worklist.rows import PlanLabel, WorklistRow, row_order

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
_SWEDISH_LAST = str.maketrans({"å": "{", "ä": "|", "ö": "}"})  # after z, in that order
_SEPARATORS = re.compile(r"[-+ _]")


def _text_key(text: str | None) -> str:
    return (text or "").casefold().translate(_SWEDISH_LAST)


# What each column sorts by, ascending; ties keep the list's own order (row_order).
SORT_KEYS: dict[str, Callable[[WorklistRow], Any]] = {
    "name": lambda r: _text_key(r.name),
    "risk": lambda r: r.risk_percent if r.risk_percent is not None else Decimal(-1),
    "plan": lambda r: r.plan.value,
    "quality": lambda r: r.quality.score if r.quality else Decimal(-1),
    "last": lambda r: r.last_follow_up or date.min,
    "due": lambda r: (not r.overdue, r.due or date.max),
    "tasks": lambda r: len(r.tasks),
}
DEFAULT_SORT = "due"
SORT_PATTERN = f"^-?({'|'.join(SORT_KEYS)})$"


@dataclass(frozen=True)
class WorklistQuery:
    """What the caller asked for: `sort` a SORT_KEYS key, `-` first for descending."""

    text: str = ""
    plan: PlanLabel | None = None
    overdue_only: bool = False
    with_tasks_only: bool = False
    sort: str = DEFAULT_SORT
    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE

    @property
    def sort_key(self) -> str:
        return self.sort.removeprefix("-")

    @property
    def descending(self) -> bool:
        return self.sort.startswith("-")

    @property
    def filtered(self) -> bool:
        return bool(self.text.strip() or self.plan or self.overdue_only or self.with_tasks_only)


@dataclass(frozen=True)
class WorklistPage:
    rows: tuple[WorklistRow, ...]
    total: int  # patients on the whole list
    overdue: int  # of them with something overdue
    open_tasks: int  # on the whole list
    matching: int  # patients the filters let through
    page: int  # 1-based, within 1..pages
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.matching / self.page_size))

    @property
    def first(self) -> int:
        """The 1-based position of the page's first row (0 when nothing matches)."""
        return (self.page - 1) * self.page_size + 1 if self.rows else 0

    @property
    def last(self) -> int:
        return self.first + len(self.rows) - 1 if self.rows else 0


def search_needle(text: str) -> str:
    """What the text filter looks for: a personnummer or birth date typed in becomes its date
    part (ÅÅÅÅMMDD, or ÅÅMMDD of a 10-digit number); anything else, case-folded."""
    needle = text.strip().casefold()
    digits = _SEPARATORS.sub("", needle)
    if digits.isdigit():
        return digits[:6] if len(digits) == 10 else digits[:8]
    return needle


def _matches(row: WorklistRow, query: WorklistQuery, needle: str) -> bool:
    # ÅÅMMDD is the tail of ÅÅÅÅMMDD: one substring test serves both
    if needle and needle not in f"{(row.name or '').casefold()} {row.person.digits[:8]}":
        return False
    return (
        (query.plan is None or row.plan is query.plan)
        and (not query.overdue_only or row.overdue)
        and (not query.with_tasks_only or bool(row.tasks))
    )


def worklist_page(rows: Sequence[WorklistRow], query: WorklistQuery) -> WorklistPage:
    """The page `query` asks for of `rows` (the unit's list in its own order, row_order); a page
    past the last is the last."""
    needle = search_needle(query.text)
    matching = [row for row in rows if _matches(row, query, needle)]
    ordered = sorted(matching, key=row_order)
    ordered.sort(key=SORT_KEYS[query.sort_key], reverse=query.descending)
    size = min(max(query.page_size, 1), MAX_PAGE_SIZE)
    page = min(max(query.page, 1), max(1, math.ceil(len(ordered) / size)))
    start = (page - 1) * size
    return WorklistPage(
        rows=tuple(ordered[start : start + size]),
        total=len(rows),
        overdue=sum(1 for row in rows if row.overdue),
        open_tasks=sum(len(row.tasks) for row in rows),
        matching=len(ordered),
        page=page,
        page_size=size,
    )
