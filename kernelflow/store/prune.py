"""Retention: remove what is older than a cutoff, so a store used every day stays small.

:func:`prune` (``kernelflow store prune --older-than 90d``), under the store's
write lock, after folding every journal:

1. picks the *finished* top-level flow runs that ended before the cutoff, with
   their subflows (at any depth) and the task runs of all of them, and the
   finished task runs called outside any flow that ended before it; with
   ``keep_failed``, Failed and Crashed ones (and everything under them) stay;
2. deletes those runs, their states, logs, artifacts and events in one
   transaction (a run that is still going, scheduled or paused is never
   picked, whatever its age);
3. removes expired cache entries (they can never be used again), then result
   files older than the cutoff that nothing points to any more: no cache
   entry, no remaining run. Files newer than the cutoff are never touched, so
   a result a running process has just written, before its journal is
   folded, is safe.

The automatic policy: with ``KERNELFLOW_RETENTION=90d`` a process that records
runs (its background compaction) prunes the same way at most once a day
(:func:`apply_retention`); unset, nothing is pruned unless asked.

Deployments, their fire records (which keep each schedule exactly-once),
variables and concurrency limits are not pruned. DuckDB reuses the space of
deleted rows for new ones; the file itself does not shrink.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from kernelflow import settings
from kernelflow.settings import StorePaths
from kernelflow.store.schema import TERMINAL_STATE_TYPES

__all__ = ["PruneReport", "apply_retention", "prune"]

#: How often the automatic policy (``KERNELFLOW_RETENTION``) prunes, at most.
RETENTION_EVERY = 86400.0

_FINAL = ", ".join(f"'{t}'" for t in TERMINAL_STATE_TYPES)
#: Kept with ``keep_failed``.
_FAILED = "'FAILED', 'CRASHED'"

# Runs to remove, as two temporary tables; parameters: cutoff (epoch s), keep_failed.
_PICK = [
    f"""
    CREATE OR REPLACE TEMP TABLE _prune_flows AS
    WITH RECURSIVE tree(id) AS (
        SELECT id FROM flow_runs
        WHERE parent_flow_run_id IS NULL
          AND state_type IN ({_FINAL})
          AND coalesce(end_time, state_timestamp) < to_timestamp($cutoff)
          AND NOT ($keep_failed AND state_type IN ({_FAILED}))
        UNION
        SELECT f.id FROM flow_runs f JOIN tree ON f.parent_flow_run_id = tree.id
    )
    SELECT DISTINCT id FROM tree
    """,
    f"""
    CREATE OR REPLACE TEMP TABLE _prune_tasks AS
    SELECT id FROM task_runs WHERE flow_run_id IN (SELECT id FROM _prune_flows)
    UNION
    SELECT id FROM task_runs
    WHERE flow_run_id IS NULL
      AND state_type IN ({_FINAL})
      AND coalesce(end_time, state_timestamp) < to_timestamp($cutoff)
      AND NOT ($keep_failed AND state_type IN ({_FAILED}))
    """,
    """
    CREATE OR REPLACE TEMP TABLE _prune_runs AS
    SELECT id FROM _prune_flows UNION ALL SELECT id FROM _prune_tasks
    """,
]

#: (report field, how many rows it would remove).
_COUNTS = {
    "flow_runs": "SELECT count(*) FROM _prune_flows",
    "task_runs": "SELECT count(*) FROM _prune_tasks",
    "states": "SELECT count(*) FROM states WHERE run_id IN (SELECT id FROM _prune_runs)",
    "logs": "SELECT count(*) FROM logs WHERE run_id IN (SELECT id FROM _prune_runs)",
    "artifacts": """
        SELECT count(*) FROM artifacts
        WHERE flow_run_id IN (SELECT id FROM _prune_flows)
           OR task_run_id IN (SELECT id FROM _prune_tasks)
        """,
    "events": """
        SELECT count(*) FROM events
        WHERE flow_run_id IN (SELECT id FROM _prune_flows)
           OR task_run_id IN (SELECT id FROM _prune_tasks)
        """,
}

_DELETE = [
    "DELETE FROM states WHERE run_id IN (SELECT id FROM _prune_runs)",
    "DELETE FROM logs WHERE run_id IN (SELECT id FROM _prune_runs)",
    """DELETE FROM artifacts WHERE flow_run_id IN (SELECT id FROM _prune_flows)
       OR task_run_id IN (SELECT id FROM _prune_tasks)""",
    """DELETE FROM events WHERE flow_run_id IN (SELECT id FROM _prune_flows)
       OR task_run_id IN (SELECT id FROM _prune_tasks)""",
    "DELETE FROM task_runs WHERE id IN (SELECT id FROM _prune_tasks)",
    "DELETE FROM flow_runs WHERE id IN (SELECT id FROM _prune_flows)",
]

#: Result files the remaining runs point to.
_REFERENCED = """
    SELECT result FROM task_runs WHERE result IS NOT NULL
    UNION SELECT result FROM flow_runs WHERE result IS NOT NULL
"""

_KEPT_FAILED = f"""
    SELECT count(*) FROM flow_runs
    WHERE parent_flow_run_id IS NULL AND state_type IN ({_FAILED})
      AND coalesce(end_time, state_timestamp) < to_timestamp($cutoff)
