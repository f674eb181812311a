"""How kernelflow shows sizes, durations and ages: one function each, everywhere.

The ``%kf`` magics, the CLI, the widgets and the server extension all print
through these three functions, so one cache entry or one run reads the same in
every view. This module imports nothing of kernelflow (and nothing heavy), so
any layer may use it.

- :func:`format_bytes`: ``812 B``, ``4.1 KiB``, ``80.0 MiB``.
- :func:`format_duration`: ``850 ms``, ``4.2 s``, ``3 min 5 s``, ``2 h 1 min``.
- :func:`format_ago`: ``just now``, ``12 s ago``, ``3 min ago``, ``5 h ago``, ``4 days ago``.

A missing value (None, NaN, pandas' NA/NaT, text that is not a number) formats
as the empty string, so a table cell stays blank rather than saying ``nan``.
"""

from __future__ import annotations

import math
import time
from typing import Any

__all__ = ["format_ago", "format_bytes", "format_duration"]

_BINARY_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def _number(value: Any) -> float | None:
    """``value`` as a finite float, or None when it is missing or not a number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):  # pandas' NA raises TypeError, text ValueError
        return None
    return number if math.isfinite(number) else None


def format_bytes(size: Any) -> str:
    """A size in bytes, 1024-based: ``812 B``, ``4.1 KiB``, ``80.0 MiB``, ``1.2 GiB``.

    One convention for every view: powers of 1024, named with the IEC units
    (``KiB``, ``MiB``...). The sizes shown are of files on disk, which ``du -h``,
    ``ls -h`` and the file managers users compare them with count in 1024s; the
    ``i`` in the unit says so, where ``KB`` left readers guessing (and the
    1000-based ``kB`` made one entry show two different sizes).

    Parameters
    ----------
    size
        A number of bytes; None or NaN (size not recorded) gives ``""``.

    Examples
    --------
    >>> format_bytes(1023), format_bytes(1024), format_bytes(5 * 1024**3)
    ('1023 B', '1.0 KiB', '5.0 GiB')
    """
    value = _number(size)
    if value is None:
        return ""
    value = max(0.0, value)
    if value < 1024:
        return f"{value:.0f} B"
    for unit in _BINARY_UNITS[1:]:
        value /= 1024
        # Compare the rounded figure, so 1023.97 KiB reads 1.0 MiB, not 1024.0 KiB.
        if round(value, 1) < 1024 or unit == _BINARY_UNITS[-1]:
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable: the last unit always returns")


def format_duration(seconds: Any) -> str:
    """A short duration: ``<1 ms``, ``850 ms``, ``4.2 s``, ``3 min 5 s``, ``2 h 1 min``.

    Under a second in whole milliseconds, under a minute in tenths of a second,
    under an hour in minutes and seconds, then in hours and minutes. Each step
    compares the rounded figure, so 59.97 s reads ``1 min 0 s`` rather than
    ``60.0 s``. A negative duration (clocks that disagree) reads as 0.

    Parameters
    ----------
    seconds
        A number of seconds; None or NaN (a run still going) gives ``""``.

    Examples
    --------
    >>> format_duration(0.85), format_duration(4.2), format_duration(185), format_duration(7260)
    ('850 ms', '4.2 s', '3 min 5 s', '2 h 1 min')
    """
    value = _number(seconds)
    if value is None:
        return ""
    value = max(0.0, value)
    millis = round(value * 1000)
    if millis < 1000:
        return "<1 ms" if millis == 0 and value > 0 else f"{millis} ms"
    tenths = round(value * 10)
    if tenths < 600:
        return f"{tenths / 10:.1f} s"
    whole = round(value)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    minutes = round(value / 60)
    return f"{minutes // 60} h {minutes % 60} min"


def format_ago(when: Any, now: float | None = None) -> str:
    """How long ago ``when`` was: ``just now``, ``12 s ago``, ``3 min ago``, ``4 days ago``.

    Each step counts whole units, rounded down, and moves on at the next unit:
    seconds under a minute, minutes under an hour, hours under two days, then
    days. A time under a second ago, or in the future (another machine's
    clock), is ``just now``.

    Parameters
    ----------
    when
        Epoch seconds, or a ``datetime``/``Timestamp`` (anything with
        ``.timestamp()``); None or NaN gives ``""``.
    now
        Epoch seconds to count from (default: the current time).

    Examples
    --------
    >>> format_ago(1000.0, now=1000.0 + 3 * 3600 + 59 * 60)
    '3 h ago'
    """
    stamp = when
    if hasattr(when, "timestamp"):
        try:
            stamp = when.timestamp()
        except ValueError:  # pandas' NaT: no time recorded
            return ""
    value = _number(stamp)
    if value is None:
        return ""
    elapsed = (time.time() if now is None else now) - value
    if elapsed < 1:
        return "just now"
    if elapsed < 60:
        return f"{int(elapsed)} s ago"
    if elapsed < 3600:
        return f"{int(elapsed // 60)} min ago"
    if elapsed < 2 * 86400:
        return f"{int(elapsed // 3600)} h ago"
    days = int(elapsed // 86400)
    return f"{days} days ago"
