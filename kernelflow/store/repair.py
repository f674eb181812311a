"""Repairing the store: rebuild an unreadable database from what is still on disk.

Design
------
:func:`repair` (``kernelflow store repair``) holds the store's write lock
throughout, so no compaction, query or deployment change runs meanwhile. It:

1. checks the database: it opens, and every table reads through (a damaged
   block fails its checksum only when it is read). A readable file is left
   alone unless ``force``;
2. moves the file (and its write-ahead log) aside, to
   ``kernelflow.duckdb.corrupt-<time>`` next to it, where it stays until the
   user deletes it;
3. creates a fresh database and folds every journal still on disk into it from
   its first byte: how far each journal was folded was recorded in the old
   file, so the fresh one starts at 0;
4. copies from the old file, table by table, what the journals did not give
   back, for every table that still reads through;
5. registers again the cache entries the cache index and result files still
   hold, and mirrors the concurrency-limit files again.

What can come back follows from where each thing lives:

- a running process's current journal part is kept whole, so its runs come
  back; parts it has left (rotated, see :mod:`kernelflow.store.journal`) are
  deleted once folded, like a finished process's journal below;
- a finished process's journal is deleted once folded (see
  :mod:`kernelflow.store.compact`): its runs, logs and cache hits lived only
  in the old file, and come back only as far as that file still reads;
- cache entries and limit definitions are files, so they always come back;
- deployments and their schedule claims, and variables, live only in the
  database (secrets are files, untouched).

The report says what was recovered and names what is known lost.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from kernelflow import settings
from kernelflow.errors import SchemaTooNewError, StoreLockedError, StoreNotWritableError
from kernelflow.settings import StorePaths
from kernelflow.store.compact import CompactReport, fold
from kernelflow.store.db import connect, translate_error, write_lock
from kernelflow.store.schema import check_not_too_new, schema_version

__all__ = ["RepairReport", "repair"]

logger = logging.getLogger("kernelflow.store")

#: Tables copied from the old file, with the columns that identify a row, so a
#: row the journals gave back is not copied twice. Not copied: journal_offsets
#: (they describe the old file's folds), schema_version, and concurrency_limits
#: (mirrored again from the limit files, which are the truth).
_COPIED: dict[str, tuple[str, ...]] = {
    "flow_runs": ("id",),
    "task_runs": ("id",),
    "states": ("run_id", "process", "seq"),
    "logs": ("run_id", "process", "seq"),
    "processes": ("process",),
    "cache_entries": ("key",),
    "deployments": ("id",),
    "deployment_fires": ("deployment_id", "scheduled_time"),
    "deployment_attempts": ("flow_run_id", "attempt"),
    "artifacts": ("id",),
    "events": ("id",),
    "variables": ("name",),
}

#: The columns of a run that one state event sets together (see compaction).
_STATE_COLUMNS = frozenset(
    "state_type state_name state_message state_timestamp start_time end_time duration_s "
    "run_count result host pid process cached".split()
)


@dataclass
class RepairReport:
    """What one :func:`repair` call found and did.

    Attributes
    ----------
    database
        The store's database file.
    problem
        Why it could not be read (DuckDB's reason), or None when it could.
    repaired
        Whether it was rebuilt (False: it was readable and ``force`` was not given).
    moved_to
        Where the old file went (None: it was not moved, or there was none).
    journals
        Journals folded into the new database.
    flow_runs, task_runs, logs, cache_entries, deployments
        Rows the new database holds (cache entries: the live ones).
    copied
        Rows copied from the old file that the journals no longer held, by table.
    not_copied
        Tables of the old file that could not be read (every table when the file
        could not be opened at all).
    registered
        Cache entries registered again from the cache index.
    lost
        What is known lost, in plain sentences; empty when nothing is.
    """

    database: Path
    problem: str | None = None
    repaired: bool = False
    moved_to: Path | None = None
    journals: int = 0
    flow_runs: int = 0
    task_runs: int = 0
    logs: int = 0
    cache_entries: int = 0
    deployments: int = 0
    copied: dict[str, int] = field(default_factory=dict)
    not_copied: list[str] = field(default_factory=list)
    registered: int = 0
    lost: list[str] = field(default_factory=list)


def repair(*, force: bool = False, timeout: float | None = None) -> RepairReport:
    """Rebuild the active store's database when it cannot be read.

    The old file is moved aside, never deleted; the new one is built from the
    journals, what the old file still yields, the cache index and the limit
    files (see the module docstring).

    Parameters
    ----------
    force
        Rebuild even when the database reads fine.
    timeout
        Seconds to wait for the store's lock; default ``KERNELFLOW_LOCK_TIMEOUT``.

    Returns
    -------
    RepairReport

    Raises
    ------
    StoreLockedError
        Another process kept the store busy for longer than ``timeout``, or
        another program keeps the database open.
    SchemaTooNewError
        The database was written by a newer kernelflow: it is not damaged, so it
        is left alone (upgrade kernelflow instead).
    StoreNotWritableError
        The store directory cannot be written.

    Examples
    --------
    >>> from kernelflow.store.repair import repair
    >>> report = repair()  # doctest: +SKIP
    >>> report.repaired, report.flow_runs, report.lost  # doctest: +SKIP
    (True, 12, [])
    """
    paths = settings.paths()
    report = RepairReport(database=paths.database)
    with write_lock(paths, timeout=timeout):
        report.problem = _problem(paths)
        if report.problem is None and not force:
            return report
        report.moved_to = _move_aside(paths.database, "corrupt" if report.problem else "old")
        try:
            with connect(paths, lock_held=True) as con:
                try:
                    _rebuild(con, paths, report)
                except duckdb.Error as exc:
                    raise translate_error(exc, paths) from None
        except BaseException:
            if report.moved_to is not None:
                logger.warning(
                    "kernelflow: the repair stopped; the old database is kept at %s",
                    report.moved_to,
                )
            raise
    report.repaired = True
    return report


def _rebuild(con: duckdb.DuckDBPyConnection, paths: StorePaths, report: RepairReport) -> None:
    folded = CompactReport()
    # The fresh file has no journal_offsets: every journal is read from its first byte.
    fold(con, paths, folded)
    report.journals = folded.journals
    if report.moved_to is not None:
        _copy_old(con, report.moved_to, report)
    _register_cache(con, paths, report)
    _mirror_limits(con, paths)
    for name in ("flow_runs", "task_runs", "logs", "deployments"):
        setattr(report, name, con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0])
    report.cache_entries = con.execute(
        "SELECT count(*) FROM cache_entries WHERE NOT deleted"
    ).fetchall()[0][0]
    report.lost = _lost(con, paths, report)


# -- checking and moving the old file ------------------------------------------------------------


def _problem(paths: StorePaths) -> str | None:
    """Why the database cannot be read, or None when it opens and every table reads through."""
    if not paths.database.exists():
        return None
    try:
        con = duckdb.connect(str(paths.database), read_only=True)
    except duckdb.Error as exc:
        return _damage(exc, paths)
    try:
        check_not_too_new(schema_version(con), paths.database)
        for table in _tables(con):
            # Aggregating every column reads every block, so a damaged one fails its checksum.
            con.execute(f'SELECT max(hash(COLUMNS(*))) FROM "{table}"').fetchall()
    except duckdb.Error as exc:
        return _damage(exc, paths)
    finally:
        con.close()
    return None


def _damage(exc: duckdb.Error, paths: StorePaths) -> str:
    """DuckDB's reason, when ``exc`` means the file is damaged; otherwise raise our error."""
    error = translate_error(exc, paths)
    if isinstance(error, StoreLockedError | StoreNotWritableError | SchemaTooNewError):
        # Not damage: another program has the file, or it is newer; moving it would not help.
        raise error from None
    first = (str(exc).splitlines() or [type(exc).__name__])[0]
    return first.split(": ", 1)[-1].split(" See also ", 1)[0].rstrip(". ")


def _tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [
        row[0]
        for row in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
            "AND schema_name = 'main' AND NOT temporary ORDER BY table_name"
        ).fetchall()
    ]


