"""Reading the store: SQL and the few questions every tool asks, as DataFrames.

Each call first folds pending journals into the database (best effort: a
failure there is logged, and the query still runs on what is already
imported), then opens the database read-only, so several readers can query
at once. The tables and their columns are documented in ``docs/schema.md``.

:func:`sql` is the one way users' SQL reaches the store: ``kernelflow.sql``,
``kernelflow sql`` and ``%kf sql`` all call it. It runs exactly one statement,
and only a ``SELECT`` (which includes ``WITH``, ``VALUES``, ``FROM ...``,
``DESCRIBE``, ``SHOW`` and ``SUMMARIZE``), on a sandboxed connection (see
:data:`kernelflow.store.db.SANDBOX`): no files, network or extensions, and no
setting can be changed. The statement is checked with DuckDB's own parser,
and the parsed statement is what runs, so the check and the run cannot
disagree. Every DuckDB error becomes a one-line :class:`QueryError`.

Everything in the database is readable this way, so what must stay private
is not in it: secrets (:mod:`kernelflow.store.secrets`) are files of their
own. Variables, artifacts and events are tables like the rest.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from kernelflow import settings
from kernelflow.errors import QueryError, RunNotFoundError, StoreError, StoreLockedError
from kernelflow.settings import StorePaths
from kernelflow.store.compact import compact
from kernelflow.store.db import connect, lock_timeout, translate_error

if TYPE_CHECKING:
    import pandas

__all__ = [
    "LogPage",
    "artifacts_of",
    "cache_entries",
    "deployment_definition",
    "deployment_definitions",
    "get_flow_run",
    "last_deployment_runs",
    "latest_artifact",
    "list_flow_runs",
    "list_run_summaries",
    "log_page",
    "logs_of",
    "sql",
    "subflows_of",
    "task_runs_of",
    "task_state_counts",
    "webhooks_of",
]

logger = logging.getLogger("kernelflow.store")


def sql(query: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> pandas.DataFrame:
    """Run a read-only SQL query on the store and return the result.

    Parameters
    ----------
    query
        One DuckDB ``SELECT`` over the tables in ``docs/schema.md``; ``?`` or
        ``$name`` placeholders are bound from ``params``. Files, the network and
        extensions are out of reach, and settings cannot be changed.
    params
        Values for the placeholders.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    QueryError
        The query is not one read-only statement, reaches outside the store,
        or is invalid (the message keeps DuckDB's, on one line).
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
    with _reading(paths) as con:
        try:
            statement = _one_read(con, query)
            return con.execute(statement, params).df()
        except duckdb.Error as exc:
            raise _query_error(exc, paths) from None


#: Where a refused query is sent, in every message.
_SCHEMA_HINT = "the store's tables are in docs/schema.md"


def _one_read(con: duckdb.DuckDBPyConnection, query: str) -> duckdb.Statement:
    """The one ``SELECT`` statement ``query`` holds, parsed; else a :class:`QueryError`."""
    if not isinstance(query, str):
        raise QueryError(f"A query is a string of SQL, not {type(query).__name__}.")
    statements = con.extract_statements(query)
    if not statements:
        raise QueryError(f"The query is empty; write one SELECT ({_SCHEMA_HINT}).")
    if len(statements) > 1:
        raise QueryError(
            f"A store query runs one statement, and this has {len(statements)}; run them "
            "one at a time (without ';' between them)."
        )
    (statement,) = statements
    if statement.type != duckdb.StatementType.SELECT:
        # INSTALL parses as LOAD; name what the user wrote.
        kind = "an INSTALL or LOAD" if statement.type.name == "LOAD" else statement.type.name
        if not kind.startswith("an "):
            kind = f"{'an' if kind[0] in 'AEIOU' else 'a'} {kind.replace('_', ' ')}"
        raise QueryError(
            f"Store queries are read-only: {kind} statement is not run; write one SELECT "
            f"(or WITH, DESCRIBE, SHOW, SUMMARIZE) ({_SCHEMA_HINT})."
        )
    return statement


def _query_error(exc: duckdb.Error, paths: StorePaths) -> QueryError | StoreError:
    """DuckDB's error as one line that says what to change."""
    if "Corrupt database file" in str(exc):
        # A damaged block met mid-query is the file's fault, not the query's.
        return translate_error(exc, paths)
    message = (
        " ".join(
            line.strip()
            for line in str(exc).splitlines()
            # Drop the "LINE 1: ..." excerpt and its caret pointer: they need two lines.
            if line.strip() and not line.startswith("LINE ") and set(line.strip()) != {"^"}
        )
        or type(exc).__name__
    )
    if isinstance(exc, duckdb.PermissionException):
        return QueryError(
            f"{message}: store queries read only the store's tables (no files, network or "
            "extensions); to query a file, use duckdb itself (duckdb.sql(...))."
        )
    if "configuration has been locked" in message:
        return QueryError(f"{message}: store queries cannot change DuckDB settings.")
    return QueryError(f"{message} (fix the query; {_SCHEMA_HINT}).")


# Store home -> when a compaction before a query last failed. For a while
# after a failure, queries try compacting without waiting for the lock, and
# quietly: a program holding the database would otherwise make every query of
# a CLI command or a widget wait and warn, yet once it lets go the next query
# must see everything again.
_failed_at: dict[Path, float] = {}
_RETRY_AFTER_S = 10.0


@contextmanager
def _reading(paths: StorePaths) -> Iterator[duckdb.DuckDBPyConnection]:
    """Fold pending journals (best effort), then open the database read-only.

    Both share one wait of ``KERNELFLOW_LOCK_TIMEOUT``: a program holding the
    file makes a query wait that long (not twice as long), then fail with the
    one-line :class:`~kernelflow.errors.StoreLockedError` naming it. A failed
    fold is reported only when the read then works (the answer may lack the
    newest runs); when the read fails too, one error alone says why.
    """
    deadline = time.monotonic() + lock_timeout()
    failure = _compact_before_query(paths, deadline)
    with ExitStack() as stack:
        remaining = max(0.0, deadline - time.monotonic())
        try:
            con = stack.enter_context(connect(paths, read_only=True, timeout=remaining))
        except StoreLockedError:
            # The fold watched the whole wait and the read only its end (often one try):
            # the fold's error names the program that held the file, where the read's
            # may name a kernelflow process that was itself waiting for that program.
            if isinstance(failure, StoreLockedError):
                raise failure from None
            raise
        if failure is not None:
            logger.warning("kernelflow: compaction before the query failed: %s", failure)
        yield con


def _compact_before_query(paths: StorePaths, deadline: float) -> Exception | None:
    """Fold pending journals until ``deadline``; the failure worth reporting, if any."""
    failed_at = _failed_at.get(paths.home)
    recently_failed = failed_at is not None and time.monotonic() - failed_at < _RETRY_AFTER_S
    try:
        compact(paths, timeout=0 if recently_failed else max(0.0, deadline - time.monotonic()))
    except Exception as exc:  # best effort: the query still sees what is imported
        if not recently_failed:
            _failed_at[paths.home] = time.monotonic()
            return exc
    else:
        _failed_at.pop(paths.home, None)
    return None


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
            "'kernelflow runs ls'."
        )
    if len(found) > 1 and found["id"].iloc[0] != prefix:
        raise RunNotFoundError(
            f"Several flow runs have ids starting with {prefix!r}; give more characters "
            "(see 'kernelflow runs ls')."
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


# The log lines of one run (and, with its task runs, theirs), and their one total order:
# (process, seq) is unique, so the order is the same on every call and pages never overlap.
# A deployment run's notebook records its tasks in the deployment run itself; runs recorded
# by earlier versions put them under the kernel's session, a child run tagged
# 'notebook', whose lines are then the deployment run's too. ``$run`` is the run's id.
_RUN_LOGS = "run_id = $run"
_RUN_AND_TASK_LOGS = (
    "run_id = $run OR run_id IN (SELECT id FROM task_runs WHERE flow_run_id = $run "
    "OR flow_run_id IN (SELECT id FROM flow_runs WHERE parent_flow_run_id = $run "
    "AND coalesce(list_contains(tags, 'notebook'), FALSE)))"
)
_LOG_ORDER = "ORDER BY timestamp, process, seq"


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
    where = _RUN_AND_TASK_LOGS if include_task_runs else _RUN_LOGS
    return sql(f"SELECT * FROM logs WHERE {where} {_LOG_ORDER}", {"run": run_id})


@dataclass
class LogPage:
    """One page of a run's log lines (see :func:`log_page`).

    Attributes
    ----------
    lines
        Rows of ``logs``, oldest first.
    offset
        How many of the run's lines come before the first one in ``lines``.
    total
        How many lines the run has in all.
    """

    lines: pandas.DataFrame
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
    where = _RUN_AND_TASK_LOGS if include_task_runs else _RUN_LOGS
    paths = settings.paths()
    # One connection for the count and the page, so both see the same lines.
    with _reading(paths) as con:
        try:
            (total,) = con.execute(
                f"SELECT count(*) FROM logs WHERE {where}", {"run": run_id}
            ).fetchone()
            start = max(0, total - limit) if offset is None else offset
            lines = con.execute(
                f"SELECT * FROM logs WHERE {where} {_LOG_ORDER} LIMIT $limit OFFSET $offset",
                {"run": run_id, "limit": int(limit), "offset": int(start)},
            ).df()
        except duckdb.Error as exc:
            raise _query_error(exc, paths) from None
    return LogPage(lines=lines, offset=start, total=int(total))


def subflows_of(flow_run_id: str) -> pandas.DataFrame:
    """The flow runs a flow run called (its subflows), in the order they were created.

    Parameters
    ----------
    flow_run_id
        The parent flow run's id.

    Returns
    -------
    pandas.DataFrame
        Rows of ``flow_runs``.
    """
    return sql(
        "SELECT * FROM flow_runs WHERE parent_flow_run_id = ? ORDER BY created NULLS LAST, id",
        [flow_run_id],
    )


def webhooks_of(flow_run_id: str) -> pandas.DataFrame:
    """The webhook notifications sent for a flow run, oldest first.

    Parameters
    ----------
    flow_run_id
        The flow run's id.

    Returns
    -------
    pandas.DataFrame
        Rows of the ``webhooks`` view (``url``, ``outcome``, ``detail``,
        ``timestamp``); empty for a store older than the view.
    """
    views = sql(
        "SELECT count(*) AS n FROM duckdb_views() "
        "WHERE schema_name = 'main' AND view_name = 'webhooks'"
    )
    if int(views["n"].iloc[0]) == 0:
        return sql("SELECT NULL::VARCHAR AS url WHERE FALSE")
    return sql(
        "SELECT url, outcome, detail, timestamp FROM webhooks WHERE flow_run_id = ? "
        "ORDER BY timestamp",
        [flow_run_id],
    )


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


#: The columns of an artifact as `runs show`, REST and `Artifact.get` read them.
_ARTIFACT_COLUMNS = "id, key, type, description, data, flow_run_id, task_run_id, created, updated"


def artifacts_of(flow_run_id: str) -> pandas.DataFrame:
    """The artifacts of a flow run and of its task runs, in the order they were created.

    Parameters
    ----------
    flow_run_id
        The flow run's id.

    Returns
    -------
    pandas.DataFrame
        Rows of ``artifacts``.
    """
    return sql(
        f"SELECT {_ARTIFACT_COLUMNS} FROM artifacts "
        "WHERE created IS NOT NULL AND (flow_run_id = ? "
        "OR task_run_id IN (SELECT id FROM task_runs WHERE flow_run_id = ?)) "
        "ORDER BY created, id",
        [flow_run_id, flow_run_id],
    )


def latest_artifact(key: str) -> pandas.DataFrame:
    """The most recently updated artifact with ``key`` (Prefect's ``Artifact.get``).

    Parameters
    ----------
    key
        The artifact key.

    Returns
    -------
    pandas.DataFrame
        At most one row of ``artifacts``.
    """
    return sql(
        f"SELECT {_ARTIFACT_COLUMNS} FROM artifacts WHERE key = ? AND created IS NOT NULL "
        "ORDER BY updated DESC NULLS LAST, created DESC, id DESC LIMIT 1",
        [key],
    )


def _has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    (found,) = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'main' AND table_name = ?",
        [name],
    ).fetchone()
    return bool(found)


