"""Working-hours calendar: exact due times, DST days, and agreement with a brute-force oracle."""

import math
import random
from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from governance.calendar import (
    END_OF_DAY,
    WorkingCalendar,
    add_working_hours,
    next_working_moment,
    working_hours_between,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
WEEKDAYS = frozenset({1, 2, 3, 4, 5})
EVERY_DAY = frozenset(range(1, 8))

OFFICE = WorkingCalendar("Europe/Berlin", WEEKDAYS, time(9), time(17))
NIGHT_BERLIN = WorkingCalendar("Europe/Berlin", EVERY_DAY, time(0), time(6))
NIGHT_NEW_YORK = WorkingCalendar("America/New_York", EVERY_DAY, time(0), time(6))
# 02:30 does not exist on the spring-forward day and repeats on the fall-back day.
GAP_BLOCK = WorkingCalendar("Europe/Berlin", EVERY_DAY, time(2, 30), time(4))
YEAR_END_HOLIDAYS = frozenset({date(2025, 12, 24), date(2025, 12, 25), date(2025, 12, 26), date(2025, 12, 31)})
OFFICE_WITH_HOLIDAYS = WorkingCalendar(
    "Europe/Berlin", WEEKDAYS, time(9), time(17), YEAR_END_HOLIDAYS | {date(2026, 1, 1)}
)

US = 3_600_000_000  # microseconds per hour


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)  # type: ignore[misc]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def micros(hours: float) -> int:
    return round(hours * US)


# --- concrete due times on a Mon-Fri 09:00-17:00 Berlin calendar ----------------------------------


def test_friday_afternoon_rolls_over_the_weekend() -> None:
    due = add_working_hours(berlin(2025, 6, 13, 16), 4, OFFICE)
    assert due == berlin(2025, 6, 16, 12)
    assert due.tzinfo is UTC
    assert (due.hour, due.minute) == (10, 0)  # 12:00 CEST expressed in UTC


def test_holiday_on_monday_pushes_due_time_to_tuesday() -> None:
    calendar = WorkingCalendar("Europe/Berlin", WEEKDAYS, time(9), time(17), frozenset({date(2025, 6, 16)}))
    assert add_working_hours(berlin(2025, 6, 13, 16), 4, calendar) == berlin(2025, 6, 17, 12)


def test_saturday_start_counts_from_monday_morning() -> None:
    assert add_working_hours(berlin(2025, 6, 14, 10, 30), 2, OFFICE) == berlin(2025, 6, 16, 11)
    assert add_working_hours(berlin(2025, 6, 14, 10, 30), 0, OFFICE) == berlin(2025, 6, 16, 9)


def test_start_exactly_at_closing_time() -> None:
    assert add_working_hours(berlin(2025, 6, 13, 17), 0, OFFICE) == berlin(2025, 6, 16, 9)
    assert add_working_hours(berlin(2025, 6, 13, 17), 1, OFFICE) == berlin(2025, 6, 16, 10)
    assert add_working_hours(berlin(2025, 6, 12, 17), 1, OFFICE) == berlin(2025, 6, 13, 10)


def test_start_before_opening_and_fractional_hours() -> None:
    assert add_working_hours(berlin(2025, 6, 11, 7, 15), 1.5, OFFICE) == berlin(2025, 6, 11, 10, 30)
    assert add_working_hours(berlin(2025, 6, 11, 10), 0, OFFICE) == berlin(2025, 6, 11, 10)


def test_filling_a_block_exactly_ends_at_closing_time_not_next_opening() -> None:
    assert add_working_hours(berlin(2025, 6, 13, 16), 1, OFFICE) == berlin(2025, 6, 13, 17)
    assert add_working_hours(berlin(2025, 6, 9, 9), 40, OFFICE) == berlin(2025, 6, 13, 17)


def test_hours_spanning_several_weeks() -> None:
    assert add_working_hours(berlin(2025, 6, 2, 9), 120, OFFICE) == berlin(2025, 6, 20, 17)
    assert add_working_hours(berlin(2025, 6, 2, 9), 121, OFFICE) == berlin(2025, 6, 23, 10)
    assert add_working_hours(berlin(2025, 6, 4, 13), 87.25, OFFICE) == berlin(2025, 6, 19, 12, 15)


