"""The three formatters every view shares, at their boundaries (kernelflow._format)."""

from __future__ import annotations

import datetime as dt
import time

import pandas as pd
import pytest

from kernelflow._format import format_ago, format_bytes, format_duration


class TestFormatBytes:
    @pytest.mark.parametrize(
        ("size", "shown"),
        [
            (0, "0 B"),
            (1023, "1023 B"),
            (1024, "1.0 KiB"),
            (1536, "1.5 KiB"),
            (52_000, "50.8 KiB"),
            # Just under 1 MiB rounds to 1024.0 KiB: shown in the next unit instead.
            (1024**2 - 1, "1.0 MiB"),
            (1024**2, "1.0 MiB"),
            (80 * 1024**2, "80.0 MiB"),
            (5 * 1024**3, "5.0 GiB"),
            (3 * 1024**4, "3.0 TiB"),
            (5000 * 1024**4, "5000.0 TiB"),
            (-5, "0 B"),
        ],
    )
    def test_sizes_count_in_1024s_with_iec_units(self, size, shown):
        assert format_bytes(size) == shown

    @pytest.mark.parametrize("missing", [None, float("nan"), pd.NA, "", "big", True])
    def test_a_missing_size_is_blank(self, missing):
        assert format_bytes(missing) == ""


class TestFormatDuration:
    @pytest.mark.parametrize(
        ("seconds", "shown"),
        [
            (0, "0 ms"),
            (0.0002, "<1 ms"),
            (0.0005, "<1 ms"),  # rounds half to even: 0 ms, and it is not nothing
            (0.004, "4 ms"),
            (0.85, "850 ms"),
            (0.9994, "999 ms"),
            (0.9996, "1.0 s"),  # would be "1000 ms"
            (1, "1.0 s"),
            (4.24, "4.2 s"),
            (59.94, "59.9 s"),
            (59.96, "1 min 0 s"),  # would be "60.0 s"
            (60, "1 min 0 s"),
            (185, "3 min 5 s"),
            (3599.4, "59 min 59 s"),
            (3599.6, "1 h 0 min"),  # would be "59 min 60 s"
            (7260, "2 h 1 min"),
            (7322, "2 h 2 min"),
            (90_000, "25 h 0 min"),
            (-3, "0 ms"),
        ],
    )
    def test_each_unit_starts_where_the_last_one_ends(self, seconds, shown):
        assert format_duration(seconds) == shown

    @pytest.mark.parametrize("missing", [None, float("nan"), float("inf"), pd.NA, pd.NaT])
    def test_a_missing_duration_is_blank(self, missing):
        assert format_duration(missing) == ""


class TestFormatAgo:
    NOW = 1_750_000_000.0

    @pytest.mark.parametrize(
        ("elapsed", "shown"),
        [
            (0, "just now"),
            (0.99, "just now"),
            (-30, "just now"),  # another machine's clock is ahead
            (1, "1 s ago"),
            (59.9, "59 s ago"),
            (60, "1 min ago"),
            (3599, "59 min ago"),
            (3600, "1 h ago"),
            (2 * 86400 - 1, "47 h ago"),
            (2 * 86400, "2 days ago"),
            (400 * 86400, "400 days ago"),
        ],
    )
    def test_whole_units_rounded_down(self, elapsed, shown):
        assert format_ago(self.NOW - elapsed, now=self.NOW) == shown

    def test_datetimes_and_timestamps_are_read_as_instants(self):
        when = dt.datetime.fromtimestamp(self.NOW - 125, tz=dt.timezone.utc)
        assert format_ago(when, now=self.NOW) == "2 min ago"
        assert format_ago(pd.Timestamp(when), now=self.NOW) == "2 min ago"

    def test_counts_from_the_current_time_by_default(self):
        assert format_ago(time.time() - 3 * 3600 - 30) == "3 h ago"

    @pytest.mark.parametrize("missing", [None, float("nan"), pd.NaT, pd.NA])
    def test_a_missing_time_is_blank(self, missing):
        assert format_ago(missing, now=self.NOW) == ""
