"""What each ``%kf`` subcommand does; :mod:`kernelflow.kernel.views` shows the results.

Each function takes the shell's :class:`~kernelflow.kernel.execute.CellRunner`
and the rest of the ``%kf`` line. Bad input raises ``UsageError`` with one line
that says what to write instead.
"""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError

from kernelflow.kernel import views
from kernelflow.kernel.execute import CellRunner
from kernelflow.kernel.options import CellOptions
from kernelflow.kernel.stale import stale_cells
from kernelflow.kernel.why import describe_changes, history_latest

__all__ = ["cache", "graph", "info", "rerun", "runs", "sql", "stale", "why"]


def _live_views(runner: CellRunner) -> bool:
    """True in a Jupyter kernel with widgets on: browsers are widgets, not text."""
    from kernelflow import widgets

    return widgets.enabled() and getattr(runner.shell, "kernel", None) is not None


def runs(runner: CellRunner, rest: str) -> Any:
    """``%kf runs [N]``: this notebook's latest task runs (all its sessions)."""
    limit = 20
    if rest:
        try:
            limit = int(rest)
        except ValueError:
            raise UsageError(
                f"%kf runs takes a number of runs, e.g. %kf runs 50; got {rest!r}"
            ) from None
    if _live_views(runner):
        from kernelflow.widgets import RunHistory

        return RunHistory(flow=runner.session.name, page_size=limit)
    from kernelflow.store.lineage import notebook_task_runs

    frame = notebook_task_runs(runner.session.name, limit)
    return views.render_runs(frame, runner.session.name)


def cache(runner: CellRunner, rest: str) -> Any:
    """``%kf cache`` lists the cache; ``%kf cache clear [NAME]`` empties it (or NAME's part)."""
    from kernelflow.store import cache_index

    words = rest.split()
    if not words and _live_views(runner):
        from kernelflow.widgets import CacheBrowser

        return CacheBrowser()
    if not words:
        from kernelflow.store.queries import cache_entries

        return views.render_cache(cache_entries())
    if words[0] != "clear" or len(words) > 2:
        raise UsageError(f"usage: %kf cache | %kf cache clear [NAME]; got {rest!r}")
    name = words[1] if len(words) == 2 else None
    removed = cache_index.clear(task_name=name)
    whose = f" of {name!r}" if name else ""
    print(f"Removed {removed} cache {'entry' if removed == 1 else 'entries'}{whose}.")
    return None


def graph(runner: CellRunner, rest: str) -> Any:
    """``%kf graph``: this notebook's ``%%task`` cells as a lineage graph, stale cells marked."""
    if rest:
        raise UsageError(f"%kf graph takes no arguments; got {rest!r}")
    from kernelflow.widgets import LineageView

    return LineageView(notebook=runner.session.name)


def sql(runner: CellRunner, rest: str) -> Any:
    """``%kf sql SELECT ...``: a read-only query on the store, as a DataFrame."""
    if not rest:
        raise UsageError("usage: %kf sql SELECT ... (e.g. %kf sql SELECT * FROM task_runs)")
    from kernelflow.store.queries import sql as query

    # A query DuckDB rejects arrives as a QueryError, which a notebook shows as one line.
    return query(rest)


def why(runner: CellRunner, rest: str) -> None:
    """``%kf why NAME``: what changed since the last cached run of a cell."""
    if not rest:
        raise UsageError("usage: %kf why NAME (a %%task cell's name, or a variable it makes)")
    record = runner.lineage.find(rest)
    if record is None:
        previous = history_latest(runner.session.name, rest)
        if previous is not None:
            ago = _ago(previous.get("t"))
            text = (
                f"Cell {rest!r} has not run in this kernel yet; its last cached run was "
                f"{ago}. Run it, then ask again."
            )
        else:
            known = ", ".join(sorted(runner.lineage.cells)) or "none yet"
            raise UsageError(f"No %%task cell named {rest!r} ran in this session (cells: {known}).")
        return views.render_text(text)
    name = record.name
    if record.not_cached:
        listed = "\n".join(f"  - {what}: {why}" for what, why in record.not_cached.items())
        return views.render_text(f"Cell {name!r} runs uncached, because:\n{listed}")
    if record.key is None:
        return views.render_text(f"Cell {name!r} ran with --no-cache: it never uses the cache.")
    if record.cached:
        ago = _ago(record.ran_at)
        text = f"Cell {name!r} used its cache on its last run (a cached run from {ago})."
    else:
        reasons = record.miss_reasons or ["unknown"]
        text = f"Cell {name!r} did not use the cache on its last run, because:\n" + "\n".join(
            f"  - {line}" for line in reasons
        )
    now = _parts_now(runner, record)
    parts = record.parts
    if now is not None and parts is not None and now.key_part() != parts.key_part():
        lines = describe_changes(parts, now)
        changed_here = set(record.changed) & {line.split("'")[1] for line in lines if "'" in line}
        if changed_here:
            lines.append(f"(the cell itself changed {', '.join(sorted(changed_here))} in place)")
        text += "\nIt would run if run now: since then,\n" + "\n".join(
            f"  - {line}" for line in lines
        )
    elif record.cached:
        text += " Nothing it depends on changed since."
    return views.render_text(text)


def _parts_now(runner: CellRunner, record: Any) -> Any:
    from kernelflow.kernel.prepare import prepare

    options = record.options or CellOptions()
    prepared = prepare(runner.shell, record.line, record.body)
    return runner.hash_inputs(prepared, options).parts


def stale(runner: CellRunner, rest: str) -> None:
    """``%kf stale``: cells whose inputs were re-made differently, in dependency order."""
    return views.render_stale(stale_cells(runner.lineage))


def rerun(runner: CellRunner, rest: str) -> None:
    """``%kf rerun``: run the stale cells again, in dependency order, showing each output."""
    from IPython.display import display

    done: set[str] = set()
    while True:
        pending = [s for s in stale_cells(runner.lineage) if s.record.name not in done]
        if not pending:
            break
        record = pending[0].record
        done.add(record.name)
        views.render_rerun_header(record.name, pending[0].reasons)
        value = runner.run(
            record.line, record.body, record.options or CellOptions(), cell_id=record.cell_id
        )
        if value is not None:
            display(value)
    if not done:
        print("No stale cells.")


def info(runner: CellRunner, rest: str) -> None:
    """``%kf info NAME``: a cell's inputs, outputs, state and cache key."""
    if not rest:
        raise UsageError("usage: %kf info NAME")
    record = runner.lineage.find(rest)
    if record is None:
        known = ", ".join(sorted(runner.lineage.cells)) or "none yet"
        raise UsageError(f"No %%task cell named {rest!r} ran in this session (cells: {known}).")
    return views.render_info(record)


def _ago(timestamp: float | None) -> str:
    if timestamp is None:
        return "at an unknown time"
    from kernelflow._format import format_ago

    return format_ago(timestamp)
