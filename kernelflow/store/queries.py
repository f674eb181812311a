"""Reading the store: SQL and the few questions every tool asks, as DataFrames.

Each call first folds pending journals into the database (best effort: a
failure there is logged, and the query still runs on what is already
imported), then opens the database read-only, so several readers can query
at once and a stray ``DELETE`` in :func:`sql` cannot damage the history.
The tables and their columns are documented in ``docs/schema.md``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kernelflow import settings
from kernelflow.errors import RunNotFoundError
from kernelflow.settings import StorePaths
from kernelflow.store.compact import compact
from kernelflow.store.db import connect

if TYPE_CHECKING:
    import pandas

__all__ = ["cache_entries", "get_flow_run", "list_flow_runs", "logs_of", "sql", "task_runs_of"]

logger = logging.getLogger("kernelflow.store")


def sql(query: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> pandas.DataFrame:
    """Run a read-only SQL query on the store and return the result.

    Parameters
    ----------
    query
        DuckDB SQL over the tables in ``docs/schema.md``; ``?`` or ``$name``
        placeholders are bound from ``params``.
    params
        Values for the placeholders.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    duckdb.Error
        The query itself is invalid (DuckDB's message names the problem).
    StoreError
        The database cannot be opened (see :mod:`kernelflow.errors`).

    Examples
    --------
    >>> import kernelflow
    >>> kernelflow.sql(  # doctest: +SKIP
    ...     "SELECT state_name, count(*) AS n FROM task_runs GROUP BY ALL"
    ... )
      state_name   n
    0  Completed  41
    1     Cached   7
    """
    paths = settings.paths()
    _compact_before_query(paths)
    with connect(paths, read_only=True) as con:
        return con.execute(query, params).df()


# Store home -> when a compaction before a query last failed. For a while
# after a failure, queries try compacting without waiting for the lock, and
# quietly: a program holding the database would otherwise make every query of
# a CLI command or a widget wait and warn, yet once it lets go the next query
# must see everything again.
_failed_at: dict[Path, float] = {}
_RETRY_AFTER_S = 10.0


def _compact_before_query(paths: StorePaths) -> None:
    failed_at = _failed_at.get(paths.home)
    recently_failed = failed_at is not None and time.monotonic() - failed_at < _RETRY_AFTER_S
    try:
        compact(paths, timeout=0 if recently_failed else None)
    except Exception as exc:  # best effort: the query still sees what is imported
        if not recently_failed:
            _failed_at[paths.home] = time.monotonic()
            logger.warning("kernelflow: compaction before the query failed: %s", exc)
    else:
        _failed_at.pop(paths.home, None)


def list_flow_runs(
    flow: str | None = None,
    state: str | None = None,
    limit: int = 20,
    deployment: str | None = None,
) -> pandas.DataFrame:
    """The most recent flow runs, newest first.

    Parameters
    ----------
    flow
        Only runs of the flow with this name.
    state
        Only runs in this state, by name (``"Cached"``) or type
        (``"completed"``), case-insensitive.
    limit
        At most this many rows.
    deployment
        Only runs of the deployment with this id.

    Returns
    -------
    pandas.DataFrame
        Rows of ``flow_runs``.
    """
    where, params = ["TRUE"], []
    if flow is not None:
        where.append("flow_name = ?")
        params.append(flow)
    if state is not None:
        where.append("(lower(state_name) = lower(?) OR lower(state_type) = lower(?))")
        params += [state, state]
    if deployment is not None:
        where.append("deployment_id = ?")
        params.append(deployment)
    params.append(int(limit))
    return sql(
        f"SELECT * FROM flow_runs WHERE {' AND '.join(where)} "
        "ORDER BY created DESC NULLS LAST, id LIMIT ?",
        params,
    )


def get_flow_run(flow_run_id: str) -> pandas.DataFrame:
    """One flow run, by id or by a unique prefix of its id.

    Parameters
    ----------
    flow_run_id
        The run id, or enough of its first characters to match one run.

    Returns
    -------
    pandas.DataFrame
        One row of ``flow_runs``.

    Raises
    ------
    RunNotFoundError
        No flow run matches, or the prefix matches several.
    """
    prefix = str(flow_run_id)
    found = sql(
        # An exact match first: an id may also be the prefix of another id.
        "SELECT * FROM flow_runs WHERE starts_with(id, ?) ORDER BY id = ? DESC, id LIMIT 2",
        [prefix, prefix],
    )
    if len(found) == 0:
        raise RunNotFoundError(
            f"No flow run has an id starting with {prefix!r}; list recent runs with "
            "`kernelflow runs ls`."
        )
    if len(found) > 1 and found["id"].iloc[0] != prefix:
        raise RunNotFoundError(
            f"Several flow runs have ids starting with {prefix!r}; give more characters "
            "(see `kernelflow runs ls`)."
        )
    return found.head(1).reset_index(drop=True)


def task_runs_of(flow_run_id: str) -> pandas.DataFrame:
    """The task runs of one flow run, in the order they were created.

    Parameters
    ----------
    flow_run_id
        The flow run's id.

    Returns
    -------
    pandas.DataFrame
        Rows of ``task_runs``.
    """
    return sql(
        "SELECT * FROM task_runs WHERE flow_run_id = ? ORDER BY created NULLS LAST, id",
        [flow_run_id],
    )


def logs_of(run_id: str, include_task_runs: bool = True) -> pandas.DataFrame:
    """The log lines of a run, oldest first.

    Parameters
    ----------
    run_id
        A flow run or task run id.
    include_task_runs
        For a flow run, also the lines logged by its task runs.

    Returns
    -------
    pandas.DataFrame
        Rows of ``logs``.
    """
    if include_task_runs:
        query = (
            "SELECT * FROM logs WHERE run_id = ? "
            "OR run_id IN (SELECT id FROM task_runs WHERE flow_run_id = ?) "
            "ORDER BY timestamp, process, seq"
        )
        return sql(query, [run_id, run_id])
    return sql("SELECT * FROM logs WHERE run_id = ? ORDER BY timestamp, process, seq", [run_id])


def cache_entries(include_deleted: bool = False) -> pandas.DataFrame:
    """The task cache: one row per cache key, most recently written first.

    Parameters
    ----------
    include_deleted
        Also list entries that were deleted (``deleted`` is True).

    Returns
    -------
    pandas.DataFrame
        Rows of ``cache_entries``.
    """
    where = "" if include_deleted else "WHERE NOT deleted"
    return sql(f"SELECT * FROM cache_entries {where} ORDER BY created DESC NULLS LAST, key")
