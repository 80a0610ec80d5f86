"""Working-hours calendar for SLA due times (pure Python: no models, no database).

Definition: an instant is *working time* when the calendar's local wall clock shows a working day
that is not a holiday and a time in ``[day_start, day_end)``.  Durations are real elapsed time, so a
block that spans a DST change is shorter or longer than its nominal wall-clock length (00:00-06:00 in
Europe/Berlin is 5 h on the spring-forward Sunday and 7 h on the fall-back Sunday).  Wall times that
do not exist (the skipped hour) are simply never shown by the clock; a repeated hour counts twice.

Why it is fast: while the UTC offset stays constant, local wall time is UTC plus a constant, and the
working time up to a wall-clock moment is closed-form integer arithmetic (whole weeks times working
days, minus holidays found by bisection).  Only UTC-offset changes split the computation, so a 500 h
window costs a handful of O(1) steps instead of a walk over days or minutes.  All arithmetic is in
integer microseconds, which makes ``add_working_hours`` and ``working_hours_between`` exact inverses.
"""

from __future__ import annotations

import bisect
import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "END_OF_DAY",
    "WorkingCalendar",
    "add_working_hours",
    "next_working_moment",
    "working_hours_between",
]

END_OF_DAY = time.max
"""``day_end`` value meaning 24:00 (midnight at the end of the day): ``time`` cannot express 24:00."""

_US_PER_SECOND = 1_000_000
_US_PER_HOUR = 3600 * _US_PER_SECOND
_US_PER_DAY = 24 * _US_PER_HOUR
_SECOND = timedelta(seconds=1)
_PROBE_STEP = timedelta(hours=1)
_ALL_DAYS = frozenset(range(1, 8))
_T = TypeVar("_T")


def _time_us(value: time) -> int:
    """Microseconds since midnight: integer arithmetic keeps add/between exact inverses."""
    return ((value.hour * 60 + value.minute) * 60 + value.second) * _US_PER_SECOND + value.microsecond


@dataclass(frozen=True, slots=True)
class _Schedule:
    """The weekly pattern as wall-clock arithmetic, blind to DST (callers handle UTC offsets).

    ``value(x)`` is the working time, in microseconds, that the wall clock accumulates from
    0001-01-01 (a Monday, ordinal 1) up to the naive local datetime ``x``.  It is non-decreasing
    and piecewise linear, so differences give working time and ``earliest`` inverts it.
    """

    start: int
    end: int
    per_week: int
    prefix: tuple[int, ...]
    positions: tuple[int, ...]
    holidays: tuple[int, ...]

    @property
    def block(self) -> int:
        return self.end - self.start

    @classmethod
    def build(cls, days: frozenset[int], start: time, end: time, holidays: frozenset[date]) -> _Schedule:
        prefix = tuple(sum(1 for day in days if day <= count) for count in range(8))
        off_days = sorted(d.toordinal() for d in holidays if d.isoweekday() in days)
        # END_OF_DAY is 24:00, a full day, so a 24 h block loses no microsecond before midnight.
        end_us = _US_PER_DAY if end == END_OF_DAY else _time_us(end)
        positions = tuple(sorted(d - 1 for d in days))
        return cls(_time_us(start), end_us, len(days), prefix, positions, tuple(off_days))

    def is_working_day(self, ordinal: int) -> bool:
        weekday = (ordinal - 1) % 7
        if self.prefix[weekday + 1] == self.prefix[weekday]:
            return False
        index = bisect.bisect_left(self.holidays, ordinal)
        return index == len(self.holidays) or self.holidays[index] != ordinal

    def days_before(self, ordinal: int) -> int:
        """Working days strictly before ``ordinal``: whole weeks arithmetically, holidays by bisection."""
        weeks, rest = divmod(ordinal - 1, 7)
        return weeks * self.per_week + self.prefix[rest] - bisect.bisect_left(self.holidays, ordinal)

    def nth_day(self, index: int) -> int:
        """Ordinal of the working day with 0-based ``index``; each pass skips holidays met so far."""
        plain = index
        while True:
            weeks, rest = divmod(plain, self.per_week)
            ordinal = 1 + weeks * 7 + self.positions[rest]
            skipped = bisect.bisect_right(self.holidays, ordinal)
            if plain == index + skipped:
                return ordinal
            plain = index + skipped

    def value(self, wall: datetime) -> int:
        ordinal = wall.toordinal()
        total = self.block * self.days_before(ordinal)
        if self.is_working_day(ordinal):
            total += min(max(_time_us(wall.time()), self.start), self.end) - self.start
        return total

    def earliest(self, target: int) -> datetime:
        """Smallest wall time whose value is ``target`` (> 0): a block end, not the next block start."""
        days, rest = divmod(target, self.block)
        if rest:
            return _wall_at(self.nth_day(days), self.start + rest)
        return _wall_at(self.nth_day(days - 1), self.end)

    def next_working(self, wall: datetime) -> datetime:
        """``wall`` itself if it is inside a block, else the start of the next block."""
        days, rest = divmod(self.value(wall), self.block)
        return wall if rest else _wall_at(self.nth_day(days), self.start)


