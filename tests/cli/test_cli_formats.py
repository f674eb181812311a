"""Parsing ``--older-than`` durations and formatting table cells."""

from __future__ import annotations

import datetime as dt
import re

import pandas as pd
import pytest

from kernelflow.cli.cache import parse_duration
from kernelflow.cli.render import format_cell, format_duration, format_timestamp, is_missing


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("15m", 900),
        ("2h", 7200),
        ("7d", 604800),
        ("1w", 604800),
        ("1h30m", 5400),
        ("1.5h", 5400),
        (" 2 H ", 7200),
        ("0s", 0),
    ],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == dt.timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "7", "d", "7x", "-1d", "1d2", "7 days", "h1"])
def test_parse_duration_rejects(text):
    with pytest.raises(ValueError, match=re.escape("is not a duration; use e.g. 30s, 15m, 2h")):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0.0002, "<1ms"),
        (0.004, "4ms"),
        (12.5, "12.50s"),
        (95, "1m35s"),
        (7322, "2h02m"),
        (None, ""),
        (float("nan"), ""),
    ],
)
def test_format_duration(seconds, shown):
    assert format_duration(seconds) == shown


def test_timestamps_show_local_time_to_the_second():
    instant = pd.Timestamp("2025-06-01 12:00:07.123456", tz="UTC")
    expected = instant.to_pydatetime().astimezone().strftime("%Y-%m-%d %H:%M:%S")
    assert format_timestamp(instant) == expected
    assert format_timestamp(pd.NaT) == ""


def test_missing_values():
    assert all(is_missing(v) for v in (None, float("nan"), pd.NA, pd.NaT))
    assert not any(is_missing(v) for v in (0, "", [1], False))


def test_cells_by_column():
    assert str(format_cell("cached", True)) == "yes" and str(format_cell("cached", False)) == ""
    assert str(format_cell("state_name", "Failed")) == "Failed"
    assert format_cell("state_name", "Failed").style == "red"
    assert str(format_cell("tags", ["a", "b"])) == "a, b"
    assert str(format_cell("message", "[bold]x[/bold]")) == "[bold]x[/bold]"  # not markup
