"""Durations: one parser and one check for every number of seconds kernelflow takes.

A duration reaches kernelflow as text (a CLI flag, a magic flag, a
``KERNELFLOW_*`` variable, a value in ``kernelflow.yaml``) or as a number (the
Python API, a REST body, a deployment read back from the store). Both kinds go
through this module, so every entry point refuses the same values with the
same one-line :class:`~kernelflow.errors.ConfigurationError`: NaN, infinities,
negatives, zero where zero means nothing, booleans, and values so large that
a date computed from them would overflow later, inside the scheduler.

Text is a plain number of seconds (``90``, ``2.5``) or amounts with units
(``30s``, ``5m``, ``2h``, ``1d``, ``1w``, ``250ms``, ``1h30m``); words such as
``nan`` or ``inf`` and exponents are not numbers here.
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
import re
from typing import Any

from kernelflow.errors import ConfigurationError

__all__ = ["EXAMPLES", "MAX_SECONDS", "check_seconds", "parse_duration", "parse_seconds"]

#: The longest duration accepted (100 years): far beyond any schedule or timeout,
#: and far inside what ``datetime`` can add to a date.
MAX_SECONDS = 100 * 365 * 86400.0

#: What to write, for messages.
EXAMPLES = "e.g. 90, 2.5, 30s, 5m, 2h, 1d or 1h30m"

_AMOUNT = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|sec|min|s|m|h|d|w)?", re.IGNORECASE)
_UNIT_SECONDS = {
    "ms": 0.001,
    "s": 1.0,
    "sec": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
    None: 1.0,
}


def parse_duration(text: str, *, require_unit: bool = False) -> float:
    """Seconds in ``text`` (``90``, ``2.5``, ``30s``, ``5m``, ``1h30m``...), ``>= 0``.

    The one duration parser: the magics, the CLI, settings and ``kernelflow.yaml``
    all read durations through it, so they accept the same text.

    Parameters
    ----------
    text
        The duration as written.
    require_unit
        Refuse a bare number. For options where a unitless ``90`` is more
        likely meant as days than seconds (``--older-than`` deletes data).

    Raises
    ------
    ValueError
        ``text`` is not such a duration (the message says what to write).

    Examples
    --------
    >>> parse_duration("1h30m")
    5400.0
    >>> parse_duration("nan")
    Traceback (most recent call last):
    ValueError: 'nan' is not a duration; write e.g. 90, 2.5, 30s, 5m, 2h, 1d or 1h30m.
    """
    cleaned = "".join(str(text).split())
    total = 0.0
    position = 0
    unitless = False
    for match in _AMOUNT.finditer(cleaned):
        if match.start() != position:
            break
        unit = match.group(2).lower() if match.group(2) else None
        unitless = unitless or unit is None
        total += float(match.group(1)) * _UNIT_SECONDS[unit]
        position = match.end()
    examples = "e.g. 30s, 15m, 2h, 7d or 1w" if require_unit else EXAMPLES
    if not cleaned or position != len(cleaned) or not math.isfinite(total):
        raise ValueError(f"{text!r} is not a duration; write {examples}.")
    if unitless and require_unit:
        raise ValueError(f"{text!r} has no unit; write {examples}.")
    return total


def check_seconds(value: Any, what: str, *, allow_zero: bool = False) -> float:
    """``value`` as a finite number of seconds ``> 0`` (``>= 0`` with ``allow_zero``).

    ``value`` may be a number, a ``timedelta`` or text for :func:`parse_duration`.

    Parameters
    ----------
    value
        The duration given.
    what
        How the user wrote the option, for the message (``"--interval"``).
    allow_zero
        Whether 0 means something here (no delay, no grace).

    Raises
    ------
    ConfigurationError
        One line naming ``what``, the bad value and what to write instead.

    Examples
    --------
    >>> check_seconds("5m", "--timeout")
    300.0
    >>> check_seconds(float("inf"), "--retry-delay", allow_zero=True)
    Traceback (most recent call last):
    ConfigurationError: --retry-delay must be a finite number of seconds >= 0 ...
    """
    bound = ">= 0" if allow_zero else "> 0"
    wanted = f"{what} must be a finite number of seconds {bound} (at most 100 years)"
    if isinstance(value, dt.timedelta):
        value = value.total_seconds()
    if isinstance(value, str):
        try:
            seconds = parse_duration(value)
        except ValueError:
            raise ConfigurationError(f"{wanted}, got {value!r}; write {EXAMPLES}.") from None
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        try:
            seconds = float(value)
        except (OverflowError, ValueError):
            seconds = math.nan  # e.g. an int too large for a float
    else:
        raise ConfigurationError(f"{wanted}, got {value!r}; write {EXAMPLES}.")
    if not (0.0 <= seconds <= MAX_SECONDS) or (seconds == 0.0 and not allow_zero):
        raise ConfigurationError(f"{wanted}, got {value!r}; write {EXAMPLES}.")
    return seconds


def parse_seconds(text: str, what: str, *, allow_zero: bool = False) -> float:
    """:func:`check_seconds` for text only (a flag or an environment variable)."""
    return check_seconds(str(text), what, allow_zero=allow_zero)
