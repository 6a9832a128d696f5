"""Dates of the synthetic year: weekly Prea60 runs and the Swedish working-day calendar.

The generator uses its own small calendar so that it stays apart from the product's rules;
it only needs to put discharge notices around holidays and SIP calls before or after the
deadline, not to be the authority on either.
"""

from __future__ import annotations

from datetime import date, timedelta

from holidays.countries.sweden import Sweden

_DAY = timedelta(days=1)


def mondays(start: date, end: date) -> list[date]:
    """Every Monday from `start` to `end`, both included: the weekly Prea60 runs."""
    first = start + timedelta(days=(7 - start.weekday()) % 7)
    return [first + timedelta(weeks=k) for k in range((end - first).days // 7 + 1)]


class WorkingDays:
    """Weekends, public holidays and the de facto holidays midsommarafton, julafton, nyårsafton."""

    def __init__(self, first_year: int, last_year: int) -> None:
        years = range(first_year, last_year + 1)
        official = Sweden(years=years, include_sundays=False)
        off = set(official)
        for year in years:
            june19 = date(year, 6, 19)
            midsommarafton = june19 + timedelta(days=(4 - june19.weekday()) % 7)  # Friday 19–25
            off.update((midsommarafton, date(year, 12, 24), date(year, 12, 31)))
        self._off = frozenset(off)

    def is_working(self, day: date) -> bool:
        return day.weekday() < 5 and day not in self._off

    def add(self, day: date, working_days: int) -> date:
        """The date `working_days` working days after `day`; 0 = `day` itself if it is one."""
        if working_days == 0 and self.is_working(day):
            return day
        left = max(working_days, 1)
        while left:
            day += _DAY
            if self.is_working(day):
                left -= 1
        return day

    def awkward_days(self, start: date, end: date) -> list[date]:
        """Weekdays that are off, and the working day before each: where deadlines stretch."""
        found: set[date] = set()
        for day in self._off:
            if start <= day <= end and day.weekday() < 5:
                found.add(day)
                before = day - _DAY
                while not self.is_working(before):
                    before -= _DAY
                if before >= start:
                    found.add(before)
        return sorted(found)
