"""Working days for application due dates: weekends, holidays and 调休."""

from __future__ import annotations

import datetime as dt

import pytest
from govshare.directory import DEFAULT_DUE_WORKING_DAYS, WorkingCalendar

D = dt.date

# 2025 National Day and Mid-Autumn: 1-8 October off; Sunday 28 September and
# Saturday 11 October are worked in exchange (国务院办公厅 2025 holiday notice).
NATIONAL_DAY = WorkingCalendar.from_iso(
    holidays=[f"2025-10-0{d}" for d in range(1, 9)],
    extra_working_days=["2025-09-28", "2025-10-11"],
)


class TestWeekends:
    def test_weekdays_work_and_weekends_do_not(self) -> None:
        """Monday to Friday are working days, Saturday and Sunday are not."""
        plain = WorkingCalendar()
        week = [D(2026, 3, 2) + dt.timedelta(days=i) for i in range(7)]
        assert [plain.is_working_day(day) for day in week] == [True] * 5 + [False] * 2

    def test_friday_plus_one_is_monday(self) -> None:
        """Counting skips the weekend."""
        assert WorkingCalendar().add_working_days(D(2026, 3, 6), 1) == D(2026, 3, 9)

    def test_ten_working_days_from_monday_is_monday_two_weeks_on(self) -> None:
        """The default deadline of ten working days spans two weekends."""
        assert DEFAULT_DUE_WORKING_DAYS == 10
        assert WorkingCalendar().add_working_days(D(2026, 3, 2), 10) == D(2026, 3, 16)

    def test_start_on_a_weekend(self) -> None:
        """An application made on Saturday has Monday as its first working day."""
        assert WorkingCalendar().add_working_days(D(2026, 3, 7), 1) == D(2026, 3, 9)

    def test_zero_is_the_start_day_and_negative_is_refused(self) -> None:
        """n=0 returns the start day itself; a negative count is an error."""
        assert WorkingCalendar().add_working_days(D(2026, 3, 7), 0) == D(2026, 3, 7)
        with pytest.raises(ValueError, match="negative"):
            WorkingCalendar().add_working_days(D(2026, 3, 7), -1)


class TestHolidays:
    def test_holidays_are_skipped(self) -> None:
        """From 30 September the next working day is 9 October, after the holiday week."""
        assert NATIONAL_DAY.add_working_days(D(2025, 9, 30), 1) == D(2025, 10, 9)

    def test_make_up_weekend_days_count(self) -> None:
        """调休: Sunday 28 September is a working day, so Friday + 1 is that Sunday."""
        assert NATIONAL_DAY.is_working_day(D(2025, 9, 28))
        assert NATIONAL_DAY.is_working_day(D(2025, 10, 11))
        assert NATIONAL_DAY.add_working_days(D(2025, 9, 26), 1) == D(2025, 9, 28)

    def test_ten_days_across_the_holiday(self) -> None:
        """Ten working days from 26 September: 28, 29, 30 Sep, 9, 10, 11, 13-16 Oct."""
        assert NATIONAL_DAY.add_working_days(D(2025, 9, 26), 10) == D(2025, 10, 16)

    def test_a_holiday_weekday_is_not_worked(self) -> None:
        """A weekday in the holiday list is a day off."""
        assert not NATIONAL_DAY.is_working_day(D(2025, 10, 1))
        assert NATIONAL_DAY.is_working_day(D(2025, 10, 9))

    def test_from_iso_refuses_bad_dates(self) -> None:
        """Configuration with an impossible date fails loudly."""
        with pytest.raises(ValueError, match="day is out of range"):
            WorkingCalendar.from_iso(holidays=["2025-02-30"])
