"""How ``%kf`` shows things: printed text now, one function per view.

Each ``render_*`` function receives the data of one view and shows it. The
widgets package replaces these functions with live views; nothing else needs
to change.
"""

from __future__ import annotations

import time
from typing import Any

from kernelflow._format import format_ago, format_bytes
from kernelflow.kernel.lineage import CellRecord
from kernelflow.kernel.stale import StaleCell

__all__ = [
    "render_cache",
    "render_info",
    "render_rerun_header",
    "render_runs",
    "render_stale",
    "render_text",
]


def render_text(text: str) -> None:
    """Print a message (``%kf why``, ``%kf stale``...)."""
    print(text)


def render_runs(frame: Any, notebook: str) -> None:
    """``%kf runs``: a text table of task runs."""
    if frame.empty:
        print(f"No task runs recorded for {notebook} yet.")
        return
    shown = frame.drop(columns=["id"]).copy()
    shown["message"] = shown["message"].fillna("").str.slice(0, 60)
    print(shown.to_string(index=False))


def render_cache(frame: Any) -> None:
    """``%kf cache``: a text table of cache entries and their total size."""
    if frame.empty:
        print("The cache is empty.")
        return
    now = time.time()
    rows = frame.assign(
        key=frame["key"].str.slice(0, 12),
        size=frame["size"].map(lambda size: format_bytes(size) or "-"),
        created=frame["created"].map(lambda t: _age(t, now)),
        last_hit=frame["last_hit"].map(lambda t: _age(t, now)),
        expires=frame["expires"].map(lambda t: "never" if _missing(t) else str(t)[:19]),
    )[["task_name", "key", "size", "created", "hits", "last_hit", "expires"]]
    total = format_bytes(int(frame["size"].fillna(0).sum()))
    print(f"{rows.to_string(index=False)}\n{len(frame)} entries, {total}")


def render_stale(stale: list[StaleCell]) -> None:
    """``%kf stale``: stale cells in dependency order, each with its reasons."""
    if not stale:
        print("No stale cells.")
        return
    for number, item in enumerate(stale, 1):
        print(f"{number}. {item.record.name}: " + "; ".join(item.reasons))


def render_rerun_header(name: str, reasons: tuple[str, ...]) -> None:
    """``%kf rerun``: the line before each re-run cell's own output."""
    print(f"── rerun {name}: {'; '.join(reasons)}")


def render_info(record: CellRecord) -> None:
    """``%kf info NAME``: a cell's inputs, outputs, state and key."""

    def listing(mapping: dict[str, Any]) -> str:
        if not mapping:
            return "    (none)"
        return "\n".join(
            f"    {name} = {(digest or 'not hashed')[:12]}"
            + (f"  from cell {record.upstream[name]!r}" if name in record.upstream else "")
            for name, digest in mapping.items()
        )

    duration = "" if record.duration is None else f" in {record.duration:.3f} s"
    lines = [
        f"cell {record.name!r}: {record.state}{duration}" + (" (cached)" if record.cached else ""),
        f"  task run: {record.task_run_id}",
        f"  cache key: {record.key or 'none (--no-cache)'}",
        "  inputs:",
        listing(record.inputs),
        "  outputs:",
        listing(
            {
                k: v
                for k, v in record.outputs.items()
                if k not in record.changed and k not in record.imports
            }
        ),
        "  changed in place:",
        listing({k: record.outputs.get(k) for k in record.changed}),
    ]
    imported = sorted(k for k in record.outputs if k in record.imports)
    if imported:
        lines.append(f"  imports: {', '.join(imported)}")
    print("\n".join(lines))


def _missing(value: Any) -> bool:
    return value is None or value != value  # NaN / NaT


def _age(value: Any, now: float) -> str:
    return format_ago(value, now) or "-"