# What the run list adds to each row of flow_runs. A session run (tagged 'notebook') is a
# kernel's notebook session; a deployment run is a top-level run with a deployment; only a
# run whose parent is not a session is a subflow (a flow called at the top level of a
# notebook cell has the session as parent, yet the user called it as a flow).
_RUN_KIND = """
    CASE
        WHEN coalesce(list_contains(r.tags, 'notebook'), FALSE) THEN 'session'
        WHEN r.deployment_id IS NOT NULL AND r.parent_flow_run_id IS NULL THEN 'deployment'
        WHEN r.parent_flow_run_id IS NOT NULL
             AND NOT coalesce(list_contains(p.tags, 'notebook'), FALSE) THEN 'subflow'
        ELSE 'flow'
    END"""
# A session's notebook: its flow name when that is a notebook path (Jupyter told the kernel
# its path), else the notebook of the deployment whose run started the kernel.
_RUN_PATH = """
    CASE
        WHEN coalesce(list_contains(r.tags, 'notebook'), FALSE) THEN
            CASE WHEN r.flow_name LIKE '%.ipynb' THEN r.flow_name ELSE pd.notebook END
        WHEN r.deployment_id IS NOT NULL AND r.parent_flow_run_id IS NULL THEN d.notebook
        ELSE NULL
    END"""


