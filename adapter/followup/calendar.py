"""The Swedish working-day calendar and the SIP-call deadline.

Not working days: Saturdays and Sundays, Sweden's public holidays (the `holidays` package), and
the extra days a region names in mappings/rules.json — by default midsommarafton, julafton and
nyårsafton, which the package keeps in its "de facto" category (SFS 1977:480 §7 treats them as
Sundays), not among the public holidays. Older `holidays` releases also counted every Sunday as a
holiday; we ask for `include_sundays=False` and judge weekends ourselves, so either behaviour gives
the same calendar.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from holidays.constants import DE_FACTO, OPTIONAL, PUBLIC
from holidays.countries.sweden import Sweden  # the class itself: `holidays.Sweden` is untyped

_LANGUAGE = "sv"  # holiday names as Swedes write them, and as rules.json names them
_EXTRA_CATEGORIES = (DE_FACTO, OPTIONAL)  # where a region's extra days are looked up by name
_WEEKEND = {5: "lördag", 6: "söndag"}
END_OF_DAY = time(23, 59, 59)  # a deadline day lasts to its last second, local time


@lru_cache(maxsize=1)
def known_extra_day_names() -> frozenset[str]:
    """Names (casefolded) a region may list as extra non-working days: "julafton", "påskafton"..."""
    years = range(2000, 2041)
    source = Sweden(categories=_EXTRA_CATEGORIES, language=_LANGUAGE, years=years)
    return frozenset(name.casefold() for name in source.values())


class WorkingCalendar:
    """Which days are working days, and where a day ends, in one time zone."""

    def __init__(
        self,
        *,
        timezone: str,
        extra_day_names: Iterable[str] = (),
        extra_dates: Iterable[date] = (),
    ) -> None:
        self.timezone = ZoneInfo(timezone)
        self._extra_names = frozenset(name.casefold() for name in extra_day_names)
        unknown = self._extra_names - known_extra_day_names()
        if unknown:
            raise ValueError(f"okända helgdagsnamn: {', '.join(sorted(unknown))}")
        self._extra_dates = frozenset(extra_dates)
        # HolidayBase fills in years lazily as they are asked for.
        self._public = Sweden(categories=(PUBLIC,), language=_LANGUAGE, include_sundays=False)
        self._extra = Sweden(categories=_EXTRA_CATEGORIES, language=_LANGUAGE)

    def non_working_reason(self, day: date) -> str | None:
        """Why `day` is not a working day (Swedish, e.g. "lördag", "Julafton"), or None."""
        if day.weekday() in _WEEKEND:
            return _WEEKEND[day.weekday()]
        public = self._public.get(day)
        if public:
            return public
        for name in self._extra.get_list(day):
            if name.casefold() in self._extra_names:
                return name
        if day in self._extra_dates:
            return "lokal ledig dag"
        return None

    def is_working_day(self, day: date) -> bool:
        return self.non_working_reason(day) is None

    def add_working_days(self, day: date, count: int) -> date:
        """The `count`-th working day after `day` (`day` itself never counts)."""
        if count < 1:
            raise ValueError("count must be at least 1")
        current = day
        while count:
            current += timedelta(days=1)
            if self.is_working_day(current):
                count -= 1
        return current

    def local_date(self, moment: datetime) -> date:
        """The calendar day of `moment` here; a naive datetime is taken as local time."""
        if moment.tzinfo is None:
            return moment.date()
        return moment.astimezone(self.timezone).date()

    def end_of_day(self, day: date) -> datetime:
        return datetime.combine(day, END_OF_DAY, tzinfo=self.timezone)


def sip_call_deadline(
    notice_ready_at: datetime, calendar: WorkingCalendar, working_days: int
) -> datetime:
    """End of the `working_days`-th working day after the day the patient was ready for discharge.

    Counting starts the day after the notice day, whatever the hour of the notice: a notice on
    Friday evening with 3 working days is due at the end of Wednesday (Mon, Tue, Wed).
    """
    notice_day = calendar.local_date(notice_ready_at)
    return calendar.end_of_day(calendar.add_working_days(notice_day, working_days))