def _move_aside(database: Path, why: str) -> Path | None:
    """Rename ``database`` and its WAL to ``<name>.<why>-<time>`` beside it; None if absent."""
    if not database.exists():
        return None
    stamp = time.strftime("%Y%m%dT%H%M%S")
    target = database.with_name(f"{database.name}.{why}-{stamp}")
    n = 1
    while target.exists() or Path(f"{target}.wal").exists():
        target = database.with_name(f"{database.name}.{why}-{stamp}-{n}")
        n += 1
    wal = Path(f"{database}.wal")
    try:
        # The WAL first: DuckDB finds a WAL by name, and the old one must never be
        # replayed into the fresh database. Moved along, it still belongs to the old file.
        if wal.exists():
            os.replace(wal, f"{target}.wal")
        os.replace(database, target)
    except OSError as exc:
        raise StoreNotWritableError(
            f"Cannot move the store database {database} aside ({exc.strerror}); fix the "
            f"permissions of {database.parent} and run 'kernelflow store repair' again."
        ) from None
    return target


# -- what the old file still yields --------------------------------------------------------------


def _copy_old(con: duckdb.DuckDBPyConnection, old: Path, report: RepairReport) -> None:
    """Copy what only the old file holds, table by table, as far as it reads."""
    try:
        # A connection of its own: an error that invalidates the damaged database
        # must not touch the new one.
        source = duckdb.connect(str(old), read_only=True)
    except duckdb.Error:
        report.not_copied = list(_COPIED)
        return
    try:
        present = set(_tables(source))
        for table, key in _COPIED.items():
            if table not in present:
                continue  # written before this table existed
            try:
                rows = source.sql(f"SELECT * FROM {table}").to_arrow_table()
            except duckdb.Error:
                report.not_copied.append(table)
                continue
            copied = _merge(con, table, key, rows)
            if copied:
                report.copied[table] = copied
    finally:
        source.close()


