"""Cron and interval schedules: fields, time zones and the DST rule (Europe/Berlin)."""

from __future__ import annotations

import datetime as dt
from itertools import islice

import pytest

from kernelflow.deployments.schedules import CronSchedule, IntervalSchedule, parse_timezone
from kernelflow.errors import ConfigurationError

UTC = dt.timezone.utc


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def local_times(schedule: CronSchedule, after: str, n: int) -> list[str]:
    return [
        w.astimezone(schedule.zone).isoformat() for w in islice(schedule.fire_times(utc(after)), n)
    ]


class TestCronFields:
    def test_five_fields_fire_on_wall_clock_times(self):
        schedule = CronSchedule("0 6 * * *", "Europe/Berlin")
        assert local_times(schedule, "2026-01-10T12:00:00", 2) == [
            "2026-01-11T06:00:00+01:00",
            "2026-01-12T06:00:00+01:00",
        ]

    def test_six_fields_put_seconds_first(self):
        schedule = CronSchedule("*/15 * * * * *")
        times = list(islice(schedule.fire_times(utc("2026-01-01T00:00:01")), 3))
        assert [t.second for t in times] == [15, 30, 45]

    @pytest.mark.parametrize(
        ("cron", "field"),
        [
            ("61 * * * *", "minute"),
            ("0 25 * * *", "hour"),
            ("0 0 32 * *", "day of month"),
            ("0 0 * 13 *", "month"),
            ("0 0 * * 9", "day of week"),
            ("99 * * * * *", "second"),
        ],
    )
    def test_a_bad_field_is_named(self, cron, field):
        with pytest.raises(ConfigurationError, match=f"the {field} field"):
            CronSchedule(cron)

    def test_wrong_number_of_fields(self):
        with pytest.raises(ConfigurationError, match="has 3 fields"):
            CronSchedule("* * *")

    def test_unknown_time_zone(self):
        with pytest.raises(ConfigurationError, match="Unknown time zone 'Mars/Olympus'"):
            CronSchedule("0 6 * * *", "Mars/Olympus")
        with pytest.raises(ConfigurationError):
            parse_timezone("Not/AZone")


class TestBerlinDaylightSaving:
    """The documented rule: gaps shift forward by the gap, repeats fire once, first occurrence."""

    def test_spring_gap_fires_after_the_gap(self):
        # 2026-03-29: clocks jump 02:00 CET -> 03:00 CEST; 02:30 does not exist.
        schedule = CronSchedule("30 2 * * *", "Europe/Berlin")
        assert local_times(schedule, "2026-03-28T12:00:00", 2) == [
            "2026-03-29T03:30:00+02:00",
            "2026-03-30T02:30:00+02:00",
        ]

    def test_spring_gap_never_fires_one_instant_twice(self):
        schedule = CronSchedule("*/30 * * * *", "Europe/Berlin")
        times = list(islice(schedule.fire_times(utc("2026-03-29T00:00:00")), 4))
        assert len(set(times)) == len(times)
        assert [t.astimezone(schedule.zone).strftime("%H:%M%z") for t in times] == [
            "01:30+0100",
            "03:00+0200",
            "03:30+0200",
            "04:00+0200",
        ]

    def test_autumn_repeat_fires_once_at_first_occurrence(self):
        # 2026-10-25: clocks fall back 03:00 CEST -> 02:00 CET; 02:30 happens twice.
        schedule = CronSchedule("30 2 * * *", "Europe/Berlin")
        assert local_times(schedule, "2026-10-24T12:00:00", 2) == [
            "2026-10-25T02:30:00+02:00",
            "2026-10-26T02:30:00+01:00",
        ]

    def test_autumn_hourly_times_are_increasing_and_unique(self):
        schedule = CronSchedule("0 * * * *", "Europe/Berlin")
        times = list(islice(schedule.fire_times(utc("2026-10-24T22:30:00")), 5))
        assert times == sorted(set(times))
        assert [t.astimezone(schedule.zone).strftime("%H%z") for t in times] == [
            "01+0200",
            "02+0200",
            "03+0100",
            "04+0100",
            "05+0100",
        ]


class TestInterval:
    def test_every_n_seconds_from_the_anchor(self):
        schedule = IntervalSchedule(90, anchor=utc("2026-01-01T00:00:00"))
        times = list(islice(schedule.fire_times(utc("2026-01-01T00:02:00")), 2))
        assert times == [utc("2026-01-01T00:03:00"), utc("2026-01-01T00:04:30")]

    def test_between_is_half_open(self):
        schedule = IntervalSchedule(60, anchor=utc("2026-01-01T00:00:00"))
        found = schedule.between(utc("2026-01-01T00:01:00"), utc("2026-01-01T00:03:00"))
        assert found == [utc("2026-01-01T00:02:00"), utc("2026-01-01T00:03:00")]

    @pytest.mark.parametrize("bad", [0, -5, "often"])
    def test_interval_must_be_positive_seconds(self, bad):
        with pytest.raises(ConfigurationError, match="Interval must be"):
            IntervalSchedule(bad)
