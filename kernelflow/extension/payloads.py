"""What each REST endpoint answers, as JSON-ready dicts, read from the store.

These functions know nothing of tornado: they take the raw query strings,
check them (a bad value is a :class:`~kernelflow.errors.ConfigurationError`,
which the handlers answer with 400), and read through
:mod:`kernelflow.store.queries`, which opens the database read-only for each
query and closes it again, so the server never holds the store between
requests. They block, so the handlers run them off the IOLoop.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable
from pathlib import PurePath
from typing import Any

from kernelflow.errors import ConfigurationError
from kernelflow.extension.run_fields import _pause_of, _typed_parameters

__all__ = [
    "DEFAULT_LOG_LINES",
    "MAX_LIMIT",
    "MAX_LOG_LINES",
    "MAX_LOG_OFFSET",
    "MAX_OFFSET",
    "health",
    "run_detail",
    "run_logs",
    "runs_page",
]

#: At most this many runs per page (``limit``).
MAX_LIMIT = 500
#: Pages start at most this far back (``offset``); older runs are for ``kernelflow.sql``.
MAX_OFFSET = 10_000
#: A page of a run's logs has at most this many lines (``limit``, ``log_limit``).
MAX_LOG_LINES = 1_000
#: A page of a run's logs has this many lines unless asked otherwise.
DEFAULT_LOG_LINES = 200
#: The furthest a page of logs may start (``offset``, ``log_offset``): far past any real run.
MAX_LOG_OFFSET = 1_000_000_000
_DEFAULT_LIMIT = 50

# Columns stored as JSON text; the API returns them as JSON values.
_JSON_COLUMNS = ("parameters", "inputs", "outputs", "definition")


def _records(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts: ISO-8601 UTC times, null for missing, lists, parsed JSON."""
    for row in rows:
        for column, value in row.items():
            if isinstance(value, dt.datetime):
                row[column] = _iso(value)
            elif isinstance(value, float) and not math.isfinite(value):
                row[column] = None  # NaN (and infinities) are not JSON
            elif column in _JSON_COLUMNS and isinstance(value, str):
                row[column] = json.loads(value)
    return rows


def _state_filters() -> dict[str, str]:
    """Accepted ``state`` values, lower-cased, mapped to their canonical spelling."""
    from kernelflow import states

    names = [n for n in states.__all__ if n not in ("State", "StateType")]
    kinds = [kind.value for kind in states.StateType]
    # Names with no constructor of their own: a deployment's catch-up records Skipped.
    return {value.lower(): value for value in [*names, "Skipped", *kinds]}


def _parse_state(raw: str | None) -> str | None:
    if raw is None or raw == "":
        return None
    accepted = _state_filters()
    found = accepted.get(raw.strip().lower())
    if found is None:
        names = ", ".join(sorted({v for v in accepted.values() if not v.isupper()}))
        raise ConfigurationError(
            f"Unknown state {raw!r}; filter by a state name ({names}) or a state type "
            "(COMPLETED, FAILED, RUNNING, ...)."
        )
    return found