def test_year_end_with_holidays() -> None:
    start = berlin(2025, 12, 22, 9)
    # Working days: Dec 22, 23, 29, 30, Jan 2 (24-26, 31 and Jan 1 are holidays).
    assert add_working_hours(start, 40, OFFICE_WITH_HOLIDAYS) == berlin(2026, 1, 2, 17)
    assert add_working_hours(start, 41, OFFICE_WITH_HOLIDAYS) == berlin(2026, 1, 5, 10)
    assert working_hours_between(start, berlin(2026, 1, 5, 10), OFFICE_WITH_HOLIDAYS) == 41.0


def test_five_hundred_hours_cross_the_spring_change() -> None:
    # 62 full days (12 weeks + Mon, Tue) and 4 h; the clocks move on 2025-03-30.
    due = add_working_hours(berlin(2025, 1, 6, 9), 500, OFFICE)
    assert due == utc(2025, 4, 2, 11)  # 13:00 CEST
    assert working_hours_between(berlin(2025, 1, 6, 9), due, OFFICE) == 500.0


def test_inputs_in_other_zones_are_the_same_instants() -> None:
    expected = berlin(2025, 6, 16, 12)
    assert add_working_hours(datetime(2025, 6, 13, 10, tzinfo=NEW_YORK), 4, OFFICE) == expected
    assert add_working_hours(datetime(2025, 6, 13, 23, tzinfo=ZoneInfo("Asia/Tokyo")), 4, OFFICE) == expected
    assert add_working_hours(datetime(2025, 6, 13, 14, tzinfo=timezone(timedelta(0))), 4, OFFICE) == expected
    sunday_evening_in_la = datetime(2025, 6, 15, 23, tzinfo=ZoneInfo("America/Los_Angeles"))  # Mon 08:00 Berlin
    assert add_working_hours(sunday_evening_in_la, 1, OFFICE) == berlin(2025, 6, 16, 10)


def test_results_are_in_utc() -> None:
    start = datetime(2025, 6, 13, 10, tzinfo=NEW_YORK)
    assert add_working_hours(start, 4, OFFICE).tzinfo is UTC
    assert add_working_hours(start, 0, OFFICE).tzinfo is UTC
    assert next_working_moment(start, OFFICE).tzinfo is UTC
    assert next_working_moment(berlin(2025, 6, 11, 10), OFFICE).tzinfo is UTC


def test_next_working_moment() -> None:
    assert next_working_moment(berlin(2025, 6, 11, 10, 5), OFFICE) == berlin(2025, 6, 11, 10, 5)
    assert next_working_moment(berlin(2025, 6, 11, 17), OFFICE) == berlin(2025, 6, 12, 9)
    assert next_working_moment(berlin(2025, 6, 13, 18), OFFICE) == berlin(2025, 6, 16, 9)
    assert next_working_moment(berlin(2025, 12, 23, 17), OFFICE_WITH_HOLIDAYS) == berlin(2025, 12, 29, 9)


def test_working_hours_between() -> None:
    assert working_hours_between(berlin(2025, 6, 13, 16), berlin(2025, 6, 16, 12), OFFICE) == 4.0
    assert working_hours_between(berlin(2025, 6, 14), berlin(2025, 6, 15, 23), OFFICE) == 0.0
    assert working_hours_between(berlin(2025, 6, 16, 12), berlin(2025, 6, 13, 16), OFFICE) == 0.0
    assert working_hours_between(berlin(2025, 6, 16, 12), berlin(2025, 6, 16, 12), OFFICE) == 0.0
    assert working_hours_between(berlin(2025, 6, 2), berlin(2025, 6, 30), OFFICE) == 160.0


