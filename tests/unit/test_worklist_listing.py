"""One page of a worklist (adapter/worklist/listing.py): the filters and the order apply to the
whole list before it is cut, the totals are the whole list's, a page past the end is the last,
and a personnummer typed into the text filter is matched on its date part."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import pytest

from adapter.worklist import PlanLabel, WorklistRow
from adapter.worklist.listing import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    SORT_KEYS,
    WorklistQuery,
    search_needle,
    worklist_page,
)
from tests.support.worklist import AS_OF as DAY
from tests.support.worklist import listed_row

ROWS = [
    listed_row("1", "193102149824", due=DAY - timedelta(days=5), overdue=True, name="Östen Ek"),
    listed_row("2", "193803139801", due=DAY + timedelta(days=5), name="Åsa Berg", risk="31.0"),
    listed_row("3", "193106199817", due=None, name="Anna Zetterberg", tasks=0, plan=PlanLabel.SIP),
    listed_row("4", "192902279807", due=DAY + timedelta(days=1), name=None, risk=None),
]


def ids(query: WorklistQuery, rows: Sequence[WorklistRow] = ROWS) -> list[str]:
    return [row.patient_id for row in worklist_page(rows, query).rows]


def test_the_default_is_the_lists_own_order_overdue_first_then_due() -> None:
    assert ids(WorklistQuery()) == ["1", "4", "2", "3"]
    assert ids(WorklistQuery(sort="-due")) == ["3", "2", "4", "1"]


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("name", ["4", "3", "2", "1"]),  # no name first; Swedish order: Å before Ö, both after Z
        ("-name", ["1", "2", "3", "4"]),
        ("risk", ["4", "1", "3", "2"]),  # no risk first (as -1); ties keep the list's order
        ("tasks", ["3", "1", "4", "2"]),
        ("plan", ["3", "1", "4", "2"]),  # "SIP" < "patientkontrakt"
    ],
)
def test_a_column_sorts_the_whole_list(sort: str, expected: list[str]) -> None:
    assert ids(WorklistQuery(sort=sort)) == expected


def test_filters_apply_before_the_page_and_the_totals_are_the_whole_lists() -> None:
    found = worklist_page(ROWS, WorklistQuery(with_tasks_only=True, page_size=2))
    assert [r.patient_id for r in found.rows] == ["1", "4"]
    assert (found.total, found.overdue, found.open_tasks, found.matching) == (4, 1, 3, 3)
    assert (found.page, found.pages, found.first, found.last) == (1, 2, 1, 2)
    second = worklist_page(ROWS, WorklistQuery(with_tasks_only=True, page=2, page_size=2))
    assert [r.patient_id for r in second.rows] == ["2"]
    assert (second.first, second.last) == (3, 3)
    assert ids(WorklistQuery(overdue_only=True)) == ["1"]
    assert ids(WorklistQuery(plan=PlanLabel.SIP)) == ["3"]


def test_a_page_past_the_end_is_the_last_and_nothing_matching_is_one_empty_page() -> None:
    found = worklist_page(ROWS, WorklistQuery(page=9, page_size=3))
    assert (found.page, [r.patient_id for r in found.rows]) == (2, ["3"])
    empty = worklist_page(ROWS, WorklistQuery(text="ingen sådan"))
    assert (empty.rows, empty.matching, empty.page, empty.pages) == ((), 0, 1, 1)
    assert (empty.first, empty.last, empty.total) == (0, 0, 4)


def test_the_page_size_is_bounded() -> None:
    many = [listed_row(str(n), "193102149824", due=DAY) for n in range(MAX_PAGE_SIZE + 10)]
    assert len(worklist_page(many, WorklistQuery()).rows) == DEFAULT_PAGE_SIZE
    assert len(worklist_page(many, WorklistQuery(page_size=10_000)).rows) == MAX_PAGE_SIZE


@pytest.mark.parametrize(
    ("typed", "needle", "expected"),
    [
        ("ZETTER", "zetter", ["3"]),
        ("19380313-9801", "19380313", ["2"]),  # a full number: its date only
        ("380313-9801", "380313", ["2"]),
        ("193803", "193803", ["2"]),
        ("1931", "1931", ["1", "3"]),
    ],
)
def test_the_text_filter_matches_a_name_or_a_birth_date(
    typed: str, needle: str, expected: list[str]
) -> None:
    assert search_needle(typed) == needle
    assert ids(WorklistQuery(text=typed)) == expected


def test_every_sort_key_sorts() -> None:
    for key in SORT_KEYS:
        for sort in (key, f"-{key}"):
            assert sorted(ids(WorklistQuery(sort=sort))) == ["1", "2", "3", "4"]


def test_risk_orders_as_numbers() -> None:
    rows = [
        listed_row("a", "193102149824", due=DAY, risk="9.5"),
        listed_row("b", "193803139801", due=DAY, risk="10.0"),
    ]
    assert ids(WorklistQuery(sort="risk"), rows) == ["a", "b"]
    assert ids(WorklistQuery(sort="-risk"), rows) == ["b", "a"]