def _parse_count(raw: str | None, name: str, default: int, lowest: int, highest: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not lowest <= value <= highest:
        raise ConfigurationError(
            f"{name}={raw!r} is not allowed; give a whole number from {lowest} to {highest}."
        )
    return value


def _task_run_summaries(
    flow_run_ids: Iterable[str], runs: list[dict[str, Any]] | None = None
) -> dict[str, dict[str, Any]]:
    """For each flow run: its task runs in total, by state, and how many failed or crashed.

    ``runs``: the flow runs as the store returned them (before :func:`_records`),
    so the count reads only their time span without looking them up again.
    """
    from kernelflow.store.queries import task_state_count_rows

    ids = list(flow_run_ids)
    summaries: dict[str, dict[str, Any]] = {
        i: {"total": 0, "by_state": {}, "failed": 0, "crashed": 0} for i in ids
    }
    if not ids:
        return summaries
    for row in task_state_count_rows(ids, runs=runs):
        summary = summaries[row["flow_run_id"]]
        n = int(row["n"])
        name = row["state_name"]
        summary["total"] += n
        summary["by_state"][name] = summary["by_state"].get(name, 0) + n
        # TimedOut is a FAILED type, as in Prefect; Crashed is its own type.
        if row["state_type"] == "FAILED":
            summary["failed"] += n
        elif row["state_type"] == "CRASHED":
            summary["crashed"] += n
    return summaries


def _count_task_runs(task_runs: list[dict[str, Any]]) -> dict[str, Any]:
    """:func:`_task_run_summaries` of one flow run, from all of its task runs' rows."""
    summary: dict[str, Any] = {"total": 0, "by_state": {}, "failed": 0, "crashed": 0}
    for task in task_runs:
        name = "Unknown" if task["state_name"] is None else task["state_name"]
        summary["total"] += 1
        summary["by_state"][name] = summary["by_state"].get(name, 0) + 1
        if task["state_type"] == "FAILED":
            summary["failed"] += 1
        elif task["state_type"] == "CRASHED":
            summary["crashed"] += 1
    return summary


def _with_task_runs(
    runs: list[dict[str, Any]], summaries: dict[str, dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    if summaries is None:
        summaries = _task_run_summaries(run["id"] for run in runs)
    for run in runs:
        summary = summaries[run["id"]]
        run["failed_tasks"] = summary.pop("failed")
        run["crashed_tasks"] = summary.pop("crashed")
        run["task_runs"] = summary
    return runs


def _parse_when(raw: str | None, name: str, end_of_day: bool = False) -> float | None:
    """An ISO date or date-time as epoch seconds (UTC when it names no offset).

    A bare date means the start of that day, or with ``end_of_day`` the start
    of the next one, so ``until=2026-12-05`` includes all of that day.
    """
    if raw is None or raw.strip() == "":
        return None
    text = raw.strip()
    try:
        if len(text) == 10:  # YYYY-MM-DD
            day = dt.date.fromisoformat(text)
            if end_of_day and day == dt.date.max:
                return None  # until the end of time: no bound
            when = dt.datetime.combine(day, dt.time(), dt.timezone.utc)
            if end_of_day:
                when += dt.timedelta(days=1)
        else:
            when = dt.datetime.fromisoformat(text)
            if when.tzinfo is None:
                when = when.replace(tzinfo=dt.timezone.utc)
        return when.timestamp()
    except (ValueError, OverflowError):  # OverflowError: past year 9999 or before year 1
        raise ConfigurationError(
            f"{name}={raw[:60]!r} is not a date or time; give an ISO date (2026-12-05) or "
            "date-time (2026-12-05T14:30, optionally with an offset such as +01:00 or Z)."
        ) from None


def _summaries(
    rows: list[dict[str, Any]], counts: dict[str, dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """The list's rows as the panel shows them (see :func:`runs_page`)."""
    for row in rows:
        path = row.get("path")
        if row.get("kind") == "session":
            row["display_name"] = PurePath(path).name if path else row.get("flow_name")
        else:
            row["display_name"] = row.get("name") or row.get("flow_name")
        folded = int(row.pop("folded", 1) or 1)
        since = row.pop("folded_since", None)
        skipped = row.get("state_name") == "Skipped"
        row["folded"] = folded if folded > 1 else None
        row["folded_since"] = since if folded > 1 else None
        row["reason"] = row.get("state_message") if skipped else None
    return _with_task_runs(rows, counts)


def runs_page(
    flow: str | None = None,
    state: str | None = None,
    limit: str | None = None,
    offset: str | None = None,
    deployment: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> dict[str, Any]:
    """``GET /kernelflow/api/runs``: flow runs, newest first, one page.

    Parameters
    ----------
    flow
        Only runs of the flow with this name (empty: all flows).
    state
        Only runs in this state: a state name (``Cached``) or type
        (``completed``), case-insensitive (empty: all states).
    limit, offset
        The page: at most ``limit`` runs (default 50, at most
        :data:`MAX_LIMIT`) after skipping the ``offset`` newest.
    deployment
        Only runs of the deployment with this name (empty: all runs).
    since, until
        Only runs created from ``since`` and before ``until``: ISO dates or
        date-times, UTC unless they carry an offset; a date ``until`` includes
        that whole day.

    Returns
    -------
    dict
        ``runs``, ``offset``, ``limit`` and ``has_more``. Each run is a row of
        ``flow_runs`` with ``task_runs`` (a count in total and by state),
        ``failed_tasks`` and ``crashed_tasks``, ``kind`` (``flow``,
        ``subflow``, ``session`` or ``deployment``), ``display_name`` (a
        session's notebook file name, else the run name), ``path`` (its
        notebook, or null), ``deployment`` (its name, or null), ``folded``
        (null, or how many consecutive Skipped runs of one deployment the row
        stands for, the newest shown; ``folded_since``: when the oldest was
        created) and ``reason`` (why a Skipped run was skipped, else null);
        ``behind`` only when a backlog of recent events is still being
        folded: one line saying how far behind the page may be.

    Raises
    ------
    ConfigurationError
        A filter, ``limit`` or ``offset`` has a value the API does not accept.
    """
    from kernelflow.store.queries import run_summary_rows, session, watch_lag

    state_filter = _parse_state(state)
    page = _parse_count(limit, "limit", _DEFAULT_LIMIT, 1, MAX_LIMIT)
    start = _parse_count(offset, "offset", 0, 0, MAX_OFFSET)
    after = _parse_when(since, "since")
    before = _parse_when(until, "until", end_of_day=True)
    if after is not None and before is not None and after >= before:
        raise ConfigurationError(
            f"since={since!r} is not before until={until!r}; give a since earlier than until."
        )
    with watch_lag() as lag, session():
        # One row past the page tells whether there is a next page.
        rows = run_summary_rows(
            flow=flow or None,
            state=state_filter,
            deployment=deployment or None,
            since=after,
            until=before,
            limit=page + 1,
            offset=start,
        )
        counts = _task_run_summaries([row["id"] for row in rows[:page]], rows[:page])
        runs = _summaries(_records(rows[:page]), counts)
    return {
        "runs": runs,
        "offset": start,
        "limit": page,
        "has_more": len(rows) > page,
        **_behind(lag),
    }


def _behind(lag: list[str]) -> dict[str, str]:
    """``{"behind": line}`` when the answer left out events still being folded, else ``{}``.

    The line (see :func:`kernelflow.store.queries.watch_lag`) says how many
    bytes of recent events the answer may lack, and to ask again shortly.
    """
    return {"behind": lag[0]} if lag else {}


def run_detail(
    run_id: str, log_offset: str | None = None, log_limit: str | None = None
) -> dict[str, Any]:
    """``GET /kernelflow/api/runs/<id>``: one flow run with its task runs, subflows and logs.

    Parameters
    ----------
    run_id
        The flow run's id, or a prefix of it that matches one run.
    log_offset, log_limit
        Which page of the logs to include, as for :func:`run_logs`
        (default: the newest :data:`DEFAULT_LOG_LINES` lines).

    Returns
    -------
    dict
        ``run`` (as an item of :func:`runs_page`, plus ``parameters_typed``:
        ``[{"name", "type", "value_text"}]`` so a parameter reads
        ``n: int = 10``; ``pause``: the form a paused run waits for, or null;
        ``has_notebook`` and ``has_html``: whether a deployment run's executed
        notebook and its HTML copy exist), ``task_runs`` (oldest first; a
        deployment run's include those of its notebook session),
        ``subflows`` (flow runs whose parent is this run), ``artifacts`` (of
        the run and its task runs, oldest first, each with a one-line
        ``summary`` of its ``data``), ``logs`` (one page of the lines of the
        run and its task runs, oldest first), ``logs_page`` (that page's
        ``offset``, ``limit``, ``total``, and the parameters of the
        ``earlier`` and ``later`` pages, or null at either end) and
        ``logs_omitted`` (how many lines come before the page); ``behind`` as
        in :func:`runs_page`.

    Raises
    ------
    RunNotFoundError
        No flow run matches ``run_id``, or several do.
    ConfigurationError
        ``log_offset`` or ``log_limit`` has a value the API does not accept.
    """
    from kernelflow.artifacts import summarize
    from kernelflow.store.queries import (
        artifact_rows,
        find_flow_run,
        run_summary_rows,
        session,
        subflow_rows,
        task_run_rows,
        watch_lag,
    )

    offset, limit = _parse_log_page(log_offset, log_limit, "log_offset", "log_limit")
    with watch_lag() as lag, session():
        found = str(find_flow_run(run_id)["id"])
        stored = run_summary_rows(run_id=found, fold_skipped=False)
        stored_subflows = subflow_rows(found)
        sessions = [c["id"] for c in stored_subflows if "notebook" in (c.get("tags") or [])]
        owners = [found]
        if stored[0]["kind"] == "deployment":
            # The notebook's tasks are recorded under the kernel's session, a child of this run.
            owners += sessions
        task_runs = _records(task_run_rows(owners))
        if sessions:  # counted with its sessions' task runs, as the runs page counts them
            counts = _task_run_summaries([found], stored)
        else:  # the task runs just read are all it has: counted here, not read again
            counts = {found: _count_task_runs(task_runs)}
        run = _summaries(_records(stored), counts)[0]
        subflow_counts = _task_run_summaries([c["id"] for c in stored_subflows], stored_subflows)
        subflows = _records(stored_subflows)
        artifacts = _records(artifact_rows(run["id"]))
        for artifact in artifacts:
            artifact["summary"] = summarize(artifact["type"], artifact["data"])
        logs = _log_page(run["id"], offset, limit)
        subflows = _with_task_runs(subflows, subflow_counts)
    run["parameters_typed"] = _typed_parameters(run)
    run["pause"] = _pause_of(run)
    run.update(_output_files(run))
    return {
        "run": run,
        "task_runs": task_runs,
        "subflows": subflows,
        "artifacts": artifacts,
        "logs": logs.pop("logs"),
        "logs_page": logs,
        "logs_omitted": logs["offset"],
        **_behind(lag),
    }


def _output_files(run: dict[str, Any]) -> dict[str, bool]:
    """Whether ``GET runs/<id>/notebook`` and ``.../html`` have a file to serve for the run."""
    if run.get("kind") != "deployment":
        return {"has_notebook": False, "has_html": False}
    # The same lookup as the endpoints that serve them, so a true here is never a 404 there.
    from kernelflow.extension.run_files import run_files

    found = run_files(run["id"])
    return {"has_notebook": found["notebook"] is not None, "has_html": found["html"] is not None}


def run_logs(run_id: str, offset: str | None = None, limit: str | None = None) -> dict[str, Any]:
    """``GET /kernelflow/api/runs/<id>/logs``: one page of a flow run's log lines.

    The lines of the run and its task runs are numbered from 0, oldest first;
    a page is ``limit`` lines from ``offset``.

    Parameters
    ----------
    run_id
        The flow run's id, or a prefix of it that matches one run.
    offset
        The first line of the page, from 0 (the oldest); empty for the newest page.
    limit
        At most this many lines (default :data:`DEFAULT_LOG_LINES`, at most
        :data:`MAX_LOG_LINES`).

    Returns
    -------
    dict
        ``run_id``, ``logs`` (oldest first), ``offset`` and ``limit`` (of this
        page), ``total`` (lines in all), and ``earlier`` and ``later``: the
        ``{"offset", "limit"}`` to ask for the neighbouring pages, or null
        when this page is the first or last; ``behind`` as in :func:`runs_page`.

    Raises
    ------
    RunNotFoundError
        No flow run matches ``run_id``, or several do.
    ConfigurationError
        ``offset`` or ``limit`` has a value the API does not accept.
    """
    from kernelflow.store.queries import find_flow_run, session, watch_lag

    start, page = _parse_log_page(offset, limit, "offset", "limit")
    with watch_lag() as lag, session():
        found = str(find_flow_run(run_id)["id"])
        answer = {"run_id": found, **_log_page(found, start, page)}
    return {**answer, **_behind(lag)}


def _parse_log_page(
    offset: str | None, limit: str | None, offset_name: str, limit_name: str
) -> tuple[int | None, int]:
    start = None
    if offset is not None and offset != "":
        start = _parse_count(offset, offset_name, 0, 0, MAX_LOG_OFFSET)
    page = _parse_count(limit, limit_name, DEFAULT_LOG_LINES, 1, MAX_LOG_LINES)
    return start, page


def _log_page(run_id: str, offset: int | None, limit: int) -> dict[str, Any]:
    """One page of logs (from the store, cut in SQL) with what a client needs to go on."""
    from kernelflow.store.queries import log_page_rows

    page = log_page_rows(run_id, limit=limit, offset=offset)
    earlier = None
    # The page just before, ending where this one starts (shorter near the start);
    # from past the end, the last lines.
    end = min(page.offset, page.total)
    if end > 0:
        earlier = {"offset": max(0, end - limit), "limit": min(limit, end)}
    later = None
    if page.offset + limit < page.total:
        later = {"offset": page.offset + limit, "limit": limit}
    return {
        "logs": _records(page.lines),
        "offset": page.offset,
        "limit": limit,
        "total": page.total,
        "earlier": earlier,
        "later": later,
    }


def _iso(when: dt.datetime | None) -> str | None:
    if when is None:
        return None
    return (
        when.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def health() -> dict[str, Any]:
    """``GET /kernelflow/api/health``: the extension answers, and which store it reads.

    Cheap: the database is not opened.
    """
    from kernelflow import __version__, settings

    paths = settings.paths()
    return {
        "status": "ok",
        "version": __version__,
        "home": str(paths.home),
        "database": str(paths.database),
        "database_exists": paths.database.exists(),
    }
