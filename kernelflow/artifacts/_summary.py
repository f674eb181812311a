"""Reading artifacts back: one-line summaries and the store's values as Python.

:func:`summarize` is what ``kernelflow runs show``, the live view and the
REST API print for an artifact; the rest turn a row read from the store into
the values :meth:`kernelflow.artifacts.Artifact.get` returns.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

__all__ = ["summarize"]


def summarize(type_: str | None, data: str | None) -> str:
    """One line saying what an artifact holds: markdown's first line, a table's shape, a %.

    Parameters
    ----------
    type_
        The artifact's ``type``.
    data
        Its ``data`` as stored (text).

    Returns
    -------
    str
        E.g. ``"# Sales"``, ``"3 rows, 2 columns"``, ``"40%"``.
    """
    if data is None:
        return ""
    if type_ == "progress":
        try:
            return f"{float(data):g}%"
        except ValueError:
            return str(data)
    if type_ == "table":
        try:
            rows, columns = _shape(json.loads(data))
        except (ValueError, TypeError):
            return _first_line(data)
        return f"{_count(rows, 'row')}, {_count(columns, 'column')}"
    return _first_line(str(data))


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _first_line(text: str, limit: int = 80) -> str:
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _shape(table: Any) -> tuple[int, int]:
    if isinstance(table, dict):
        lengths = [len(column) for column in table.values() if isinstance(column, list)]
        return max(lengths, default=0), len(table)
    if isinstance(table, list):
        if table and all(isinstance(row, dict) for row in table):
            return len(table), len({name for row in table for name in row})
        return len(table), max((len(row) for row in table if isinstance(row, list)), default=0)
    raise TypeError("not a table")


def _value(value: Any) -> Any:
    """A DataFrame cell as Python: None for NULL/NaN/NaT."""
    if value is None:
        return None
    try:
        import pandas

        if pandas.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value


def _data(type_: str | None, data: str | None) -> Any:
    if type_ == "progress" and data is not None:
        try:
            return float(data)
        except ValueError:
            return data
    return data


def _datetime(value: Any) -> dt.datetime | None:
    value = _value(value)
    if value is None:
        return None
    return value.to_pydatetime().astimezone(dt.timezone.utc)
