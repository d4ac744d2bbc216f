"""Working days for the time limits of sharing applications.

The holiday list and the 调休 make-up working days are published every year by
the State Council and differ by locality, so they are configuration, never code
(DOMAIN.md). Without configuration only weekends are days off.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["DEFAULT_DUE_WORKING_DAYS", "WorkingCalendar"]

# Guizhou's rule, the default; other provinces configure their own.
DEFAULT_DUE_WORKING_DAYS = 10


@dataclass(frozen=True, slots=True)
class WorkingCalendar:
    """Weekdays are working days, except `holidays`; `extra_working_days` are
    weekend days worked in exchange for a holiday (调休)."""

    holidays: frozenset[_dt.date] = field(default_factory=frozenset)
    extra_working_days: frozenset[_dt.date] = field(default_factory=frozenset)

    @classmethod
    def from_iso(
        cls, holidays: Iterable[str] = (), extra_working_days: Iterable[str] = ()
    ) -> WorkingCalendar:
        """Build from YYYY-MM-DD strings as a configuration file holds them."""
        return cls(
            holidays=frozenset(_dt.date.fromisoformat(d) for d in holidays),
            extra_working_days=frozenset(_dt.date.fromisoformat(d) for d in extra_working_days),
        )

    def is_working_day(self, day: _dt.date) -> bool:
        if day in self.extra_working_days:
            return True
        if day in self.holidays:
            return False
        return day.weekday() < 5

    def add_working_days(self, start: _dt.date, n: int) -> _dt.date:
        """The n-th working day after `start` (`start` itself never counts; n=0 is `start`)."""
        if n < 0:
            raise ValueError("n must not be negative")
        day = start
        remaining = n
        while remaining:
            day += _dt.timedelta(days=1)
            if self.is_working_day(day):
                remaining -= 1
        return day