def list_run_summaries(
    flow: str | None = None,
    state: str | None = None,
    deployment: str | None = None,
    since: float | None = None,
    until: float | None = None,
    run_id: str | None = None,
    limit: int = 50,
    offset: int = 0,
    fold_skipped: bool = True,
) -> pandas.DataFrame:
    """Flow runs as the JupyterLab panel lists them, newest first, one page.

    Each row of ``flow_runs`` gains ``kind`` (``flow``, ``subflow``,
    ``session`` or ``deployment``), ``path`` (the notebook, or null),
    ``deployment`` (the deployment's name, or null), ``folded`` (how many
    runs the row stands for) and ``folded_since`` (when the oldest of them
    was created). With ``fold_skipped``, Skipped runs of one deployment with
    no other run of it between them are one row: the newest of those the
    filters keep.

    Parameters
    ----------
    flow
        Only runs of the flow with this name.
    state
        Only runs in this state, by name or type, case-insensitive.
    deployment
        Only runs of the deployment with this name.
    since, until
        Only runs created at or after ``since`` and before ``until`` (epoch seconds).
    run_id
        Only the run with this exact id.
    limit, offset
        The page, counted in rows after folding.
    fold_skipped
        Fold consecutive Skipped runs of a deployment into one row.

    Returns
    -------
    pandas.DataFrame
    """
    paths = settings.paths()
    with _reading(paths) as con:
        try:
            has_deployments = _has_table(con, "deployments")
            where, params = ["TRUE"], []
            if flow is not None:
                where.append("r.flow_name = ?")
                params.append(flow)
            if state is not None:
                where.append("(lower(r.state_name) = lower(?) OR lower(r.state_type) = lower(?))")
                params += [state, state]
            if deployment is not None:
                where.append("d.name = ?" if has_deployments else "FALSE")
                params += [deployment] if has_deployments else []
            if since is not None:
                where.append("r.created >= to_timestamp(?)")
                params.append(float(since))
            if until is not None:
                where.append("r.created < to_timestamp(?)")
                params.append(float(until))
            if run_id is not None:
                where.append("r.id = ?")
                params.append(run_id)
            if has_deployments:
                joins = (
                    "LEFT JOIN deployments d ON d.id = r.deployment_id "
                    "LEFT JOIN deployments pd ON pd.id = p.deployment_id"
                )
            else:  # a store older than deployments: the same columns, all null
                joins = (
                    "LEFT JOIN (SELECT NULL::VARCHAR AS id, NULL::VARCHAR AS name, "
                    "NULL::VARCHAR AS notebook WHERE FALSE) d ON d.id = r.deployment_id "
                    "LEFT JOIN (SELECT NULL::VARCHAR AS id, NULL::VARCHAR AS notebook "
                    "WHERE FALSE) pd ON pd.id = p.deployment_id"
                )
            # Gaps and islands over each deployment's whole history (not only what the
            # filters keep): in its runs, oldest first, consecutive Skipped runs share
            # (position among all its runs - position among its Skipped runs).
            history = """
                SELECT id AS run, 'skipped:' || deployment_id || ':' || (
                    row_number() OVER (PARTITION BY deployment_id ORDER BY created NULLS FIRST, id)
                    - row_number() OVER (
                        PARTITION BY deployment_id, skipped ORDER BY created NULLS FIRST, id)
                ) AS island, skipped
                FROM (
                    SELECT *, coalesce(state_name = 'Skipped', FALSE) AS skipped FROM flow_runs
                    WHERE deployment_id IS NOT NULL AND parent_flow_run_id IS NULL
                )
            """
            if not fold_skipped:
                history = "SELECT NULL::VARCHAR AS run, NULL::VARCHAR AS island, FALSE AS skipped"
            query = f"""
                WITH history AS ({history}),
                listed AS (
                    SELECT r.*, {_RUN_KIND} AS kind, {_RUN_PATH} AS path,
                           d.name AS deployment,
                           CASE WHEN h.skipped THEN h.island ELSE r.id END AS island
                    FROM flow_runs r
                    LEFT JOIN flow_runs p ON p.id = r.parent_flow_run_id
                    LEFT JOIN history h ON h.run = r.id
                    {joins}
                    WHERE {" AND ".join(where)}
                ),
                counted AS (
                    SELECT *,
                        count(*) OVER (PARTITION BY island) AS folded,
                        min(created) OVER (PARTITION BY island) AS folded_since,
                        row_number() OVER (
                            PARTITION BY island ORDER BY created DESC NULLS LAST, id) AS place
                    FROM listed
                )
                SELECT * EXCLUDE (island, place) FROM counted WHERE place = 1
                ORDER BY created DESC NULLS LAST, id LIMIT ? OFFSET ?
            """
            return con.execute(query, [*params, int(limit), int(offset)]).df()
        except duckdb.Error as exc:
            raise _query_error(exc, paths) from None