def _wall_at(ordinal: int, micros: int) -> datetime:
    return datetime.fromordinal(ordinal) + timedelta(microseconds=micros)


def _load_zone(key: str) -> ZoneInfo:
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError, OSError, TypeError) as exc:
        raise ValueError(f"unknown time zone {key!r}: use an IANA name such as 'Europe/Berlin'") from exc


def _check_days(days: frozenset[int]) -> None:
    if not days:
        raise ValueError("working_days must not be empty: a calendar without working days never reaches a due time")
    invalid = sorted((d for d in days if type(d) is not int or d not in _ALL_DAYS), key=repr)
    if invalid:
        raise ValueError(f"working_days must be ISO weekdays 1 (Monday) .. 7 (Sunday), got {invalid!r}")


def _check_times(start: time, end: time) -> None:
    if not isinstance(start, time) or not isinstance(end, time):
        raise ValueError("day_start and day_end must be datetime.time values")
    if start.tzinfo is not None or end.tzinfo is not None:
        raise ValueError("day_start and day_end are wall-clock times in time_zone and must be naive")
    if end <= start:
        raise ValueError(f"day_end ({end}) must be after day_start ({start}); use END_OF_DAY (time.max) for 24:00")


def _check_holidays(holidays: frozenset[date]) -> None:
    wrong = [h for h in holidays if isinstance(h, datetime) or not isinstance(h, date)]
    if wrong:
        raise ValueError(f"holidays must be datetime.date values in the calendar's zone, got {wrong!r}")


@dataclass(frozen=True)
class WorkingCalendar:
    """When SLA clocks run: one daily block ``[day_start, day_end)`` of local wall time on working days.

    ``day_end == END_OF_DAY`` (``time.max``) means 24:00, so ``always()`` covers every instant and
    23 h / 25 h DST days count fully.  Holidays are local dates; only those on working days matter.
    """

    time_zone: str
    working_days: frozenset[int]
    day_start: time
    day_end: time
    holidays: frozenset[date] = frozenset()
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)
    _schedule: _Schedule = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Accept any iterable but store frozensets so the calendar stays hashable and immutable.
        object.__setattr__(self, "working_days", _frozen(self.working_days))
        object.__setattr__(self, "holidays", _frozen(self.holidays))
        _check_days(self.working_days)
        _check_times(self.day_start, self.day_end)
        _check_holidays(self.holidays)
        object.__setattr__(self, "_zone", _load_zone(self.time_zone))
        schedule = _Schedule.build(self.working_days, self.day_start, self.day_end, self.holidays)
        object.__setattr__(self, "_schedule", schedule)

    @classmethod
    def always(cls, time_zone: str = "UTC") -> WorkingCalendar:
        """24x7: every instant is working time, so working hours equal elapsed hours."""
        return cls(time_zone, _ALL_DAYS, time.min, END_OF_DAY)


def _frozen(values: Iterable[_T]) -> frozenset[_T]:
    return values if isinstance(values, frozenset) else frozenset(values)


# --- UTC offsets -----------------------------------------------------------------------------------


def _offset(zone: ZoneInfo, instant: datetime) -> timedelta:
    offset = instant.astimezone(zone).utcoffset()
    assert offset is not None
    return offset


def _wall(instant: datetime, offset: timedelta) -> datetime:
    return (instant + offset).replace(tzinfo=None)


