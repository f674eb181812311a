"""How kernelflow's own queries read the store: fold a little first, then open read-only.

Each read first folds a small backlog of journal events into the database
(best effort: a failure there is logged, and the query still runs on what is
already imported), then opens the database read-only, so several readers can
query at once. A backlog over :func:`inline_fold_bytes` is folded by a
separate process instead, and the answer says in one line how far behind it
is (:func:`watch_lag`). :func:`session` lets a page ask its questions on one
connection; :class:`_Reader` answers each as a DataFrame or as rows.
"""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from kernelflow import settings
from kernelflow.errors import QueryError, StoreError, StoreLockedError
from kernelflow.settings import StorePaths
from kernelflow.store.compact import compact, pending_bytes
from kernelflow.store.compactor import start_detached_compaction
from kernelflow.store.db import connect, lock_timeout, translate_error
from kernelflow.store.queries.attached import attached

logger = logging.getLogger("kernelflow.store")


#: Where a refused query is sent, in every message.
_SCHEMA_HINT = "the store's tables are in docs/schema.md"


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
INLINE_FOLD_BYTES = settings.Settings({}).inline_fold_bytes


def inline_fold_bytes() -> int:
    """The largest backlog folded before a query (``KERNELFLOW_INLINE_FOLD_BYTES``, 4 MiB).

    Raises
    ------
    ConfigurationError
        The variable is not a whole number of bytes.
    """
    return settings.current().inline_fold_bytes


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
    notes: list[str] = []
    _lag.notes = notes
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
def _reading(paths: StorePaths, attach: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """Fold a small backlog of journals (best effort), then open the database read-only.

    ``attach``: read through the process's DuckDB instance (:mod:`.attached`,
    1.5 ms instead of 17 ms to open), for kernelflow's own queries only;
    otherwise a sandboxed connection of its own, for users' SQL.

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
            con = stack.enter_context(attached(paths, remaining)) if attach else None
            if con is None:  # users' SQL, or a store to create or migrate first
                remaining = max(0.0, deadline - time.monotonic())
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


#: At most this many task runs known to a reader are named in a query (logs, artifacts);
#: a run with more has them looked up in SQL, as a long list is slow to search.
_NAMED_TASK_RUNS = 1000


class _Reader:
    """One read-only connection, for the few statements that answer one question."""

    def __init__(self, con: duckdb.DuckDBPyConnection, paths: StorePaths) -> None:
        self.con = con
        self.paths = paths
        # Flow run ids -> their span: a page asks for it once per table it reads.
        self.spans: dict[tuple[str, ...], _Span] = {}
        # "tables:deployments" -> whether the store has it (asked once per connection).
        self.tables: dict[str, bool] = {}
        # Flow run id -> (created, parent_flow_run_id) of a run read whole on this
        # connection, so a later question about it needs no scan of the ids to find it.
        self.found: dict[str, tuple[Any, Any]] = {}
        # Flow run id -> the ids of all its task runs in its span, once read whole, and
        # whether it has notebook sessions as children, once its subflows were read: what
        # a later question about its logs or artifacts would otherwise look up again.
        self.task_ids: dict[str, list[str]] = {}
        self.has_sessions: dict[str, bool] = {}

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

    def one(self, query: str, params: Any = None) -> Any:
        """The first row of the answer (a tuple), or None when it has none."""
        return self.execute(query, params).fetchone()


class _Session(threading.local):
    """The reader every query of this thread shares inside :func:`session`."""

    reader: _Reader | None = None


_session = _Session()


@contextmanager
def session() -> Iterator[None]:
    """Answer every query of this thread inside the block from one read-only connection.

    Opening the database costs more than most of the questions a page asks
    (attaching it, :mod:`.attached`, a few ms); a CLI command or a REST
    payload that asks several opens it once. The connection (and the store's
    shared lock) is held until the block ends, so keep the block to the
    queries: nothing in it may write the store.
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
    with _reading(paths, attach=True) as con:
        yield _Reader(con, paths)


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