"""


@dataclass
class PruneReport:
    """What :func:`prune` removed (or, with ``dry_run``, would remove).

    Attributes
    ----------
    cutoff
        Epoch seconds: what ended before this went.
    dry_run
        Nothing was removed; the counts say what would be.
    flow_runs, task_runs, states, logs, artifacts, events
        Rows removed from each table.
    kept_failed
        Failed or Crashed top-level flow runs older than the cutoff that were
        kept (``keep_failed``).
    cache_entries
        Expired cache entries removed.
    result_files, result_bytes
        Result files nothing pointed to any more, and their total size.
    """

    cutoff: float
    dry_run: bool = False
    flow_runs: int = 0
    task_runs: int = 0
    states: int = 0
    logs: int = 0
    artifacts: int = 0
    events: int = 0
    kept_failed: int = 0
    cache_entries: int = 0
    result_files: int = 0
    result_bytes: int = 0


def prune(
    older_than: float,
    *,
    keep_failed: bool = False,
    dry_run: bool = False,
    paths: StorePaths | None = None,
) -> PruneReport:
    """Remove finished runs that ended over ``older_than`` seconds ago, and what only they used.

    Parameters
    ----------
    older_than
        Age in seconds (``kernelflow store prune --older-than 90d``); must be > 0.
    keep_failed
        Keep Failed and Crashed runs (and their subflows and task runs).
    dry_run
        Count, remove nothing.
    paths
        The store; default the active one.

    Returns
    -------
    PruneReport

    Raises
    ------
    ConfigurationError
        ``older_than`` is not a positive, finite number of seconds.
    StoreError
        The database could not be used (locked, corrupt, not writable).
    """
    from kernelflow._durations import check_seconds
    from kernelflow.store.compact import compact
    from kernelflow.store.db import connect

    older_than = check_seconds(older_than, "--older-than")
    paths = paths or settings.paths()
    report = PruneReport(cutoff=time.time() - older_than, dry_run=dry_run)
    compact(paths)  # what is pruned is what the database knows: fold first
    arguments: dict[str, object] = {"cutoff": report.cutoff, "keep_failed": keep_failed}
    with connect(paths) as con:
        con.begin()
        try:
            for statement in _PICK:
                con.execute(statement, _used(arguments, statement))
            for field, query in _COUNTS.items():
                setattr(report, field, con.execute(query).fetchall()[0][0])
            if keep_failed:
                count = con.execute(_KEPT_FAILED, {"cutoff": report.cutoff}).fetchall()[0][0]
                report.kept_failed = count
            if not dry_run:
                for statement in _DELETE:
                    con.execute(statement)
            con.commit()
        except BaseException:
            con.rollback()
            raise
        referenced = {row[0] for row in con.execute(_REFERENCED).fetchall()}
        if dry_run:  # the runs would be gone: their files count as unreferenced
            referenced -= {
                row[0]
                for row in con.execute(
                    "SELECT result FROM task_runs WHERE id IN (SELECT id FROM _prune_tasks) "
                    "UNION SELECT result FROM flow_runs WHERE id IN (SELECT id FROM _prune_flows)"
                ).fetchall()
            }
    report.cache_entries, in_cache = _expired_cache_entries(dry_run)
    _collect_results(paths, report, referenced | in_cache)
    return report


def apply_retention(paths: StorePaths | None = None) -> PruneReport | None:
    """Prune by ``KERNELFLOW_RETENTION`` (an age, e.g. ``90d``) if a day has passed since last.

    Returns the report, or None when the policy is off or not due. The time
    of the last prune is the modification time of ``pruned.stamp`` in the
    store, claimed before pruning, so processes sharing a store prune once.

    Raises
    ------
    ConfigurationError
        ``KERNELFLOW_RETENTION`` is not a duration.
    """
    older_than = settings.current().retention
    if older_than is None:
        return None
    paths = paths or settings.paths()
    stamp = paths.home / "pruned.stamp"
    try:
        if time.time() - stamp.stat().st_mtime < RETENTION_EVERY:
            return None
    except FileNotFoundError:
        pass
    settings.write_private(stamp, b"")
    return prune(older_than, paths=paths)


def _used(arguments: dict[str, object], statement: str) -> dict[str, object]:
    """The named parameters ``statement`` mentions (DuckDB refuses the others)."""
    return {name: value for name, value in arguments.items() if f"${name}" in statement}


def _expired_cache_entries(dry_run: bool) -> tuple[int, set[str]]:
    """Remove expired entries; return how many, and the result files live entries use."""
    from kernelflow.store import cache_index

    now = time.time()
    removed, used = 0, set()
    for entry in cache_index.entries():
        if entry.expires is not None and entry.expires <= now:
            removed += 1
            if not dry_run:
                cache_index.delete(entry.key)
        else:
            used.add(entry.result)
    return removed, used


def _collect_results(paths: StorePaths, report: PruneReport, referenced: set[str]) -> None:
    """Delete result files older than the cutoff that nothing in ``referenced`` names."""
    root = paths.results
    if not root.is_dir():
        return
    home = paths.home
    for dirpath, _, files in os.walk(root):
        for name in files:
            file = Path(dirpath, name)
            relative = file.relative_to(home).as_posix()
            try:
                stat = file.stat()
            except FileNotFoundError:
                continue
            if relative in referenced or stat.st_mtime >= report.cutoff:
                continue
            report.result_files += 1
            report.result_bytes += stat.st_size
            if not report.dry_run:
                try:
                    file.unlink()
                except FileNotFoundError:
                    pass
