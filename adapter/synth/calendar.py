"""Dates of the synthetic year: weekly Prea60 runs and the Swedish working-day calendar.

The calendar is the product's (`adapter.followup.calendar`), with the three extra days every
Swedish region keeps off named here rather than read from a deployment's rules.json: the
generator only needs to put discharge notices around holidays and SIP calls before or after the
deadline, whatever a region has configured.
"""

from __future__ import annotations

from datetime import date, timedelta

from adapter.followup.calendar import WorkingCalendar
from adapter.sources.values import STOCKHOLM

_DAY = timedelta(days=1)
EXTRA_DAYS = ("Midsommarafton", "Julafton", "Nyårsafton")  # de facto holidays (SFS 1977:480 §7)


def mondays(start: date, end: date) -> list[date]:
    """Every Monday from `start` to `end`, both included: the weekly Prea60 runs."""
    first = start + timedelta(days=(7 - start.weekday()) % 7)
    return [first + timedelta(weeks=k) for k in range((end - first).days // 7 + 1)]


class WorkingDays:
    """Weekends, public holidays and the de facto holidays midsommarafton, julafton, nyårsafton."""

    def __init__(self) -> None:
        self._calendar = WorkingCalendar(timezone=STOCKHOLM.key, extra_day_names=EXTRA_DAYS)

    def is_working(self, day: date) -> bool:
        return self._calendar.is_working_day(day)

    def add(self, day: date, working_days: int) -> date:
        """The date `working_days` working days after `day`; 0 = `day` itself if it is one."""
        if working_days == 0 and self.is_working(day):
            return day
        return self._calendar.add_working_days(day, max(working_days, 1))

    def awkward_days(self, start: date, end: date) -> list[date]:
        """Weekdays that are off, and the working day before each: where deadlines stretch."""
        found: set[date] = set()
        day = start
        while day <= end:
            if day.weekday() < 5 and not self.is_working(day):
                found.add(day)
                before = day - _DAY
                while not self.is_working(before):
                    before -= _DAY
                if before >= start:
                    found.add(before)
            day += _DAY
        return sorted(found)
