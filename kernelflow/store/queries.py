"""Reading the store: SQL and the few questions every tool asks, as DataFrames or rows.

Each call first folds a small backlog of journal events into the database
(best effort: a failure there is logged, and the query still runs on what is
already imported), then opens the database read-only, so several readers can
query at once. A backlog over :func:`inline_fold_bytes` is folded by a
separate process instead, and the answer says in one line how far behind it
is (:func:`watch_lag`). The tables and their columns are documented in
``docs/schema.md``.

The Python API answers with pandas DataFrames; the CLI, the REST payloads and
the widgets use the ``*_rows`` twins (lists of dicts, same SQL), so they never
import pandas, and :func:`session` to ask a page's questions on one
connection. The questions are written for a store of millions of task runs:
pages are cut in SQL on narrow columns, and a flow run's task runs and log
lines are bounded by the run's own time span, so DuckDB's zone maps skip the
rest of the table (see ``docs/decisions/query-latency-at-scale.md``).

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

import datetime as dt
import logging
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from kernelflow import settings
from kernelflow.errors import (
    ConfigurationError,
    QueryError,
    RunNotFoundError,
    StoreError,
    StoreLockedError,
)
from kernelflow.settings import StorePaths
from kernelflow.store.compact import compact, pending_bytes, start_detached_compaction
from kernelflow.store.db import connect, lock_timeout, translate_error
from kernelflow.store.schema import TERMINAL_STATE_TYPES

if TYPE_CHECKING:
    import pandas

__all__ = [
    "FRAME",
    "INLINE_FOLD_BYTES",
    "ROWS",
    "HistoryPage",
    "LogPage",
    "artifact_rows",
    "artifacts_of",
    "cache_entries",
    "deployment_definition",
    "deployment_definitions",
    "find_flow_run",
    "flow_names",
    "get_flow_run",
    "history_page",
    "inline_fold_bytes",
    "lag_line",
    "last_deployment_run_rows",
    "last_deployment_runs",
    "latest_artifact",
    "list_flow_runs",
    "list_run_summaries",
    "log_page",
    "log_page_rows",
    "log_rows",
    "logs_of",
    "recent_flow_runs",
    "run_summary_rows",
    "session",
    "sql",
    "subflow_rows",
    "subflows_of",
    "task_run_rows",
    "task_runs_of",
    "task_state_count_rows",
    "task_state_counts",
    "watch_lag",
    "webhook_rows",
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
            raise _query_error(exc, paths) from exc


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

#: A backlog of at most this many journal bytes is folded before a query, on the
#: caller's clock (a few tens of ms); a bigger one is folded by a separate process
#: while the query answers from what is already folded (``KERNELFLOW_INLINE_FOLD_BYTES``).
INLINE_FOLD_BYTES = 4 * 1024 * 1024


def inline_fold_bytes() -> int:
    """The largest backlog folded before a query (``KERNELFLOW_INLINE_FOLD_BYTES``, 4 MiB).

    Raises
    ------
    ConfigurationError
        The variable is not a whole number of bytes.
    """
    raw = settings.env("INLINE_FOLD_BYTES", "").strip()
    if not raw:
        return INLINE_FOLD_BYTES
    if not raw.isdigit():
        raise ConfigurationError(
            f"KERNELFLOW_INLINE_FOLD_BYTES={raw!r} is not a whole number of bytes; "
            f"set it to e.g. {INLINE_FOLD_BYTES}."
        )
    return int(raw)


class _Lag(threading.local):
    """What the reads of this thread left out (see :func:`watch_lag`)."""

    notes: list[str] | None = None


_lag = _Lag()


@contextmanager
def watch_lag() -> Iterator[list[str]]:
    """Collect the lag lines of the reads made inside the block, in this thread.

    A read that found a backlog too big to fold on the caller's clock answers
    from what is folded and adds one line saying how far behind it is (see
    :func:`lag_line`). A caller that shows answers (a REST payload, a widget)
    shows that line with them.

    Yields
    ------
    list of str
        Filled as reads happen; empty when every answer was up to date.
    """
    outer = _lag.notes
    _lag.notes = notes = []
    try:
        yield notes
    finally:
        _lag.notes = outer
        if outer is not None:
            outer.extend(notes)


def lag_line(pending: int) -> str:
    """The one line telling a reader that ``pending`` bytes of events are not folded yet."""
    from kernelflow._format import format_bytes

    size = format_bytes(pending)
    return (
        f"{size} of recent events are still being folded into the store, so this answer "
        "may miss the newest runs; run again in a few seconds."
    )


@contextmanager
def _reading(paths: StorePaths) -> Iterator[duckdb.DuckDBPyConnection]:
    """Fold a small backlog of journals (best effort), then open the database read-only.

    A backlog over :func:`inline_fold_bytes` is not folded here: a separate
    process folds it (:func:`_catch_up`) while this read answers from what is
    folded, and says how far behind it is (a warning on the ``kernelflow.store``
    logger, and :func:`watch_lag`).

    The fold and the open share one wait of ``KERNELFLOW_LOCK_TIMEOUT``: a
    program holding the file makes a query wait that long (not twice as long),
    then fail with the one-line :class:`~kernelflow.errors.StoreLockedError`
    naming it. A failed fold is reported only when the read then works (the
    answer may lack the newest runs); when the read fails too, one error alone
    says why.
    """
    deadline = time.monotonic() + lock_timeout()
    failure = None
    behind = _backlog(paths)
    if behind:
        _catch_up(paths)
    else:
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
        if behind:
            line = lag_line(behind)
            logger.warning("kernelflow: %s", line)
            if _lag.notes is not None:
                _lag.notes.append(line)
        yield con


def _backlog(paths: StorePaths) -> int:
    """Journal bytes not folded yet when they are too many to fold now, else 0.

    Counted from file sizes and the offsets the last fold recorded, without
    opening the database (:func:`~kernelflow.store.compact.pending_bytes`).
    """
    pending = pending_bytes(paths)
    return pending if pending > inline_fold_bytes() else 0


# Store home -> the fold this process started for it, while it runs.
_catching_up: dict[Path, subprocess.Popen] = {}


def _catch_up(paths: StorePaths) -> subprocess.Popen | None:
    """Fold the backlog in a separate process, unless this process already started one.

    Returns
    -------
    subprocess.Popen or None
        The folding process (None if it could not start); a caller that must
        see the fold end (a test, a benchmark) waits for it.
    """
    running = _catching_up.get(paths.home)
    if running is not None and running.poll() is None:
        return running
    child = start_detached_compaction(paths)
    if child is not None:
        _catching_up[paths.home] = child
    return child


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


# --- Reading kernelflow's own queries, as DataFrames or as rows ------------------------------
#
# The Python API (kernelflow.runs, kernelflow.store) answers with DataFrames; the CLI,
# the REST payloads and the widgets take plain rows (dicts), so they never import pandas.
# Each question is asked by one private function that takes a ``_Reader`` and a shape, so
# both answers come from the same SQL.

#: The shape of an answer: a pandas DataFrame, or a list of dicts (one per row).
Shape = str
FRAME: Shape = "frame"
ROWS: Shape = "rows"


class _Reader:
    """One read-only connection, for the few statements that answer one question."""

    def __init__(self, con: duckdb.DuckDBPyConnection, paths: StorePaths) -> None:
        self.con = con
        self.paths = paths
        # Flow run ids -> their span: a page asks for it once per table it reads.
        self.spans: dict[tuple[str, ...], _Span] = {}
        # "tables:deployments" -> whether the store has it (asked once per connection).
        self.tables: dict[str, bool] = {}

    def execute(self, query: str, params: Any = None) -> duckdb.DuckDBPyConnection:
        try:
            return self.con.execute(query, params)
        except duckdb.Error as exc:
            raise _query_error(exc, self.paths) from exc

    def fetch(self, query: str, params: Any = None, shape: Shape = FRAME) -> Any:
        """The result as a DataFrame (``FRAME``) or a list of dicts (``ROWS``)."""
        result = self.execute(query, params)
        try:
            if shape == FRAME:
                return result.df()
            names = [column[0] for column in result.description]
            return [dict(zip(names, row, strict=True)) for row in result.fetchall()]
        except duckdb.Error as exc:
            raise _query_error(exc, self.paths) from exc

    def one(self, query: str, params: Any = None) -> tuple:
        return self.execute(query, params).fetchone()


class _Session(threading.local):
    """The reader every query of this thread shares inside :func:`session`."""

    reader: _Reader | None = None


_session = _Session()


@contextmanager
def session() -> Iterator[None]:
    """Answer every query of this thread inside the block from one read-only connection.

    Opening the database costs more than most of the questions a page asks
    (tens of ms); a CLI command or a REST payload that asks several opens it
    once. The connection (and the store's shared lock) is held until the block
    ends, so keep the block to the queries: nothing in it may write the store.
    Nested sessions share the outer one; :func:`sql` always opens its own.
    """
    if _session.reader is not None:
        yield
        return
    with _read() as reader:
        _session.reader = reader
        try:
            yield
        finally:
            _session.reader = None


@contextmanager
def _read() -> Iterator[_Reader]:
    if _session.reader is not None:
        yield _session.reader
        return
    paths = settings.paths()
    with _reading(paths) as con:
        yield _Reader(con, paths)


# A run's task runs and log lines lie inside its own time span, and the store holds rows
# in about the order they were created, so bounding ``created`` / ``timestamp`` by the
# run's span lets DuckDB skip every row group outside it (zone maps) instead of reading
# millions of ids. The margin covers clocks of other hosts (Dask workers) and events
# folded late; a run without a known start or end is not bounded on that side.
_MARGIN = "INTERVAL 1 DAY"
_MARGIN_DELTA = dt.timedelta(days=1)
_TERMINAL = ", ".join(f"'{kind}'" for kind in TERMINAL_STATE_TYPES)


@dataclass(frozen=True)
class _Span:
    """When the rows of some flow runs can be: ``low`` to ``high`` (None: unbounded)."""

    low: Any = None
    high: Any = None

    def where(self, column: str, params: dict[str, Any]) -> str:
        """``AND`` conditions bounding ``column``; their values are added to ``params``."""
        text = ""
        if self.low is not None:
            text += f" AND {column} >= $span_low"
            params["span_low"] = self.low
        if self.high is not None:
            text += f" AND {column} <= $span_high"
            params["span_high"] = self.high
        return text


def _span(reader: _Reader, flow_run_ids: Sequence[str]) -> _Span:
    """The span the task runs (and logs) of these flow runs (and their subflows) lie in."""
    ids = sorted(set(flow_run_ids))
    if not ids:
        return _Span()
    known = reader.spans.get(tuple(ids))
    if known is not None:
        return known
    reader.spans[tuple(ids)] = span = _looked_up_span(reader, ids)
    return span


def _looked_up_span(reader: _Reader, ids: list[str]) -> _Span:
    found, started, low, high = reader.one(
        f"""
        SELECT count(*), count(created), min(created) - {_MARGIN},
            CASE WHEN count(*) = count(end_time) AND bool_and(state_type IN ({_TERMINAL}))
                 THEN max(end_time) + {_MARGIN} END
        FROM flow_runs WHERE list_contains($ids, id)
        """,
        {"ids": ids},
    )
    # A run known only by a task's event (no row, or no creation time yet): no bound.
    if found < len(ids) or started < found:
        return _Span()
    return _Span(low, high)


def _span_of(runs: Sequence[Mapping[str, Any]]) -> _Span:
    """:func:`_span` of flow runs already read (rows with ``created``, ``end_time``...)."""
    if not runs or any(run.get("created") is None for run in runs):
        return _Span()
    low = min(run["created"] for run in runs) - _MARGIN_DELTA
    ended = all(
        run.get("end_time") is not None and run.get("state_type") in TERMINAL_STATE_TYPES
        for run in runs
    )
    high = max(run["end_time"] for run in runs) + _MARGIN_DELTA if ended else None
    return _Span(low, high)


def _flow_run_filter(
    flow: str | None, state: str | None, deployment: str | None
) -> tuple[str, list[Any]]:
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
    return " AND ".join(where), params


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
    with _read() as reader:
        return _recent_flow_runs(reader, flow, state, limit, deployment, FRAME)


def _recent_flow_runs(
    reader: _Reader,
    flow: str | None,
    state: str | None,
    limit: int,
    deployment: str | None,
    shape: Shape,
) -> Any:
    where, params = _flow_run_filter(flow, state, deployment)
    order = "ORDER BY created DESC NULLS LAST, id"
    if shape == FRAME:
        return reader.fetch(
            f"SELECT * FROM flow_runs WHERE {where} {order} LIMIT ?", [*params, int(limit)], shape
        )
    # The page is cut on two narrow columns, then only its rows are read whole.
    page = _newest(
        reader, f"SELECT id, created FROM flow_runs WHERE {where}{{recent}} {order}", params, limit
    )
    return _whole_rows(reader, page)


#: Pages of newest runs are looked for among the runs of this last stretch of time first.
_RECENT = dt.timedelta(days=7)


def _newest(
    reader: _Reader,
    query: str,
    params: list[Any],
    limit: int,
    offset: int = 0,
    column: str = "created",
) -> list[tuple]:
    """``query`` (ordered newest first) cut to ``LIMIT limit OFFSET offset``.

    Tried first on the runs created in the last :data:`_RECENT` (``{recent}`` in
    ``query`` becomes that condition), which DuckDB reads from the newest row
    groups only: when that finds a whole page, no older run can belong in it
    (each is older than every run found). Otherwise the whole table is sorted.
    """
    cut = [*params, int(limit), int(offset)]
    since = dt.datetime.now(dt.timezone.utc) - _RECENT
    recent = reader.execute(
        query.replace("{recent}", f" AND {column} >= ?") + " LIMIT ? OFFSET ?",
        [*params, since, *cut[-2:]],
    ).fetchall()
    if len(recent) == limit:
        return recent
    return reader.execute(query.replace("{recent}", "") + " LIMIT ? OFFSET ?", cut).fetchall()


def _whole_rows(reader: _Reader, page: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    """Every column of the flow runs ``page`` names (``(id, created)`` pairs), in its order.

    Bounded by the page's creation times, so DuckDB reads only their row groups.
    """
    if not page:
        return []
    params: dict[str, Any] = {"ids": [run_id for run_id, _ in page]}
    bound = ""
    if all(created is not None for _, created in page):
        bound = " AND created >= $low AND created <= $high"
        params["low"] = min(created for _, created in page)
        params["high"] = max(created for _, created in page)
    rows = reader.fetch(
        f"SELECT * FROM flow_runs WHERE list_contains($ids, id){bound}", params, ROWS
    )
    by_id = {row["id"]: row for row in rows}
    return [by_id[run_id] for run_id, _ in page if run_id in by_id]


def recent_flow_runs(
    flow: str | None = None,
    state: str | None = None,
    limit: int = 20,
    deployment: str | None = None,
) -> list[dict[str, Any]]:
    """:func:`list_flow_runs` as rows, each with ``task_runs``: how many task runs it has.

    The page and the counts are computed in SQL on one connection; the counts
    read only the row groups of the page's time span.

    Returns
    -------
    list of dict
        Rows of ``flow_runs`` plus ``task_runs``, newest first.
    """
    with _read() as reader:
        runs = _recent_flow_runs(reader, flow, state, limit, deployment, ROWS)
        counts = _task_run_counts(reader, runs)
    for run in runs:
        run["task_runs"] = counts.get(run["id"], 0)
    return runs


def _task_run_counts(reader: _Reader, runs: list[dict[str, Any]]) -> dict[str, int]:
    """Flow run id -> how many task runs it has, for flow runs already read."""
    if not runs:
        return {}
    params: dict[str, Any] = {"ids": [run["id"] for run in runs]}
    bound = _span_of(runs).where("created", params)
    rows = reader.execute(
        "SELECT flow_run_id, count(*) FROM task_runs "
        f"WHERE list_contains($ids, flow_run_id){bound} GROUP BY flow_run_id",
        params,
    ).fetchall()
    return {run_id: int(n) for run_id, n in rows}


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
    with _read() as reader:
        found = _find_flow_run(reader, str(flow_run_id), FRAME)
    _check_found(str(flow_run_id), len(found), None if found.empty else found["id"].iloc[0])
    return found.head(1).reset_index(drop=True)


def find_flow_run(flow_run_id: str) -> dict[str, Any]:
    """:func:`get_flow_run` as one row (a dict).

    Raises
    ------
    RunNotFoundError
        No flow run matches, or the prefix matches several.
    """
    with _read() as reader:
        found = _find_flow_run(reader, str(flow_run_id), ROWS)
        _check_found(str(flow_run_id), len(found), found[0]["id"] if found else None)
        # The questions that follow (its task runs, logs...) need its span: it is here.
        reader.spans[(found[0]["id"],)] = _span_of(found[:1])
    return found[0]


def _find_flow_run(reader: _Reader, prefix: str, shape: Shape) -> Any:
    return reader.fetch(
        # An exact match first: an id may also be the prefix of another id.
        "SELECT * FROM flow_runs WHERE starts_with(id, ?) ORDER BY id = ? DESC, id LIMIT 2",
        [prefix, prefix],
        shape,
    )


def _check_found(prefix: str, found: int, first_id: str | None) -> None:
    if found == 0:
        raise RunNotFoundError(
            f"No flow run has an id starting with {prefix!r}; list recent runs with "
            "'kernelflow runs ls'."
        )
    if found > 1 and first_id != prefix:
        raise RunNotFoundError(
            f"Several flow runs have ids starting with {prefix!r}; give more characters "
            "(see 'kernelflow runs ls')."
        )


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
    with _read() as reader:
        return _task_runs(reader, [flow_run_id], FRAME)


def task_run_rows(flow_run_ids: str | Sequence[str]) -> list[dict[str, Any]]:
    """The task runs of one or more flow runs as rows, in the order they were created.

    Parameters
    ----------
    flow_run_ids
        A flow run's id, or several (a deployment run and its notebook session).

    Returns
    -------
    list of dict
        Rows of ``task_runs``.
    """
    ids = [flow_run_ids] if isinstance(flow_run_ids, str) else list(flow_run_ids)
    with _read() as reader:
        return _task_runs(reader, ids, ROWS)


def _task_runs(reader: _Reader, flow_run_ids: list[str], shape: Shape) -> Any:
    params: dict[str, Any] = {"ids": flow_run_ids}
    bound = _span(reader, flow_run_ids).where("created", params)
    return reader.fetch(
        f"SELECT * FROM task_runs WHERE list_contains($ids, flow_run_id){bound} "
        "ORDER BY created NULLS LAST, id",
        params,
        shape,
    )


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
    where = _RUN_AND_TASK_LOGS.format(tasks=span.where("created", params))
    return where + span.where("timestamp", params), params


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
        where, params = _log_filter(reader, run_id, include_task_runs)
        return reader.fetch(f"SELECT * FROM logs WHERE {where} {_LOG_ORDER}", params)


def log_rows(run_id: str, include_task_runs: bool = True) -> list[dict[str, Any]]:
    """:func:`logs_of` as rows."""
    with _read() as reader:
        where, params = _log_filter(reader, run_id, include_task_runs)
        return reader.fetch(f"SELECT * FROM logs WHERE {where} {_LOG_ORDER}", params, ROWS)


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
    with _read() as reader:
        return _subflows(reader, flow_run_id, FRAME)


def subflow_rows(flow_run_id: str) -> list[dict[str, Any]]:
    """:func:`subflows_of` as rows."""
    with _read() as reader:
        return _subflows(reader, flow_run_id, ROWS)


def _subflows(reader: _Reader, flow_run_id: str, shape: Shape) -> Any:
    return reader.fetch(
        "SELECT * FROM flow_runs WHERE parent_flow_run_id = ? ORDER BY created NULLS LAST, id",
        [flow_run_id],
        shape,
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
    with _read() as reader:
        return _webhooks(reader, flow_run_id, FRAME)


def webhook_rows(flow_run_id: str) -> list[dict[str, Any]]:
    """:func:`webhooks_of` as rows."""
    with _read() as reader:
        return _webhooks(reader, flow_run_id, ROWS)


def _webhooks(reader: _Reader, flow_run_id: str, shape: Shape) -> Any:
    if not _has_table(reader, "webhooks", "views"):
        return reader.fetch("SELECT NULL::VARCHAR AS url WHERE FALSE", None, shape)
    params: dict[str, Any] = {"run": flow_run_id}
    bound = _span(reader, [flow_run_id]).where("timestamp", params)
    return reader.fetch(
        "SELECT url, outcome, detail, timestamp FROM webhooks WHERE flow_run_id = $run"
        f"{bound} ORDER BY timestamp",
        params,
        shape,
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
    with _read() as reader:
        return reader.fetch(
            f"SELECT * FROM cache_entries {where} ORDER BY created DESC NULLS LAST, key"
        )


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
    with _read() as reader:
        return _artifacts(reader, flow_run_id, FRAME)


def artifact_rows(flow_run_id: str) -> list[dict[str, Any]]:
    """:func:`artifacts_of` as rows."""
    with _read() as reader:
        return _artifacts(reader, flow_run_id, ROWS)


def _artifacts(reader: _Reader, flow_run_id: str, shape: Shape) -> Any:
    params: dict[str, Any] = {"run": flow_run_id}
    bound = _span(reader, [flow_run_id]).where("created", params)
    return reader.fetch(
        f"SELECT {_ARTIFACT_COLUMNS} FROM artifacts "
        "WHERE created IS NOT NULL AND (flow_run_id = $run "
        f"OR task_run_id IN (SELECT id FROM task_runs WHERE flow_run_id = $run{bound})) "
        "ORDER BY created, id",
        params,
        shape,
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
    with _read() as reader:
        return reader.fetch(
            f"SELECT {_ARTIFACT_COLUMNS} FROM artifacts WHERE key = ? AND created IS NOT NULL "
            "ORDER BY updated DESC NULLS LAST, created DESC, id DESC LIMIT 1",
            [key],
        )


def _has_table(reader: _Reader, name: str, kind: str = "tables") -> bool:
    """Whether the store has this table (``kind="views"``: view); asked once per reader."""
    key = f"{kind}:{name}"
    known = reader.tables.get(key)
    if known is None:
        column = "table_name" if kind == "tables" else "view_name"
        (found,) = reader.one(
            f"SELECT count(*) FROM duckdb_{kind}() WHERE schema_name = 'main' AND {column} = ?",
            [name],
        )
        known = reader.tables[key] = bool(found)
    return known


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
    with _read() as reader:
        return _run_summaries(
            reader,
            flow,
            state,
            deployment,
            since,
            until,
            run_id,
            limit,
            offset,
            fold_skipped,
            FRAME,
        )


def run_summary_rows(
    flow: str | None = None,
    state: str | None = None,
    deployment: str | None = None,
    since: float | None = None,
    until: float | None = None,
    run_id: str | None = None,
    limit: int = 50,
    offset: int = 0,
    fold_skipped: bool = True,
) -> list[dict[str, Any]]:
    """:func:`list_run_summaries` as rows (the REST API's page of runs)."""
    with _read() as reader:
        return _run_summaries(
            reader, flow, state, deployment, since, until, run_id, limit, offset, fold_skipped, ROWS
        )


def _run_summaries(
    reader: _Reader,
    flow: str | None,
    state: str | None,
    deployment: str | None,
    since: float | None,
    until: float | None,
    run_id: str | None,
    limit: int,
    offset: int,
    fold_skipped: bool,
    shape: Shape,
) -> Any:
    has_deployments = _has_table(reader, "deployments")
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
        joins_for_filters = "LEFT JOIN deployments d ON d.id = r.deployment_id"
        joins = (
            "LEFT JOIN deployments d ON d.id = r.deployment_id "
            "LEFT JOIN deployments pd ON pd.id = p.deployment_id"
        )
    else:  # a store older than deployments: the same columns, all null
        joins_for_filters = ""  # the deployment filter is FALSE: no table to join
        joins = (
            "LEFT JOIN (SELECT NULL::VARCHAR AS id, NULL::VARCHAR AS name, "
            "NULL::VARCHAR AS notebook WHERE FALSE) d ON d.id = r.deployment_id "
            "LEFT JOIN (SELECT NULL::VARCHAR AS id, NULL::VARCHAR AS notebook "
            "WHERE FALSE) pd ON pd.id = p.deployment_id"
        )
    # Gaps and islands over each deployment's whole history (not only what the
    # filters keep): in its runs, oldest first, consecutive Skipped runs share
    # (position among all its runs - position among its Skipped runs). Only
    # Skipped runs fold, so only they are counted per island; every other run is
    # its own row, and the page is cut (ORDER BY ... LIMIT) without a window over
    # every run of the store.
    history = """
        SELECT id AS run, 'skipped:' || deployment_id || ':' || (
            row_number() OVER (PARTITION BY deployment_id ORDER BY created NULLS FIRST, id)
            - row_number() OVER (
                PARTITION BY deployment_id, skipped ORDER BY created NULLS FIRST, id)
        ) AS island, skipped
        FROM (
            SELECT *, coalesce(state_name = 'Skipped', FALSE) AS skipped FROM flow_runs
            WHERE deployment_id IS NOT NULL AND parent_flow_run_id IS NULL
              -- only deployments that skipped a run have islands to fold
              AND deployment_id IN (
                  SELECT deployment_id FROM flow_runs WHERE state_name = 'Skipped')
        )
    """
    if fold_skipped:
        # Most stores never skipped a run: then there is nothing to fold, and the
        # newest page can be looked for among recent runs first (see _newest).
        (skipped,) = reader.one("SELECT count(*) FROM flow_runs WHERE state_name = 'Skipped'")
        fold_skipped = skipped > 0
    if not fold_skipped:
        history = "SELECT NULL::VARCHAR AS run, NULL::VARCHAR AS island, FALSE AS skipped"
    # The page is cut on narrow columns first (the filters, the folding of Skipped
    # runs); only then are its rows read whole and joined with their parent and
    # deployment, so a store of 100k runs costs one narrow scan, not a join of all.
    filters = " AND ".join(where)
    query = f"""
        WITH history AS ({history}),
        kept AS (
            SELECT r.id, r.created, r.parent_flow_run_id,
                   CASE WHEN h.skipped THEN h.island END AS island
            FROM flow_runs r
            LEFT JOIN history h ON h.run = r.id
            {joins_for_filters if deployment is not None else ""}
            WHERE {filters}{{recent}}
        ),
        islands AS (
            SELECT island, count(*) AS folded, min(created) AS folded_since,
                   arg_min(id, (created IS NULL, -epoch_us(created), id)) AS shown
            FROM kept WHERE island IS NOT NULL GROUP BY island
        )
        SELECT k.id, k.created, k.parent_flow_run_id, coalesce(i.folded, 1) AS folded,
               CASE WHEN i.island IS NULL THEN k.created ELSE i.folded_since END AS folded_since
        FROM kept k LEFT JOIN islands i ON i.island = k.island
        WHERE k.island IS NULL OR k.id = i.shown
        ORDER BY k.created DESC NULLS LAST, k.id
    """
    if fold_skipped or run_id is not None:
        # Islands may reach back past any recent stretch, and one run may be old: one query.
        page = reader.execute(
            query.replace("{recent}", "") + " LIMIT ? OFFSET ?", [*params, int(limit), int(offset)]
        ).fetchall()
    else:
        page = _newest(reader, query, params, limit, offset, column="r.created")
    if not page:
        return reader.fetch(
            f"SELECT r.*, {_RUN_KIND} AS kind, {_RUN_PATH} AS path, d.name AS deployment, "
            "1 AS folded, r.created AS folded_since FROM flow_runs r "
            f"LEFT JOIN flow_runs p ON p.id = r.parent_flow_run_id {joins} WHERE FALSE",
            None,
            shape,
        )
    ids = [run_id for run_id, *_ in page]
    # Only the page's parents are joined (not a hash table of every flow run).
    parents = sorted({parent for _, _, parent, *_ in page if parent is not None})
    details: dict[str, Any] = {"ids": ids}
    parent_rows = (
        "SELECT NULL::VARCHAR AS id, NULL::VARCHAR[] AS tags, NULL::VARCHAR AS deployment_id"
    )
    if parents:
        parent_rows = (
            "SELECT id, tags, deployment_id FROM flow_runs WHERE list_contains($parents, id)"
        )
        details["parents"] = parents
    bound = ""
    if all(created is not None for _, created, *_ in page):
        bound = " AND r.created >= $low AND r.created <= $high"
        details["low"] = min(created for _, created, *_ in page)
        details["high"] = max(created for _, created, *_ in page)
    folded = "VALUES " + ", ".join(
        f"($id{i}, $n{i}::BIGINT, $since{i}::TIMESTAMPTZ, {i})" for i in range(len(page))
    )
    for i, (run_id, _, _, count, since) in enumerate(page):
        details.update({f"id{i}": run_id, f"n{i}": count, f"since{i}": since})
    return reader.fetch(
        f"""
        SELECT r.*, {_RUN_KIND} AS kind, {_RUN_PATH} AS path, d.name AS deployment,
               f.folded, f.folded_since
        FROM flow_runs r
        JOIN ({folded}) f(id, folded, folded_since, place) ON f.id = r.id
        LEFT JOIN ({parent_rows}) p ON p.id = r.parent_flow_run_id
        {joins}
        WHERE list_contains($ids, r.id){bound}
        ORDER BY f.place
        """,
        details,
        shape,
    )


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
    with _read() as reader:
        return _task_state_counts(reader, flow_run_ids, FRAME)


def task_state_count_rows(
    flow_run_ids: Sequence[str], runs: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """:func:`task_state_counts` as rows.

    Parameters
    ----------
    flow_run_ids
        The flow runs to count for.
    runs
        Those flow runs' rows, when the caller has read them already (with
        ``created``, ``end_time`` and ``state_type`` as the store returns
        them): they bound the count without reading them again.
    """
    with _read() as reader:
        return _task_state_counts(reader, flow_run_ids, ROWS, runs)


def _task_state_counts(
    reader: _Reader, flow_run_ids: Sequence[str], shape: Shape, runs: list[dict] | None = None
) -> Any:
    """The counts; ``runs``, when the caller read them already, spare a lookup of their span."""
    params: dict[str, Any] = {"ids": list(flow_run_ids)}
    span = _span(reader, flow_run_ids) if runs is None else _span_of(runs)
    tasks = span.where("t.created", params)
    # The flow runs involved lie in the same span as their task runs (a session starts
    # after the deployment run that started it), so each scan of flow_runs is bounded too.
    listed = span.where("created", {})
    sessions = span.where("s.created", {})
    return reader.fetch(
        f"""
        WITH listed AS (
            SELECT id, deployment_id FROM flow_runs WHERE list_contains($ids, id){listed}
        ),
        owners AS (
            SELECT id AS member, id AS owner FROM listed
            UNION ALL
            SELECT s.id, s.parent_flow_run_id FROM flow_runs s
            JOIN listed o ON o.id = s.parent_flow_run_id
            WHERE o.deployment_id IS NOT NULL
              AND coalesce(list_contains(s.tags, 'notebook'), FALSE){sessions}
        )
        SELECT owners.owner AS flow_run_id, coalesce(t.state_name, 'Unknown') AS state_name,
               t.state_type, count(*) AS n
        FROM task_runs t JOIN owners ON t.flow_run_id = owners.member
        WHERE TRUE{tasks}
        GROUP BY ALL
        """,
        params,
        shape,
    )


def _deployments_exist(reader: _Reader) -> bool:
    """Whether the store has the ``deployments`` table (a store older than it has not)."""
    return _has_table(reader, "deployments")


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
    with _read() as reader:
        if not _deployments_exist(reader):
            return None
        found = reader.one("SELECT definition FROM deployments WHERE id = ?", [deployment_id])
    return None if found is None else str(found[0])


def deployment_definitions() -> list[str] | None:
    """Every deployment's stored definition (JSON text), by name.

    Returns
    -------
    list of str or None
        ``None`` for a store without the ``deployments`` table (written
        before deployments existed).
    """
    with _read() as reader:
        if not _deployments_exist(reader):
            return None
        found = reader.execute("SELECT definition FROM deployments ORDER BY name").fetchall()
    return [str(definition) for (definition,) in found]


def last_deployment_runs() -> pandas.DataFrame:
    """The newest top-level run of each deployment.

    Returns
    -------
    pandas.DataFrame
        ``deployment_id``, and the run's ``id``, ``state_name``,
        ``state_type`` and ``created``.
    """
    with _read() as reader:
        return reader.fetch(_LAST_DEPLOYMENT_RUNS)


def last_deployment_run_rows() -> list[dict[str, Any]]:
    """:func:`last_deployment_runs` as rows."""
    with _read() as reader:
        return reader.fetch(_LAST_DEPLOYMENT_RUNS, None, ROWS)


_LAST_DEPLOYMENT_RUNS = (
    "SELECT deployment_id, arg_max(id, created) AS id, "
    "arg_max(state_name, created) AS state_name, arg_max(state_type, created) AS state_type, "
    "max(created) AS created FROM flow_runs "
    "WHERE deployment_id IS NOT NULL AND parent_flow_run_id IS NULL GROUP BY deployment_id"
)


@dataclass
class HistoryPage:
    """One page of :func:`history_page`.

    Attributes
    ----------
    runs
        Rows of ``flow_runs`` (the columns the history shows) with
        ``task_runs``, newest first.
    total
        How many flow runs match the filters in all.
    """

    runs: list[dict[str, Any]]
    total: int


def history_page(
    flow: str | None = None,
    state: str | None = None,
    since: Any = None,
    until: Any = None,
    offset: int = 0,
    limit: int = 20,
) -> HistoryPage:
    """A page of flow runs for the run history widget, with the count of all that match.

    Parameters
    ----------
    flow
        Only runs of this flow.
    state
        Only runs in this state, by name or type (case-insensitive).
    since, until
        Only runs created at or after ``since`` and before ``until`` (datetimes).
    offset, limit
        The page.

    Returns
    -------
    HistoryPage
    """
    where, params = _flow_run_filter(flow, state, None)
    if since is not None:
        where += " AND created >= ?"
        params.append(since)
    if until is not None:
        where += " AND created < ?"
        params.append(until)
    with _read() as reader:
        (total,) = reader.one(f"SELECT count(*) FROM flow_runs WHERE {where}", params)
        page = _newest(
            reader,
            f"SELECT id, created FROM flow_runs WHERE {where}{{recent}} "
            "ORDER BY created DESC NULLS LAST, id DESC",
            params,
            limit,
            offset,
        )
        runs = _whole_rows(reader, page)
        counts = _task_run_counts(reader, runs)
    for run in runs:
        run["task_runs"] = counts.get(run["id"], 0)
    return HistoryPage(runs=runs, total=int(total))


def flow_names() -> list[str]:
    """Every flow name in the store, sorted."""
    with _read() as reader:
        found = reader.execute(
            "SELECT DISTINCT flow_name FROM flow_runs WHERE flow_name IS NOT NULL "
            "ORDER BY flow_name"
        ).fetchall()
    return [str(name) for (name,) in found]
