"""``kernelflow store``: look after the store itself.

``store repair`` rebuilds a database file DuckDB cannot read (see
:mod:`kernelflow.store.repair`): it moves the file aside, rebuilds what the
journals, the old file, the cache index and the limit files still hold, and
says in a few plain lines where the old file went, what came back and what is
lost. On a readable database it says so and changes nothing, unless ``--force``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from kernelflow.store.repair import RepairReport

__all__ = ["command", "describe"]


@click.group("store")
def command() -> None:
    """Look after the store (KERNELFLOW_HOME) itself."""


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
