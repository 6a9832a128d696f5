"""The Swedish working-day calendar and the SIP-call deadline (3 working days, rules.json)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from adapter.followup.calendar import WorkingCalendar, sip_call_deadline
from tests.support.rules import RULES, STOCKHOLM, at, d

CALENDAR = RULES.calendar
WORKING_DAYS = RULES.params.sip_call.working_days


def test_rules_file_names_three_working_days_and_the_three_eves() -> None:
    assert WORKING_DAYS == 3
    names = {n.casefold() for n in RULES.params.calendar.extra_non_working_days}
    assert names == {"midsommarafton", "julafton", "nyårsafton"}


@pytest.mark.parametrize(
    ("day", "reason"),
    [
        ("2024-12-21", "lördag"),
        ("2024-12-22", "söndag"),
        ("2024-12-24", "Julafton"),
        ("2024-12-25", "Juldagen"),
        ("2024-12-26", "Annandag jul"),
        ("2024-12-31", "Nyårsafton"),
        ("2025-01-01", "Nyårsdagen"),
        ("2025-01-06", "Trettondedag jul"),
        ("2024-03-29", "Långfredagen"),
        ("2024-04-01", "Annandag påsk"),
        ("2024-05-01", "Första maj"),
        ("2024-05-09", "Kristi himmelsfärdsdag"),
        ("2024-06-06", "Nationaldagen"),
        ("2024-06-21", "Midsommarafton"),
    ],
)
def test_non_working_days_and_why(day: str, reason: str) -> None:
    assert CALENDAR.non_working_reason(d(day)) == reason
    assert not CALENDAR.is_working_day(d(day))


@pytest.mark.parametrize(
    "day",
    ["2024-12-23", "2024-12-27", "2024-12-30", "2025-01-02", "2024-03-28", "2024-06-20"],
)
def test_ordinary_weekdays_around_holidays_are_working_days(day: str) -> None:
    assert CALENDAR.is_working_day(d(day))
    assert CALENDAR.non_working_reason(d(day)) is None


@pytest.mark.parametrize("year", range(2024, 2031))
def test_the_eves_are_never_working_days(year: int) -> None:
    midsommarafton = next(
        date(year, 6, day) for day in range(19, 26) if date(year, 6, day).weekday() == 4
    )
    for day in (midsommarafton, date(year, 12, 24), date(year, 12, 31)):
        assert not CALENDAR.is_working_day(day), day


def test_every_sunday_is_non_working_and_the_monday_after_an_ordinary_one_works() -> None:
    # Some releases of `holidays` mark all Swedish Sundays; whether or not, the result is the same.
    sunday = d("2024-01-07")
    for week in range(52):
        day = sunday + timedelta(weeks=week)
        assert CALENDAR.non_working_reason(day) is not None
    assert CALENDAR.is_working_day(d("2024-10-14"))


def test_eves_count_only_when_the_rules_name_them() -> None:
    plain = WorkingCalendar(timezone="Europe/Stockholm")
    assert plain.is_working_day(d("2024-12-24"))
    assert plain.is_working_day(d("2024-06-21"))
    assert not plain.is_working_day(d("2024-12-25"))


def test_region_can_add_a_named_eve_and_local_dates() -> None:
    calendar = WorkingCalendar(
        timezone="Europe/Stockholm",
        extra_day_names=["PÅSKAFTON", "Julafton"],
        extra_dates=[d("2024-12-23")],
    )
    assert calendar.non_working_reason(d("2024-12-23")) == "lokal ledig dag"
    assert calendar.non_working_reason(d("2024-12-24")) == "Julafton"
    assert calendar.add_working_days(d("2024-12-20"), 1) == d("2024-12-27")


def test_unknown_eve_name_is_refused() -> None:
    with pytest.raises(ValueError, match="okända helgdagsnamn: lucia"):
        WorkingCalendar(timezone="Europe/Stockholm", extra_day_names=["Lucia"])


def test_add_working_days_needs_a_positive_count() -> None:
    with pytest.raises(ValueError):
        CALENDAR.add_working_days(d("2024-12-02"), 0)


@pytest.mark.parametrize(
    ("ready_at", "deadline_day"),
    [
        # An ordinary Monday: Tue, Wed, Thu.
        ("2024-12-02 10:00", "2024-12-05"),
        # The example notice LC-9001 (Thursday): Fri 20, Mon 23, (24-26 off) Fri 27.
        ("2024-12-19 14:30", "2024-12-27"),
        # Friday before Christmas: Mon 23, (julafton, juldagen, annandag) Fri 27, Mon 30.
        ("2024-12-20 09:00", "2024-12-30"),
        # Friday evening: the weekend does not count; Mon, Tue, Wed.
        ("2024-11-29 22:45", "2024-12-04"),
        # On juldagen itself: (annandag) Fri 27, Mon 30, (nyårsafton, nyårsdagen) Thu 2.
        ("2024-12-25 11:00", "2025-01-02"),
        # Between the years: (nyårsafton, nyårsdagen) Thu 2, Fri 3, (trettondedag) Tue 7.
        ("2024-12-30 08:00", "2025-01-07"),
        # Skärtorsdagen: (långfredag, weekend, annandag påsk) Tue 2, Wed 3, Thu 4.
        ("2024-03-28 13:00", "2024-04-04"),
        # Before midsommar: Thu 20, (midsommarafton, weekend) Mon 24, Tue 25.
        ("2024-06-19 16:00", "2024-06-25"),
        # On a Saturday: Mon, Tue, Wed.
        ("2024-11-30 10:00", "2024-12-04"),
    ],
)
def test_sip_call_deadline(ready_at: str, deadline_day: str) -> None:
    deadline = sip_call_deadline(at(ready_at), CALENDAR, WORKING_DAYS)
    assert deadline == datetime.combine(d(deadline_day), time(23, 59, 59), tzinfo=STOCKHOLM)


def test_deadline_is_end_of_the_local_day_in_summer_and_winter() -> None:
    winter = sip_call_deadline(at("2024-12-02 10:00"), CALENDAR, WORKING_DAYS)
    summer = sip_call_deadline(at("2024-06-03 10:00"), CALENDAR, WORKING_DAYS)
    assert winter.utcoffset() == timedelta(hours=1)
    assert summer.utcoffset() == timedelta(hours=2)
    assert winter.astimezone(UTC) == datetime(2024, 12, 5, 22, 59, 59, tzinfo=UTC)


def test_notice_day_is_the_local_day_of_an_utc_time() -> None:
    # 23:30 UTC on Thursday is 00:30 on Friday in Stockholm: counting starts on Monday.
    ready_at = datetime(2024, 11, 28, 23, 30, tzinfo=UTC)
    assert sip_call_deadline(ready_at, CALENDAR, WORKING_DAYS).date() == d("2024-12-04")
    # A naive time is read as Stockholm time: still Thursday, so Fri, Mon, Tue.
    naive = datetime(2024, 11, 28, 23, 30)
    assert sip_call_deadline(naive, CALENDAR, WORKING_DAYS).date() == d("2024-12-03")


def test_working_days_come_from_the_parameter() -> None:
    assert sip_call_deadline(at("2024-12-02 10:00"), CALENDAR, 1).date() == d("2024-12-03")
    assert sip_call_deadline(at("2024-12-02 10:00"), CALENDAR, 5).date() == d("2024-12-09")
