"""A run's log lines: all of them, or one page cut in SQL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kernelflow.store.queries.bounds import _span
from kernelflow.store.queries.reading import (
    _NAMED_TASK_RUNS,
    FRAME,
    ROWS,
    Shape,
    _read,
    _Reader,
)

if TYPE_CHECKING:
    import pandas


# The log lines of one run (and, with its task runs, theirs), and their one total order:
# (process, seq) is unique, so the order is the same on every call and pages never overlap.
# A deployment run's notebook records its tasks in the deployment run itself; runs recorded
# by earlier versions put them under the kernel's session, a child run tagged
# 'notebook', whose lines are then the deployment run's too. ``$run`` is the run's id;
# ``{tasks}`` bounds the task runs read, as ``_Span.where`` writes it.
_RUN_LOGS = "run_id = $run"
_RUN_AND_TASK_LOGS = (
    "(run_id = $run OR run_id IN (SELECT id FROM task_runs WHERE (flow_run_id = $run "
    "OR flow_run_id IN (SELECT id FROM flow_runs WHERE parent_flow_run_id = $run "
    "AND coalesce(list_contains(tags, 'notebook'), FALSE))){tasks}))"
)
_LOG_ORDER = "ORDER BY timestamp, process, seq"


def _log_filter(reader: _Reader, run_id: str, include_task_runs: bool) -> tuple[str, dict]:
    """The WHERE clause of a run's log lines, bounded by the run's span, and its values."""
    params: dict[str, Any] = {"run": run_id}
    span = _span(reader, [run_id])
    if not include_task_runs:
        return _RUN_LOGS + span.where("timestamp", params), params
    tasks = _known_task_ids(reader, run_id)
    if tasks is not None:
        # The task runs are known (read on this connection, in the same span): naming
        # them spares reading task_runs again (3.5 ms of 7.5 on a store of 10M).
        named: dict[str, Any] = {"runs": [run_id, *tasks]}
        return "list_contains($runs, run_id)" + span.where("timestamp", named), named
    where = _RUN_AND_TASK_LOGS.format(tasks=span.where("created", params))
    return where + span.where("timestamp", params), params


def _known_task_ids(reader: _Reader, run_id: str) -> list[str] | None:
    """Every task run :data:`_RUN_AND_TASK_LOGS` would find, when this reader read them all.

    That is when the run's own task runs were read whole (``task_run_rows``)
    and its subflows showed it has no notebook session whose task runs are
    its too; None otherwise, or when they are too many to name.
    """
    tasks = reader.task_ids.get(run_id)
    if tasks is None or reader.has_sessions.get(run_id, True) or len(tasks) > _NAMED_TASK_RUNS:
        return None
    return tasks


def logs_of(run_id: str, include_task_runs: bool = True) -> pandas.DataFrame:
    """The log lines of a run, oldest first.

    Parameters
    ----------
    run_id
        A flow run or task run id.
    include_task_runs
        For a flow run, also the lines logged by its task runs (for a
        deployment run, also by those of its notebook's session).

    Returns
    -------
    pandas.DataFrame
        Rows of ``logs``.
    """
    with _read() as reader:
        return _logs(reader, run_id, include_task_runs, FRAME)


def log_rows(run_id: str, include_task_runs: bool = True) -> list[dict[str, Any]]:
    """:func:`logs_of` as rows."""
    with _read() as reader:
        return _logs(reader, run_id, include_task_runs, ROWS)


def _logs(reader: _Reader, run_id: str, include_task_runs: bool, shape: Shape) -> Any:
    where, params = _log_filter(reader, run_id, include_task_runs)
    return reader.fetch(f"SELECT * FROM logs WHERE {where} {_LOG_ORDER}", params, shape)


@dataclass
class LogPage:
    """One page of a run's log lines (see :func:`log_page`).

    Attributes
    ----------
    lines
        Rows of ``logs``, oldest first: a DataFrame, or a list of dicts from
        :func:`log_page_rows`.
    offset
        How many of the run's lines come before the first one in ``lines``.
    total
        How many lines the run has in all.
    """

    lines: Any
    offset: int
    total: int


def log_page(
    run_id: str, limit: int, offset: int | None = None, include_task_runs: bool = True
) -> LogPage:
    """One page of a run's log lines, oldest first, cut in SQL.

    Only the page leaves the database, however many lines the run logged.

    Parameters
    ----------
    run_id
        A flow run or task run id.
    limit
        At most this many lines.
    offset
        Skip this many of the run's oldest lines; ``None`` for the newest page
        (the last ``limit`` lines).
    include_task_runs
        For a flow run, also the lines logged by its task runs (for a
        deployment run, also by those of its notebook's session).

    Returns
    -------
    LogPage
    """
    with _read() as reader:
        return _log_page(reader, run_id, limit, offset, include_task_runs, FRAME)


def log_page_rows(
    run_id: str, limit: int, offset: int | None = None, include_task_runs: bool = True
) -> LogPage:
    """:func:`log_page` with its ``lines`` as a list of dicts."""
    with _read() as reader:
        return _log_page(reader, run_id, limit, offset, include_task_runs, ROWS)


def _log_page(
    reader: _Reader,
    run_id: str,
    limit: int,
    offset: int | None,
    include_task_runs: bool,
    shape: Shape,
) -> LogPage:
    # One connection for the count and the page, so both see the same lines.
    where, params = _log_filter(reader, run_id, include_task_runs)
    (total,) = reader.one(f"SELECT count(*) FROM logs WHERE {where}", params)
    start = max(0, total - limit) if offset is None else offset
    lines = reader.fetch(
        f"SELECT * FROM logs WHERE {where} {_LOG_ORDER} LIMIT $limit OFFSET $offset",
        {**params, "limit": int(limit), "offset": int(start)},
        shape,
    )
    return LogPage(lines=lines, offset=start, total=int(total))