# --- 24x7 -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"])
@pytest.mark.parametrize(
    ("start", "hours"),
    [
        (utc(2025, 3, 29, 20, 17), 30.5),  # over the EU spring change
        (utc(2025, 10, 25, 23), 3),  # over the EU autumn change
        (utc(2025, 3, 8, 23, 59, 59, 123456), 11.25),  # over the US spring change
        (utc(2025, 12, 31, 22), 5),  # over the year end
        (utc(2025, 1, 1), 8760.75),  # a whole year, every change included
    ],
)
def test_always_calendar_equals_plain_addition(zone: str, start: datetime, hours: float) -> None:
    calendar = WorkingCalendar.always(zone)
    assert add_working_hours(start, hours, calendar) == start + timedelta(hours=hours)
    assert working_hours_between(start, start + timedelta(hours=hours), calendar) == hours


def test_always_calendar_shape_and_dst_day_lengths() -> None:
    calendar = WorkingCalendar.always("Europe/Berlin")
    assert calendar.working_days == EVERY_DAY
    assert (calendar.day_start, calendar.day_end) == (time(0), END_OF_DAY)
    assert working_hours_between(berlin(2025, 3, 30), berlin(2025, 3, 31), calendar) == 23.0
    assert working_hours_between(berlin(2025, 10, 26), berlin(2025, 10, 27), calendar) == 25.0
    assert next_working_moment(berlin(2025, 10, 26, 2, 30), calendar) == utc(2025, 10, 26, 0, 30)


# --- DST with a block that covers 02:00-03:00 ----------------------------------------------------------


@pytest.mark.parametrize(
    ("calendar", "midnight", "six_am", "next_midnight", "hours"),
    [
        # 00:00 CET .. 06:00 CEST
        (NIGHT_BERLIN, utc(2025, 3, 29, 23), utc(2025, 3, 30, 4), utc(2025, 3, 30, 22), 5.0),
        # 00:00 CEST .. 06:00 CET
        (NIGHT_BERLIN, utc(2025, 10, 25, 22), utc(2025, 10, 26, 5), utc(2025, 10, 26, 23), 7.0),
        # 00:00 EST .. 06:00 EDT
        (NIGHT_NEW_YORK, utc(2025, 3, 9, 5), utc(2025, 3, 9, 10), utc(2025, 3, 10, 4), 5.0),
        # 00:00 EDT .. 06:00 EST
        (NIGHT_NEW_YORK, utc(2025, 11, 2, 4), utc(2025, 11, 2, 11), utc(2025, 11, 3, 5), 7.0),
    ],
)
def test_dst_day_block_has_real_length(
    calendar: WorkingCalendar, midnight: datetime, six_am: datetime, next_midnight: datetime, hours: float
) -> None:
    assert working_hours_between(midnight, six_am, calendar) == hours
    assert working_hours_between(midnight, next_midnight, calendar) == hours
    assert add_working_hours(midnight, hours, calendar) == six_am
    assert add_working_hours(midnight, hours + 1, calendar) == next_midnight + timedelta(hours=1)
    assert add_working_hours(six_am, 0, calendar) == next_midnight


@pytest.mark.parametrize(
    ("calendar", "start", "hours", "expected"),
    [
        (NIGHT_BERLIN, berlin(2025, 3, 30), 2, utc(2025, 3, 30, 1)),  # 03:00 CEST: 02:xx never happens
        (NIGHT_BERLIN, berlin(2025, 3, 30, 1, 30), 1, utc(2025, 3, 30, 1, 30)),  # 01:30 CET + 1 h = 03:30 CEST
        (NIGHT_BERLIN, berlin(2025, 10, 26), 3, utc(2025, 10, 26, 1)),  # the second 02:00 (CET)
        (NIGHT_BERLIN, berlin(2025, 10, 26, 2, 30), 1, utc(2025, 10, 26, 1, 30)),  # first 02:30 -> second 02:30
        (NIGHT_NEW_YORK, datetime(2025, 3, 9, tzinfo=NEW_YORK), 2, utc(2025, 3, 9, 7)),  # 03:00 EDT
        (NIGHT_NEW_YORK, datetime(2025, 11, 2, tzinfo=NEW_YORK), 2, utc(2025, 11, 2, 6)),  # the second 01:00
    ],
)
def test_counting_through_the_changed_hour(
    calendar: WorkingCalendar, start: datetime, hours: float, expected: datetime
) -> None:
    assert add_working_hours(start, hours, calendar) == expected
    assert working_hours_between(start, expected, calendar) == hours