def task_state_counts(flow_run_ids: Sequence[str]) -> pandas.DataFrame:
    """How many task runs of each flow run are in each state.

    A deployment run's own tasks run in the notebook session its kernel
    records as a child run; they are counted as the deployment run's.

    Parameters
    ----------
    flow_run_ids
        The flow runs to count for.

    Returns
    -------
    pandas.DataFrame
        ``flow_run_id``, ``state_name``, ``state_type`` and ``n``.
    """
    return sql(
        """
        WITH owners AS (
            SELECT id AS member, id AS owner FROM flow_runs WHERE list_contains($ids, id)
            UNION ALL
            SELECT s.id, s.parent_flow_run_id FROM flow_runs s
            JOIN flow_runs o ON o.id = s.parent_flow_run_id
            WHERE list_contains($ids, o.id) AND o.deployment_id IS NOT NULL
              AND coalesce(list_contains(s.tags, 'notebook'), FALSE)
        )
        SELECT owners.owner AS flow_run_id, coalesce(t.state_name, 'Unknown') AS state_name,
               t.state_type, count(*) AS n
        FROM task_runs t JOIN owners ON t.flow_run_id = owners.member
        GROUP BY ALL
        """,
        {"ids": list(flow_run_ids)},
    )


def _deployments_exist() -> bool:
    """Whether the store has the ``deployments`` table (a store older than it has not)."""
    tables = sql(
        "SELECT count(*) AS n FROM duckdb_tables() "
        "WHERE schema_name = 'main' AND table_name = 'deployments'"
    )
    return int(tables["n"].iloc[0]) > 0


