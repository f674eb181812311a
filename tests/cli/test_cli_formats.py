"""Parsing ``--older-than`` durations and formatting table cells."""

from __future__ import annotations

import datetime as dt
import re

import click
import pandas as pd
import pytest

from kernelflow.cli.cache import DURATION
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
    assert DURATION.convert(text, None, None) == dt.timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "d", "7x", "-1d", "7 days", "h1", "nan", "1e3s"])
def test_parse_duration_rejects(text):
    wanted = "is not a duration; write e.g. 30s, 15m, 2h, 7d or 1w"
    with pytest.raises(click.BadParameter, match=re.escape(wanted)):
        DURATION.convert(text, None, None)


@pytest.mark.parametrize("text", ["7", "90", "1d2"])
def test_a_bare_number_needs_a_unit(text):
    # --older-than deletes data: "90" is more likely meant as days than seconds.
    with pytest.raises(click.BadParameter, match=re.escape("has no unit; write e.g. 30s, 15m")):
        DURATION.convert(text, None, None)


def test_longer_than_a_century_is_refused():
    with pytest.raises(click.BadParameter, match="longer than 100 years"):
        DURATION.convert("99999999999w", None, None)


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0.0002, "<1 ms"),
        (0.004, "4 ms"),
        (12.5, "12.5 s"),
        (95, "1 min 35 s"),
        (7322, "2 h 2 min"),
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