def _merge(con: duckdb.DuckDBPyConnection, table: str, key: tuple[str, ...], rows: Any) -> int:
    """Add the old file's ``rows`` that ``table`` lacks; return how many."""
    con.register("_old_rows", rows)
    con.begin()
    try:
        match = " AND ".join(f"n.{c} IS NOT DISTINCT FROM o.{c}" for c in key)
        assignments = _completions(table, rows.column_names)
        if assignments:
            con.execute(f"UPDATE {table} AS n SET {assignments} FROM _old_rows o WHERE {match}")
        (copied,) = con.execute(
            f"INSERT INTO {table} BY NAME SELECT o.* FROM _old_rows o "
            f"WHERE NOT EXISTS (SELECT 1 FROM {table} n WHERE {match})"
        ).fetchall()[0]  # one row: the count of rows inserted
        con.commit()
    except BaseException:
        con.rollback()
        raise
    finally:
        con.unregister("_old_rows")
    return copied


def _completions(table: str, columns: list[str]) -> str:
    """How a row both hold takes in the old row ``o`` (none: the journals' row ``n`` stands).

    A run's events may be in several journals (a deployment run is created by
    the scheduler and moved by the process that runs the notebook), and a cache
    key is written by one process and hit by others. When one of those journals
    was removed, the others give back the row with an older state, or only a
    placeholder (a state or hit whose creation event is gone). So the newer
    state wins as a whole, and each other column is filled from whichever has it.
    """
    if table in ("flow_runs", "task_runs"):
        old_wins = (
            "(n.state_timestamp IS NULL OR coalesce(o.state_timestamp >= n.state_timestamp, false))"
        )
        return ", ".join(
            f"{c} = CASE WHEN {old_wins} THEN o.{c} ELSE n.{c} END"
            if c in _STATE_COLUMNS
            else f"{c} = coalesce(n.{c}, o.{c})"
            for c in columns
            if c != "id"
        )
    if table == "cache_entries":
        # Hits: the old file counted those of removed journals, the journals those
        # not yet folded; the larger is the closer. Which entries are live is
        # settled afterwards by the cache index.
        return ", ".join(
            f"{c} = greatest(n.{c}, o.{c})"
            if c in ("hits", "last_hit", "deleted_at")
            else f"{c} = coalesce(n.{c}, o.{c})"
            for c in columns
            if c != "key"
        )
    return ""


# -- what the files still hold -------------------------------------------------------------------


