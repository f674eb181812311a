"""``kernelflow store``: look after the store itself.

``store prune --older-than 90d`` removes finished runs older than that, and
the result files only they used (see :mod:`kernelflow.store.prune`).

``store repair`` rebuilds a database file DuckDB cannot read (see
:mod:`kernelflow.store.repair`): it moves the file aside, rebuilds what the
journals, the old file, the cache index and the limit files still hold, and
says in a few plain lines where the old file went, what came back and what is
lost. On a readable database it says so and changes nothing, unless ``--force``.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import click

from kernelflow._format import format_bytes
from kernelflow.cli.cache import DURATION

if TYPE_CHECKING:
    from kernelflow.store.prune import PruneReport
    from kernelflow.store.repair import RepairReport

__all__ = ["command", "describe", "describe_prune"]


@click.group("store")
def command() -> None:
    """Look after the store (KERNELFLOW_HOME) itself."""


@command.command("prune")
@click.option(
    "--older-than",
    "older_than",
    required=True,
    type=DURATION,
    metavar="DURATION",
    help="Remove finished runs that ended longer ago than this (e.g. 90d, 12h).",
)
@click.option("--keep-failed", is_flag=True, help="Keep Failed and Crashed runs.")
@click.option("--dry-run", is_flag=True, help="Say what would go; remove nothing.")
def prune(older_than: dt.timedelta, keep_failed: bool, dry_run: bool) -> None:
    """Remove finished runs older than --older-than, with their states, logs and
    artifacts, expired cache entries, and result files nothing uses any more.

    Runs still going, scheduled or paused stay whatever their age; so do
    deployments, variables and limits.
    """
    from kernelflow.store.prune import prune as prune_store

    report = prune_store(older_than.total_seconds(), keep_failed=keep_failed, dry_run=dry_run)
    for line in describe_prune(report):
        click.echo(line)


def describe_prune(report: PruneReport) -> list[str]:
    """The lines ``store prune`` prints for a :class:`~kernelflow.store.prune.PruneReport`."""
    when = dt.datetime.fromtimestamp(report.cutoff).strftime("%Y-%m-%d %H:%M")
    verb = "Would remove" if report.dry_run else "Removed"
    lines = [
        f"{verb} {_count(report.flow_runs, 'flow run')} and {_count(report.task_runs, 'task run')}"
        f" that ended before {when}, with {_count(report.logs, 'log line')}, "
        f"{_count(report.states, 'state')}, {_count(report.artifacts, 'artifact')} and "
        f"{_count(report.events, 'event')}."
    ]
    if report.kept_failed:
        lines.append(
            f"Kept {_count(report.kept_failed, 'failed or crashed flow run')} (--keep-failed)."
        )
    lines.append(
        f"{verb} {_count(report.cache_entries, 'expired cache entry', 'expired cache entries')} "
        f"and {_count(report.result_files, 'result file')} nothing used any more "
        f"({format_bytes(report.result_bytes)})."
    )
    if report.dry_run:
        lines.append("Nothing was removed (--dry-run).")
    return lines


@command.command("repair")
@click.option("--force", is_flag=True, help="Rebuild even when the database reads fine.")
def repair(force: bool) -> None:
    """Rebuild an unreadable database (kept aside).

    The old file is moved to kernelflow.duckdb.corrupt-<time>; the new one is built
    from the journals, what the old file still reads, the cache index and the limit
    files. A database that reads fine is left alone unless --force.
    """
    from kernelflow.store.repair import repair as repair_store

    for line in describe(repair_store(force=force)):
        click.echo(line)


def describe(report: RepairReport) -> list[str]:
    """The lines ``store repair`` prints for a :class:`~kernelflow.store.repair.RepairReport`."""
    if not report.repaired:
        if not report.database.exists():
            return [f"There is no store database {report.database} yet; nothing to repair."]
        return [
            f"The store database {report.database} reads fine; nothing to repair "
            "(--force rebuilds it anyway)."
        ]
    if report.problem is not None:
        lines = [f"The store database {report.database} was not readable ({report.problem})."]
    elif report.moved_to is None:
        lines = [f"There was no store database {report.database}; building it (--force)."]
    else:
        lines = [
            f"The store database {report.database} reads fine; rebuilding it anyway (--force)."
        ]
    if report.moved_to is not None:
        lines.append(f"Moved it aside to {report.moved_to} (kept; delete it when done with it).")
    counts = [
        _count(report.flow_runs, "flow run"),
        _count(report.task_runs, "task run"),
        _count(report.logs, "log line"),
        _count(report.cache_entries, "cache entry", "cache entries"),
        _count(report.deployments, "deployment"),
    ]
    sources = [_count(report.journals, "journal")]
    if report.copied:
        sources.append(f"{_count(sum(report.copied.values()), 'row')} of the old file")
    if report.registered:
        sources.append(f"{_count(report.registered, 'entry', 'entries')} of the cache index")
    lines.append(
        f"Rebuilt {report.database}: {', '.join(counts[:-1])} and {counts[-1]}, "
        f"from {', '.join(sources)}."
    )
    if report.lost:
        lines += [f"Lost: {sentence}." for sentence in report.lost]
    else:
        lines.append("Nothing is known lost.")
    return lines


def _count(n: int, singular: str, plural: str | None = None) -> str:
    return f"{n} {singular if n == 1 else plural or singular + 's'}"