def _instant(wall: datetime, offset: timedelta) -> datetime:
    return (wall - offset).replace(tzinfo=UTC)


def _bisect_change(zone: ZoneInfo, low: datetime, high: datetime, before: timedelta) -> datetime:
    """First whole second in (low, high] whose offset differs from ``before`` (tz data uses whole seconds)."""
    while high - low > _SECOND:
        middle = low + timedelta(seconds=int((high - low).total_seconds()) // 2)
        if _offset(zone, middle) == before:
            low = middle
        else:
            high = middle
    return high


@functools.lru_cache(maxsize=2048)
def _changes_in_year(key: str, year: int) -> tuple[datetime, ...]:
    """UTC instants in ``year`` where the zone's offset changes.

    zoneinfo does not expose its transition table, so probe hourly and bisect to the second; cached
    per zone and year, this costs a few milliseconds once.  (Two changes less than an hour apart that
    cancel out would be missed; tz data has none.)
    """
    zone = ZoneInfo(key)
    begin = datetime(year, 1, 1, tzinfo=UTC)
    end = datetime(year + 1, 1, 1, tzinfo=UTC)
    changes: list[datetime] = []
    low, before = begin - _SECOND, _offset(zone, begin - _SECOND)
    while low < end - _SECOND:
        probe = min(low + _PROBE_STEP, end - _SECOND)
        while _offset(zone, probe) != before:
            low = _bisect_change(zone, low, probe, before)
            changes.append(low)
            before = _offset(zone, low)
        low = probe
    return tuple(changes)


def _first_change(zone: ZoneInfo, after: datetime, limit: datetime) -> datetime | None:
    """The first offset change in (after, limit], or None when the offset holds throughout."""
    for year in range(after.year, limit.year + 1):
        changes = _changes_in_year(zone.key, year)
        index = bisect.bisect_right(changes, after)
        if index < len(changes):
            return changes[index] if changes[index] <= limit else None
    return None


# --- public API ------------------------------------------------------------------------------------


def _as_utc(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")
    return value.astimezone(UTC)


def _hours_to_us(hours: float) -> int:
    if not math.isfinite(hours) or hours < 0:
        raise ValueError(f"hours must be a finite number >= 0, got {hours!r}")
    return round(hours * _US_PER_HOUR)


def next_working_moment(at: datetime, calendar: WorkingCalendar) -> datetime:
    """``at`` (in UTC) if it is working time, else the start of the next working stretch."""
    instant, schedule, zone = _as_utc(at, "at"), calendar._schedule, calendar._zone
    while True:
        offset = _offset(zone, instant)
        candidate = _instant(schedule.next_working(_wall(instant, offset)), offset)
        change = _first_change(zone, instant, candidate)
        if change is None:
            return candidate
        instant = change  # the offset changes before the candidate: re-read the wall clock from there


def add_working_hours(start: datetime, hours: float, calendar: WorkingCalendar) -> datetime:
    """The earliest UTC instant by which ``hours`` of working time have elapsed since ``start``.

    Counting begins at the next working moment, which is also the answer for ``hours == 0``.  A
    window that fills a block exactly ends at that block's end (Friday 17:00), not at the next start.
    """
    remaining = _hours_to_us(hours)
    instant = next_working_moment(start, calendar)
    schedule, zone = calendar._schedule, calendar._zone
    while remaining:
        offset = _offset(zone, instant)
        reached = schedule.value(_wall(instant, offset))
        candidate = _instant(schedule.earliest(reached + remaining), offset)
        change = _first_change(zone, instant, candidate)
        if change is None or change == candidate:
            return candidate
        remaining -= schedule.value(_wall(change, offset)) - reached
        instant = change
    return instant


def working_hours_between(start: datetime, end: datetime, calendar: WorkingCalendar) -> float:
    """Working hours in ``[start, end)``; 0.0 when ``end <= start``.  Inverse of ``add_working_hours``."""
    instant, stop = _as_utc(start, "start"), _as_utc(end, "end")
    schedule, zone, total = calendar._schedule, calendar._zone, 0
    while instant < stop:
        offset = _offset(zone, instant)
        segment_end = _first_change(zone, instant, stop) or stop
        total += schedule.value(_wall(segment_end, offset)) - schedule.value(_wall(instant, offset))
        instant = segment_end
    return total / _US_PER_HOUR