def _register_cache(
    con: duckdb.DuckDBPyConnection, paths: StorePaths, report: RepairReport
) -> None:
    """Make the live cache entries exactly those the cache index and result files hold."""
    import pyarrow as pa

    # Imported here: the cache index is built on the store (journal, signing), not under it.
    from kernelflow.store import cache_index

    held = [e for e in cache_index.entries() if (paths.home / e.result).is_file()]
    schema = pa.schema(
        [
            ("key", pa.string()),
            ("task_name", pa.string()),
            ("result", pa.string()),
            ("checksum", pa.string()),
            ("size", pa.int64()),
            ("created", pa.float64()),
            ("expires", pa.float64()),
            ("task_run_id", pa.string()),
            ("duration", pa.float64()),
        ]
    )
    index = pa.Table.from_pylist([e._asdict() for e in held], schema=schema)
    con.register("_index", index)
    con.begin()
    try:
        con.execute(
            """
            CREATE OR REPLACE TEMP TABLE _held AS
            SELECT key, task_name, result, checksum, size, to_timestamp(created) AS created,
                   to_timestamp(expires) AS expires, task_run_id, duration AS duration_s
            FROM _index
            """
        )
        # Written by a process whose journal is gone: unknown to the journals.
        con.execute(
            """
            INSERT INTO cache_entries (key, hits, deleted)
            SELECT key, 0, false FROM _held h
            WHERE NOT EXISTS (SELECT 1 FROM cache_entries c WHERE c.key = h.key)
            """
        )
        # The index file is the truth for lookups: its entry wins over an older or deleted one.
        (report.registered,) = con.execute(
            """
            UPDATE cache_entries SET
                task_name = h.task_name, result = h.result, checksum = h.checksum,
                size = h.size, created = h.created, expires = h.expires,
                task_run_id = h.task_run_id, duration_s = h.duration_s,
                deleted = false, deleted_at = NULL
            FROM _held h
            WHERE cache_entries.key = h.key
              AND (cache_entries.created IS NULL OR cache_entries.created < h.created
                   OR cache_entries.deleted)
            """
        ).fetchall()[0]  # one row: the count of rows updated
        # Live in the database but no longer held (deleted, corrupt or result gone):
        # a lookup would miss it.
        con.execute(
            "UPDATE cache_entries SET deleted = true "
            "WHERE NOT deleted AND key NOT IN (SELECT key FROM _held)"
        )
        con.commit()
    except BaseException:
        con.rollback()
        raise
    finally:
        con.unregister("_index")


def _mirror_limits(con: duckdb.DuckDBPyConnection, paths: StorePaths) -> None:
    """Mirror the limit definition files into ``concurrency_limits`` again."""
    from kernelflow.store.limit_files import list_definitions
    from kernelflow.store.limits import insert_limit_rows

    definitions = list_definitions(paths.limits)
    con.begin()
    try:
        con.execute("DELETE FROM concurrency_limits")
        insert_limit_rows(con, definitions)
        con.commit()
    except BaseException:
        con.rollback()
        raise


def _lost(con: duckdb.DuckDBPyConnection, paths: StorePaths, report: RepairReport) -> list[str]:
    """What is known lost, in plain sentences."""
    lost = []
    if report.not_copied == list(_COPIED):
        lost.append(
            "what only the old file held: the runs, logs, artifacts, events and cache hits of "
            "processes that had ended (their journals are deleted once folded), the "
            "deployments' schedule history and the variables"
        )
    elif report.not_copied:
        lost.append(
            "the rows of " + ", ".join(report.not_copied) + " that only the old file held "
            "(those tables of it could not be read)"
        )
    registered = {row[0] for row in con.execute("SELECT name FROM deployments").fetchall()}
    snapshots = paths.home / "deployments"
    # Each deployment keeps its notebook snapshots in a folder named after it.
    unregistered = sorted(
        entry.name
        for entry in (snapshots.iterdir() if snapshots.is_dir() else ())
        if entry.is_dir() and entry.name not in registered
    )
    if unregistered:
        lost.append(
            f"the deployment{'s' if len(unregistered) > 1 else ''} "
            + ", ".join(unregistered)
            + ": register again with 'kernelflow deploy'"
        )
    return lost