def test_office_hours_follow_the_wall_clock_over_a_dst_weekend() -> None:
    spring = add_working_hours(berlin(2025, 3, 28, 16), 2, OFFICE)
    assert spring == utc(2025, 3, 31, 8)  # Monday 10:00 CEST
    autumn = add_working_hours(berlin(2025, 10, 24, 16), 2, OFFICE)
    assert autumn == utc(2025, 10, 27, 9)  # Monday 10:00 CET
    assert working_hours_between(berlin(2025, 3, 28, 16), spring, OFFICE) == 2.0


def test_block_edge_in_skipped_or_repeated_hour() -> None:
    # Working when the wall clock reads 02:30-04:00: on the spring day that is 03:00-04:00 CEST only.
    assert next_working_moment(berlin(2025, 3, 30), GAP_BLOCK) == utc(2025, 3, 30, 1)
    assert working_hours_between(berlin(2025, 3, 30), berlin(2025, 3, 31), GAP_BLOCK) == 1.0
    # On the autumn day the clock reads 02:30-03:00 CEST, then 02:30-04:00 CET.
    assert working_hours_between(berlin(2025, 10, 26), berlin(2025, 10, 27), GAP_BLOCK) == 2.0
    assert add_working_hours(berlin(2025, 10, 26), 0.5, GAP_BLOCK) == utc(2025, 10, 26, 1)
    assert add_working_hours(berlin(2025, 10, 26), 0.75, GAP_BLOCK) == utc(2025, 10, 26, 1, 45)


# --- properties ---------------------------------------------------------------------------------------

CALENDARS = [
    OFFICE,
    OFFICE_WITH_HOLIDAYS,
    NIGHT_BERLIN,
    NIGHT_NEW_YORK,
    GAP_BLOCK,
    WorkingCalendar.always("Europe/Berlin"),
    WorkingCalendar("Asia/Kolkata", frozenset({7, 1, 2, 3, 4}), time(9, 30), time(18, 15)),
    WorkingCalendar("Australia/Lord_Howe", frozenset({6, 7}), time(1), time(3), frozenset({date(2025, 4, 5)})),
]
ZONES = [UTC, BERLIN, NEW_YORK, ZoneInfo("Australia/Lord_Howe"), timezone(timedelta(hours=-3, minutes=-30))]


def random_instant(rng: random.Random) -> datetime:
    instant = utc(2024, 1, 1) + timedelta(microseconds=rng.randrange(3 * 366 * 86_400 * 10**6))
    return instant.astimezone(rng.choice(ZONES))


def test_between_inverts_add_on_random_cases() -> None:
    rng = random.Random(20250613)
    exact_returns = 0
    for _ in range(3000):
        calendar, start = rng.choice(CALENDARS), random_instant(rng)
        hours = rng.choice([rng.uniform(0, 600), rng.uniform(0, 8), float(rng.randrange(60))])
        due = add_working_hours(start, hours, calendar)
        assert due >= start
        assert micros(working_hours_between(start, due, calendar)) == micros(hours)
        assert add_working_hours(start, hours + rng.uniform(0, 5), calendar) >= due
        end = start + timedelta(microseconds=rng.randrange(40 * 86_400 * 10**6))
        spent = working_hours_between(start, end, calendar)
        back = add_working_hours(start, spent, calendar)
        assert working_hours_between(start, back, calendar) == spent
        if spent and next_working_moment(end - timedelta(microseconds=1), calendar) < end:
            assert back == end  # end lies inside working time, so it is the unique answer
            exact_returns += 1
        elif spent:
            assert back <= end
    assert exact_returns > 300  # the exact-inverse branch really ran


