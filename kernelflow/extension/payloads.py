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
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from kernelflow.errors import ConfigurationError

if TYPE_CHECKING:
    import pandas

__all__ = [
    "DEFAULT_LOG_LINES",
    "MAX_LIMIT",
    "MAX_LOG_LINES",
    "MAX_LOG_OFFSET",
    "MAX_OFFSET",
    "deployments_overview",
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


def _records(frame: pandas.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts: ISO-8601 UTC times, null for missing, lists, parsed JSON."""
    # pandas' own encoder handles Timestamps, NaT/NaN and list columns in one pass.
    rows = json.loads(frame.to_json(orient="records", date_format="iso", date_unit="ms"))
    for row in rows:
        for column in _JSON_COLUMNS:
            value = row.get(column)
            if isinstance(value, str):
                row[column] = json.loads(value)
    return rows


def _state_filters() -> dict[str, str]:
    """Accepted ``state`` values, lower-cased, mapped to their canonical spelling."""
    from kernelflow import states

    names = [n for n in states.__all__ if n not in ("State", "StateType")]
    kinds = [kind.value for kind in states.StateType]
    return {value.lower(): value for value in [*names, *kinds]}


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


def _task_run_summaries(flow_run_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """For each flow run: how many task runs it has, and how many in each state."""
    from kernelflow.store.queries import sql

    ids = list(flow_run_ids)
    summaries: dict[str, dict[str, Any]] = {i: {"total": 0, "by_state": {}} for i in ids}
    if not ids:
        return summaries
    counts = sql(
        "SELECT flow_run_id, coalesce(state_name, 'Unknown') AS state, count(*) AS n "
        "FROM task_runs WHERE list_contains(?, flow_run_id) GROUP BY ALL",
        [ids],
    )
    for row in counts.itertuples(index=False):
        summary = summaries[row.flow_run_id]
        summary["total"] += int(row.n)
        summary["by_state"][row.state] = int(row.n)
    return summaries


def _with_task_runs(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    summaries = _task_run_summaries(run["id"] for run in runs)
    for run in runs:
        run["task_runs"] = summaries[run["id"]]
    return runs


def runs_page(
    flow: str | None = None,
    state: str | None = None,
    limit: str | None = None,
    offset: str | None = None,
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

    Returns
    -------
    dict
        ``runs`` (rows of ``flow_runs``, each with ``task_runs``: a count in
        total and by state), ``offset``, ``limit`` and ``has_more``.

    Raises
    ------
    ConfigurationError
        ``state``, ``limit`` or ``offset`` has a value the API does not accept.
    """
    from kernelflow.store.queries import list_flow_runs

    state_filter = _parse_state(state)
    page = _parse_count(limit, "limit", _DEFAULT_LIMIT, 1, MAX_LIMIT)
    start = _parse_count(offset, "offset", 0, 0, MAX_OFFSET)
    # One row past the page tells whether there is a next page.
    frame = list_flow_runs(flow=flow or None, state=state_filter, limit=start + page + 1)
    rows = _records(frame.iloc[start:])
    return {
        "runs": _with_task_runs(rows[:page]),
        "offset": start,
        "limit": page,
        "has_more": len(rows) > page,
    }


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
        ``run``, ``task_runs`` (oldest first), ``subflows`` (flow runs whose
        parent is this run), ``artifacts`` (of the run and its task runs,
        oldest first, each with a one-line ``summary`` of its ``data``),
        ``logs`` (one page of the lines of the run and its
        task runs, oldest first), ``logs_page`` (that page's ``offset``,
        ``limit``, ``total``, and the parameters of the ``earlier`` and
        ``later`` pages, or null at either end) and ``logs_omitted`` (how many
        lines come before the page).

    Raises
    ------
    RunNotFoundError
        No flow run matches ``run_id``, or several do.
    ConfigurationError
        ``log_offset`` or ``log_limit`` has a value the API does not accept.
    """
    from kernelflow.artifacts import summarize
    from kernelflow.store.queries import artifacts_of, get_flow_run, subflows_of, task_runs_of

    offset, limit = _parse_log_page(log_offset, log_limit, "log_offset", "log_limit")
    run = _records(get_flow_run(run_id))[0]
    task_runs = _records(task_runs_of(run["id"]))
    subflows = _records(subflows_of(run["id"]))
    artifacts = _records(artifacts_of(run["id"]))
    for artifact in artifacts:
        artifact["summary"] = summarize(artifact["type"], artifact["data"])
    logs = _log_page(run["id"], offset, limit)
    run["task_runs"] = {
        "total": len(task_runs),
        "by_state": _count_states(task_runs),
    }
    return {
        "run": run,
        "task_runs": task_runs,
        "subflows": _with_task_runs(subflows),
        "artifacts": artifacts,
        "logs": logs.pop("logs"),
        "logs_page": logs,
        "logs_omitted": logs["offset"],
    }


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
        when this page is the first or last.

    Raises
    ------
    RunNotFoundError
        No flow run matches ``run_id``, or several do.
    ConfigurationError
        ``offset`` or ``limit`` has a value the API does not accept.
    """
    from kernelflow.store.queries import get_flow_run

    start, page = _parse_log_page(offset, limit, "offset", "limit")
    found = str(get_flow_run(run_id)["id"].iloc[0])
    return {"run_id": found, **_log_page(found, start, page)}


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
    from kernelflow.store.queries import log_page

    page = log_page(run_id, limit=limit, offset=offset)
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


def _count_states(rows: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in rows:
        state = row.get("state_name") or "Unknown"
        counts[state] = counts.get(state, 0) + 1
    return counts


def _iso(when: dt.datetime | None) -> str | None:
    if when is None:
        return None
    return (
        when.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def deployments_overview(now: dt.datetime | None = None) -> dict[str, Any]:
    """``GET /kernelflow/api/deployments``: each deployment with its next and last run.

    Parameters
    ----------
    now
        The instant "next run" is computed from (default: now).

    Returns
    -------
    dict
        ``deployments`` (by name: ``name``, ``schedule``, ``paused``,
        ``next_run``, ``last_run``, and ``problem``: why ``next_run`` is
        unknown, or ``None``) and ``note``: ``None``, or why the
        list is empty although deployments may exist (a store without the
        ``deployments`` table).
    """
    from kernelflow.deployments.models import Deployment
    from kernelflow.store.queries import sql

    tables = sql(
        "SELECT count(*) AS n FROM duckdb_tables() "
        "WHERE schema_name = 'main' AND table_name = 'deployments'"
    )
    if int(tables["n"].iloc[0]) == 0:
        return {
            "deployments": [],
            "note": "This store has no deployments table yet; it is created when kernelflow "
            "with notebook deployments opens the store (upgrade kernelflow, then run "
            "`kernelflow deployment ls`).",
        }
    definitions = sql("SELECT definition FROM deployments ORDER BY name")
    last_runs = sql(
        "SELECT deployment_id, arg_max(id, created) AS id, "
        "arg_max(state_name, created) AS state_name, arg_max(state_type, created) AS state_type, "
        "max(created) AS created FROM flow_runs "
        "WHERE deployment_id IS NOT NULL AND parent_flow_run_id IS NULL GROUP BY deployment_id"
    )
    last_by_id = {row.pop("deployment_id"): row for row in _records(last_runs)}
    now = now or dt.datetime.now(dt.timezone.utc)
    deployments = []
    for raw in definitions["definition"]:
        deployment = Deployment.from_definition(json.loads(raw))
        next_run = problem = None
        try:
            schedule = deployment.schedule()
            if schedule is not None and not deployment.paused:
                next_run = _iso(schedule.next_after(now))
        except ConfigurationError as exc:
            # A stored schedule this version cannot read: list the deployment and say why,
            # rather than failing the whole list.
            problem = str(exc)
        deployments.append(
            {
                "id": deployment.id,
                "name": deployment.name,
                "notebook": deployment.notebook,
                "schedule": deployment.describe_schedule(),
                "paused": deployment.paused,
                "tags": list(deployment.tags),
                "next_run": next_run,
                "last_run": last_by_id.get(deployment.id),
                "problem": problem,
            }
        )
    return {"deployments": deployments, "note": None}


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
