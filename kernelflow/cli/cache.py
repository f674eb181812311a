"""``kernelflow cache``: list and clear cached task results.

``cache ls`` shows the live entries (newest first) from the store's
``cache_entries`` table. ``cache clear`` deletes entries through
:func:`kernelflow.store.cache_index.clear`, optionally only one task's
(``--task``) or only those created more than a duration ago (``--older-than
7d``); a cleared entry is a cache miss next time, so the task simply runs.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import click

from kernelflow._format import format_bytes
from kernelflow.cli.render import console, format_timestamp, frame_table, is_missing

__all__ = ["DURATION", "Duration", "command"]


class Duration(click.ParamType):
    """A click option type for durations with units (``30s``, ``7d``, ``1h30m``).

    The text goes through :func:`kernelflow._durations.parse_duration`, the one
    parser, with a unit required: these options delete data, and a bare ``90``
    is more likely meant as days than seconds. A bad value is a usage error.
    """

    name = "duration"

    def convert(self, value: Any, param: Any, ctx: Any) -> dt.timedelta:
        """Turn the option's text into a ``timedelta`` or fail with a one-line message."""
        if isinstance(value, dt.timedelta):
            return value
        from kernelflow._durations import MAX_SECONDS, parse_duration

        try:
            seconds = parse_duration(str(value), require_unit=True)
        except ValueError as exc:
            # click adds "(see '... --help')" after the message: no full stop before it.
            self.fail(str(exc).rstrip("."), param, ctx)
        if seconds > MAX_SECONDS:  # a timedelta would overflow further on
            self.fail(f"{value!r} is longer than 100 years; write e.g. 90d", param, ctx)
        return dt.timedelta(seconds=seconds)


#: The shared instance, for options: ``click.option("--older-than", type=DURATION)``.
DURATION = Duration()


@click.group("cache")
def command() -> None:
    """List and clear cached task results."""


@command.command("ls")
@click.option("--task", "task_name", metavar="NAME", help="Only this task's entries.")
def list_entries(task_name: str | None) -> None:
    """List cache entries: task, key, size, when created and last used, expiry, hits."""
    from kernelflow.store.queries import cache_entries

    frame = cache_entries()
    if task_name is not None:
        frame = frame[frame["task_name"] == task_name]
    out = console()
    if frame.empty:
        which = f" for task {task_name!r}" if task_name else ""
        out.print(f"No cache entries{which}.")
        return
    now = dt.datetime.now(dt.timezone.utc)
    frame = frame.assign(
        key=frame["key"].str.slice(0, 16),
        size=frame["size"].map(format_bytes),
        # An expired entry stays listed until cleared, but no task will use it again.
        expires=[_expiry(value, now) for value in frame["expires"]],
    )
    table = frame_table(
        frame,
        ["task_name", "key", "size", "created", "last_hit", "expires", "hits"],
        headers={"task_name": "task", "last_hit": "last hit"},
        title=f"{len(frame)} cache entr{'y' if len(frame) == 1 else 'ies'}",
        no_wrap=["key"],
    )
    out.print(table)


@command.command("clear")
@click.option("--task", "task_name", metavar="NAME", help="Only this task's entries.")
@click.option(
    "--older-than",
    type=DURATION,
    metavar="DURATION",
    help="Only entries created longer ago than this: 30s, 15m, 2h, 7d, 1w.",
)
def clear(task_name: str | None, older_than: dt.timedelta | None) -> None:
    """Delete cache entries (all, or those matching --task / --older-than)."""
    from kernelflow.store import cache_index

    removed = cache_index.clear(
        task_name=task_name,
        older_than=None if older_than is None else older_than.total_seconds(),
    )
    criteria = []
    if task_name is not None:
        criteria.append(f"of task {task_name!r}")
    if older_than is not None:
        cutoff = dt.datetime.now() - older_than
        criteria.append(f"created before {format_timestamp(cutoff)}")
    suffix = (" " + " ".join(criteria)) if criteria else ""
    noun = "entry" if removed == 1 else "entries"
    console().print(f"Cleared {removed} cache {noun}{suffix}.", highlight=False)


def _expiry(expires: Any, now: dt.datetime) -> str:
    if is_missing(expires):
        return "never"
    shown = format_timestamp(expires)
    return f"{shown} (expired)" if expires <= now else shown
