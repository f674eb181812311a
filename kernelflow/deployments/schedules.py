"""When a deployment fires: cron (croniter) and interval schedules in a time zone (zoneinfo).

Cron expressions have 5 fields (minute hour day-of-month month day-of-week),
or 6 with seconds first (second minute hour ...), as Quartz and Spring write them.

Daylight saving time, one rule: a cron schedule fires at *wall-clock* times
in its time zone.

* A wall-clock time that does not exist (the spring gap, e.g. 02:30 on the
  last Sunday of March in Europe/Berlin) fires at the same offset after the
  gap: 02:30 becomes 03:30 local. Two times that land on the same instant
  fire once.
* A wall-clock time that happens twice (the autumn repeat, 02:30 on the
  last Sunday of October) fires once, at its first occurrence.

Interval schedules are in absolute time: every N seconds from their anchor,
whatever the clocks do.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kernelflow.errors import ConfigurationError

__all__ = [
    "CronSchedule",
    "IntervalSchedule",
    "Schedule",
    "describe_plainly",
    "parse_timezone",
    "preview",
]

UTC = dt.timezone.utc
_FIELDS_5 = ("minute", "hour", "day of month", "month", "day of week")
_FIELDS_6 = ("second", *_FIELDS_5)
_WILDCARDS_5 = ["*"] * 5
#: The shortest interval schedule, in seconds.
MIN_INTERVAL = 0.1
#: A date from which a cron expression's next fire is looked up, to refuse one that never fires.
_PROBE = dt.datetime(2000, 1, 1)


def parse_timezone(name: str | None) -> ZoneInfo:
    """A ``ZoneInfo`` for ``name`` (default UTC), with a clear error for unknown names."""
    name = name or "UTC"
    try:
        return ZoneInfo(name)
    # OSError: a name that is a folder of the tz database ("Europe") or unreadable.
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ConfigurationError(
            f"Unknown time zone {name!r}; use an IANA name such as 'Europe/Berlin' or 'UTC'."
        ) from None


class Schedule:
    """Base class: yields fire times (aware, UTC) after a given instant."""

    def fire_times(self, after: dt.datetime) -> Iterator[dt.datetime]:
        """Fire times strictly after ``after`` (an aware datetime), in order."""
        raise NotImplementedError

    def next_after(self, after: dt.datetime) -> dt.datetime:
        """The first fire time strictly after ``after``.

        Raises
        ------
        ConfigurationError
            The schedule fires no more after ``after`` (its dates run out).
        """
        for when in self.fire_times(after):
            return when
        raise ConfigurationError(f"{self.describe()} fires no more after {after.isoformat()}.")

    def between(self, start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
        """Fire times in ``(start, end]``."""
        found = []
        for when in self.fire_times(start):
            if when > end:
                break
            found.append(when)
        return found

    def describe(self) -> str:
        """A one-line description for listings."""
        raise NotImplementedError


class CronSchedule(Schedule):
    """Fires on a cron expression's wall-clock times in ``timezone``.

    Raises
    ------
    ConfigurationError
        For an invalid expression (naming the bad field) or an unknown time zone.
    """

    def __init__(self, cron: str, timezone: str | None = None) -> None:
        from croniter import croniter

        self.cron = " ".join(str(cron).split())
        self.timezone = timezone or "UTC"
        self.zone = parse_timezone(self.timezone)
        fields = self.cron.split(" ")
        if len(fields) not in (5, 6):
            raise ConfigurationError(
                f"Cron expression {cron!r} has {len(fields)} fields; use 5 (minute hour day month "
                "weekday) or 6 with seconds first."
            )
        self.with_seconds = len(fields) == 6
        if not croniter.is_valid(self.cron, second_at_beginning=self.with_seconds):
            raise ConfigurationError(_explain_bad_cron(self.cron, fields))
        try:
            # Valid fields can still name no date at all (``0 0 31 2 *``, February 31st).
            croniter(self.cron, _PROBE, second_at_beginning=self.with_seconds).get_next(dt.datetime)
        except (ValueError, OverflowError, KeyError):
            raise ConfigurationError(
                f"Cron expression {cron!r} never fires (no date matches all its fields); "
                "check the day of month, month and weekday fields."
            ) from None

    def fire_times(self, after: dt.datetime) -> Iterator[dt.datetime]:
        from croniter import croniter

        local_after = after.astimezone(self.zone).replace(tzinfo=None)
        # Iterate wall-clock (naive) times, then place each in the zone; see
        # the module docstring for how gaps and repeats resolve.
        it = croniter(self.cron, local_after, second_at_beginning=self.with_seconds)
        last: dt.datetime | None = None
        while True:
            try:
                naive = it.get_next(dt.datetime)
            except (ValueError, OverflowError):
                return  # no later date matches (croniter's search ends): no more fires
            when = naive.replace(tzinfo=self.zone, fold=0).astimezone(UTC)
            if when <= after or (last is not None and when <= last):
                continue
            last = when
            yield when

    def describe(self) -> str:
        return f"cron '{self.cron}' ({self.timezone})"


class IntervalSchedule(Schedule):
    """Fires every ``interval`` seconds from ``anchor`` (absolute time)."""

    def __init__(
        self,
        interval: float | dt.timedelta,
        anchor: dt.datetime | None = None,
        timezone: str | None = None,
    ) -> None:
        from kernelflow._durations import check_seconds

        # Finite and bounded: a NaN or infinite interval would break every later date.
        self.interval = check_seconds(interval, "Interval")
        if self.interval < MIN_INTERVAL:
            # Dates have microseconds: a shorter step would spin on one instant.
            raise ConfigurationError(
                f"Interval must be at least {MIN_INTERVAL:g} seconds, got {interval!r}; "
                "write e.g. 1, 30s or 5m."
            )
        self.timezone = timezone or "UTC"
        parse_timezone(self.timezone)
        self.anchor = (anchor or dt.datetime(2000, 1, 1, tzinfo=UTC)).astimezone(UTC)

    def fire_times(self, after: dt.datetime) -> Iterator[dt.datetime]:
        elapsed = (after - self.anchor).total_seconds()
        k = max(0, int(elapsed // self.interval) + 1)
        while True:
            try:
                when = self.anchor + dt.timedelta(seconds=k * self.interval)
            except OverflowError:
                return  # past year 9999: no more fires
            if when > after:
                yield when
            k += 1

    def describe(self) -> str:
        return f"every {self.interval:g} s"


def _explain_bad_cron(cron: str, fields: list[str]) -> str:
    from croniter import croniter

    names = _FIELDS_6 if len(fields) == 6 else _FIELDS_5
    for i, (name, value) in enumerate(zip(names, fields, strict=True)):
        probe = ["*"] * len(fields)
        probe[i] = value
        if not croniter.is_valid(" ".join(probe), second_at_beginning=len(fields) == 6):
            return (
                f"Invalid cron expression {cron!r}: the {name} field {value!r} is not valid; "
                "see 'man 5 crontab' for the syntax."
            )
    return f"Invalid cron expression {cron!r}; see 'man 5 crontab' for the syntax."


# --- previews: what a schedule means, in words and in its next fire times ------------------------
#: The most fire times :func:`preview` lists.
MAX_PREVIEW = 20
_DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")


def preview(
    schedule: Schedule, count: int = 5, after: dt.datetime | None = None
) -> list[dt.datetime]:
    """The next ``count`` fire times of ``schedule`` after ``after`` (default now), in its zone.

    Each is an aware datetime in the schedule's time zone (its offset shows
    daylight saving time). Fewer are returned when the schedule's dates run out.
    """
    if not 1 <= count <= MAX_PREVIEW:
        raise ConfigurationError(f"count must be between 1 and {MAX_PREVIEW}, got {count!r}.")
    zone = parse_timezone(getattr(schedule, "timezone", None))
    after = after or dt.datetime.now(UTC)
    found = []
    for when in schedule.fire_times(after):
        found.append(when.astimezone(zone))
        if len(found) >= count:
            break
    return found


def describe_plainly(schedule: Schedule) -> str:
    """The schedule in plain words: "Every 10 minutes", "Every day at 06:00 (Europe/Berlin)".

    Common cron forms are put in words (every N minutes, hourly at a minute,
    daily or on given weekdays or days of the month at a time); any other
    expression is named as it is, and the next fire times say the rest.
    """
    if isinstance(schedule, IntervalSchedule):
        return f"Every {_duration_words(schedule.interval)}"
    if isinstance(schedule, CronSchedule):
        words = _cron_words(schedule.cron.split(" "))
        where = f" ({schedule.timezone})"
        return (words or f"On cron schedule '{schedule.cron}'") + where
    return schedule.describe()


def _duration_words(seconds: float) -> str:
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute"), (1, "second")):
        if seconds >= size and seconds % size == 0:
            n = int(seconds // size)
            return unit if n == 1 else f"{n} {unit}s"
    return f"{seconds:g} seconds"


def _number(text: str, low: int, high: int) -> int | None:
    return int(text) if text.isdigit() and low <= int(text) <= high else None


def _cron_words(fields: list[str]) -> str | None:
    """Words for the common 5-field forms (a 6-field one only with its seconds at 0)."""
    if len(fields) == 6:
        if fields[0] != "0":
            return None
        fields = fields[1:]
    minute, hour, dom, month, dow = fields
    if month != "*":
        return None
    if (minute, hour, dom, dow) == ("*", "*", "*", "*"):
        return "Every minute"
    if minute.startswith("*/") and (hour, dom, dow) == ("*", "*", "*"):
        step = _number(minute[2:], 1, 59)
        return None if step is None else f"Every {_duration_words(step * 60)}"
    m = _number(minute, 0, 59)
    if m is None:
        return None
    if (hour, dom, dow) == ("*", "*", "*"):
        return f"Every hour at minute {m}"
    if hour.startswith("*/") and (dom, dow) == ("*", "*"):
        step = _number(hour[2:], 1, 23)
        return None if step is None else f"Every {_duration_words(step * 3600)} at minute {m}"
    hours = [_number(h, 0, 23) for h in hour.split(",")]
    if any(h is None for h in hours):
        return None
    at = " and ".join(f"{h:02d}:{m:02d}" for h in hours if h is not None)
    if dom == "*" and dow == "*":
        return f"Every day at {at}"
    if dom == "*":
        days = _weekday_words(dow)
        return None if days is None else f"Every {days} at {at}"
    if dow == "*":
        day = _number(dom, 1, 31)
        return None if day is None else f"On day {day} of every month at {at}"
    return None


def _weekday_words(dow: str) -> str | None:
    if dow in ("1-5", "MON-FRI", "mon-fri"):
        return "weekday (Monday to Friday)"
    names = []
    for part in dow.split(","):
        n = _number(part, 0, 7)
        if n is None:
            return None
        names.append(_DAYS[n % 7])
    return ", ".join(names)
