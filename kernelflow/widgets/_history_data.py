"""Reading the run history out of the store: pages of flow runs, and one run in full.

Rows come from :mod:`kernelflow.store.queries` as DuckDB values; these
functions turn them into plain dicts of epoch seconds and Python values (NULL
and NaN become None), which :class:`~kernelflow.widgets._history.RunHistory`
renders.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from kernelflow.widgets._html import format_time

__all__ = ["flow_names", "load_page", "load_run"]

#: Log lines of a flow run read for its detail (the newest).
_LOG_LINES = 300


def _epoch(value: Any) -> float | None:
    """Epoch seconds of a DuckDB timestamp (a datetime), or None for NULL."""
    if value is None:
        return None
    try:
        if value != value:  # NaT
            return None
        return float(value.timestamp())
    except (AttributeError, TypeError, ValueError):
        return None


def _clean(value: Any) -> Any:
    if value is None:
        return None
    try:
        return None if isinstance(value, float) and math.isnan(value) else value
    except TypeError:
        return value


def load_page(
    flow: str | None = None,
    state: str | None = None,
    since: dt.date | None = None,
    until: dt.date | None = None,
    page: int = 0,
    page_size: int = 20,
) -> tuple[list[dict], int]:
    """One page of flow runs, newest first, and how many runs match in all.

    Parameters
    ----------
    flow:
        Only runs of this flow.
    state:
        Only runs in this state, by name or type (case-insensitive).
    since, until:
        Only runs created on or after ``since`` and before the day after ``until``
        (local dates).
    page, page_size:
        Which page.
    """
    from kernelflow.store.queries import history_page

    found = history_page(
        flow or None,
        state or None,
        None if since is None else dt.datetime.combine(since, dt.time()).astimezone(),
        None
        if until is None
        else dt.datetime.combine(until + dt.timedelta(days=1), dt.time()).astimezone(),
        offset=int(page) * int(page_size),
        limit=int(page_size),
    )
    rows = []
    for record in found.runs:
        rows.append(
            {
                "id": record["id"],
                "flow": record["flow_name"],
                "name": record["name"],
                "state": record["state_name"],
                "type": record["state_type"],
                "message": _clean(record["state_message"]),
                "created": _epoch(record["created"]),
                "start": _epoch(record["start_time"]),
                "end": _epoch(record["end_time"]),
                "duration": _clean(record["duration_s"]),
                "tries": _clean(record["run_count"]),
                "task_runs": int(record["task_runs"]),
            }
        )
    return rows, found.total


def flow_names() -> list[str]:
    """Every flow name in the store, sorted."""
    from kernelflow.store.queries import flow_names as stored_flow_names

    return stored_flow_names()


def load_run(flow_run_id: str) -> dict:
    """One flow run with its task runs and log lines.

    Raises
    ------
    RunNotFoundError
        No flow run has this id (it was deleted from the store).
    """
    from kernelflow.store.queries import find_flow_run, log_page_rows, task_run_rows

    run = find_flow_run(flow_run_id)
    tasks = []
    for record in task_run_rows(run["id"]):
        tasks.append(
            {
                "id": record["id"],
                "name": record["name"],
                "task": record["task_name"],
                "state": record["state_name"],
                "type": record["state_type"],
                "message": _clean(record["state_message"]),
                "start": _epoch(record["start_time"]),
                "end": _epoch(record["end_time"]),
                "duration": _clean(record["duration_s"]),
                "tries": _clean(record["run_count"]),
                "cached": bool(_clean(record["cached"])),
            }
        )
    names = {t["id"]: t["name"] for t in tasks}
    # Only the newest lines leave the database (cut in SQL), however many the run logged.
    logs = log_page_rows(run["id"], limit=_LOG_LINES).lines
    lines = [
        f"{format_time(_epoch(r['timestamp']))[11:]} | {r['level_name'] or '':<7} | "
        f"{names.get(r['run_id'], 'flow')} - {r['message']}"
        for r in logs
    ]
    return {
        "id": run["id"],
        "flow": run["flow_name"],
        "name": run["name"],
        "state": run["state_name"],
        "type": run["state_type"],
        "message": _clean(run["state_message"]),
        "start": _epoch(run["start_time"]),
        "end": _epoch(run["end_time"]),
        "duration": _clean(run["duration_s"]),
        "tasks": tasks,
        "logs": lines,
    }