def oracle_hours(start: datetime, end: datetime, calendar: WorkingCalendar) -> float:
    """Slow reference: step in UTC quarter hours, asking the local wall clock whether it is working."""
    zone, quarters, instant = ZoneInfo(calendar.time_zone), 0, start
    while instant < end:
        local = instant.astimezone(zone)
        open_day = local.isoweekday() in calendar.working_days and local.date() not in calendar.holidays
        before_end = calendar.day_end == END_OF_DAY or local.time() < calendar.day_end
        quarters += open_day and calendar.day_start <= local.time() and before_end
        instant += timedelta(minutes=15)
    return quarters / 4


def oracle_add(start: datetime, hours: float, calendar: WorkingCalendar) -> datetime:
    instant, step = start, timedelta(minutes=15)
    while oracle_hours(instant, instant + step, calendar) == 0:
        instant += step
    while hours > 0:
        hours -= oracle_hours(instant, instant + step, calendar)
        instant += step
    return instant


@pytest.mark.parametrize(
    "changes_on", [date(2025, 3, 30), date(2025, 10, 26), date(2025, 3, 9), date(2025, 11, 2), date(2025, 4, 6)]
)
def test_agrees_with_brute_force_oracle_near_clock_changes(changes_on: date) -> None:
    rng = random.Random(changes_on.toordinal())
    around = datetime.combine(changes_on, time(), UTC) - timedelta(days=3)
    for _ in range(60):
        calendar = rng.choice(CALENDARS)
        start = around + timedelta(minutes=15 * rng.randrange(4 * 24 * 5))
        end = start + timedelta(minutes=15 * rng.randrange(4 * 24 * 3))
        hours = rng.randrange(4 * 12) / 4
        assert working_hours_between(start, end, calendar) == oracle_hours(start, end, calendar)
        assert add_working_hours(start, hours, calendar) == oracle_add(start, hours, calendar)


# --- validation ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"time_zone": "Mars/Olympus_Mons"}, "unknown time zone"),
        ({"time_zone": ""}, "unknown time zone"),
        ({"working_days": frozenset()}, "must not be empty"),
        ({"working_days": frozenset({0, 1})}, r"ISO weekdays.*\[0\]"),
        ({"working_days": frozenset({5, 8})}, r"ISO weekdays.*\[8\]"),
        ({"day_end": time(9)}, "must be after day_start"),
        ({"day_end": time(8, 59)}, "must be after day_start"),
        ({"day_start": time(9, tzinfo=UTC)}, "must be naive"),
        ({"holidays": frozenset({datetime(2025, 12, 24, 12)})}, "datetime.date"),
    ],
)
def test_invalid_calendars_are_rejected(changes: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {
        "time_zone": "Europe/Berlin",
        "working_days": WEEKDAYS,
        "day_start": time(9),
        "day_end": time(17),
    }
    with pytest.raises(ValueError, match=message):
        WorkingCalendar(**{**arguments, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize("hours", [-0.5, -1e-9, math.nan, math.inf])
def test_bad_hours_are_rejected(hours: float) -> None:
    with pytest.raises(ValueError, match="hours must be"):
        add_working_hours(berlin(2025, 6, 13, 16), hours, OFFICE)


def test_naive_datetimes_are_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        add_working_hours(datetime(2025, 6, 13, 16), 1, OFFICE)
    with pytest.raises(ValueError, match="timezone-aware"):
        working_hours_between(berlin(2025, 6, 13, 16), datetime(2025, 6, 16), OFFICE)
    with pytest.raises(ValueError, match="timezone-aware"):
        next_working_moment(datetime(2025, 6, 13, 16), OFFICE)


def test_calendar_is_immutable_hashable_and_compares_by_value() -> None:
    rebuilt = WorkingCalendar("Europe/Berlin", [5, 4, 3, 2, 1], time(9), time(17))  # type: ignore[arg-type]
    assert rebuilt == OFFICE
    assert hash(rebuilt) == hash(OFFICE)
    assert isinstance(rebuilt.working_days, frozenset)
    with pytest.raises(AttributeError):
        rebuilt.day_start = time(8)  # type: ignore[misc]