def deployment_definition(deployment_id: str) -> str | None:
    """The stored definition (JSON text) of the deployment with this id, if it exists.

    Parameters
    ----------
    deployment_id
        The deployment's id.

    Returns
    -------
    str or None
        ``None`` for a deleted deployment, or a store without deployments.
    """
    if not _deployments_exist():
        return None
    found = sql("SELECT definition FROM deployments WHERE id = ?", [deployment_id])
    return None if len(found) == 0 else str(found["definition"].iloc[0])


def deployment_definitions() -> list[str] | None:
    """Every deployment's stored definition (JSON text), by name.

    Returns
    -------
    list of str or None
        ``None`` for a store without the ``deployments`` table (written
        before deployments existed).
    """
    if not _deployments_exist():
        return None
    return [str(d) for d in sql("SELECT definition FROM deployments ORDER BY name")["definition"]]


def last_deployment_runs() -> pandas.DataFrame:
    """The newest top-level run of each deployment.

    Returns
    -------
    pandas.DataFrame
        ``deployment_id``, and the run's ``id``, ``state_name``,
        ``state_type`` and ``created``.
    """
    return sql(
        "SELECT deployment_id, arg_max(id, created) AS id, "
        "arg_max(state_name, created) AS state_name, arg_max(state_type, created) AS state_type, "
        "max(created) AS created FROM flow_runs "
        "WHERE deployment_id IS NOT NULL AND parent_flow_run_id IS NULL GROUP BY deployment_id"
    )
