"""``kernelflow concurrency-limit``: limits on task runs by tag, and on ``concurrency()`` blocks.

As in Prefect::

    kernelflow concurrency-limit create external-api 5
    kernelflow concurrency-limit ls
    kernelflow concurrency-limit inspect external-api     # who holds slots now
    kernelflow concurrency-limit delete external-api

A limit named like a tag limits task runs with that tag; the same limit
serves ``with concurrency("external-api")``. Rate limits (slots that decay)
are made with ``kernelflow gcl`` (:mod:`kernelflow.cli.gcl`), which shares the
listing and inspection defined here.
"""

from __future__ import annotations

import os
import time

import click
from rich.table import Table

from kernelflow.cli.render import console, format_duration, format_timestamp

__all__ = ["command", "print_inspection", "print_limits"]


def print_limits() -> None:
    """Print every limit of the store as a table, with the slots occupied now."""
    from kernelflow.concurrency import limit_status, list_limits

    definitions = list_limits()
    out = console()
    if not definitions:
        out.print(
            "No concurrency limits. Create one with 'kernelflow concurrency-limit create NAME N'.",
            highlight=False,
        )
        return
    table = Table(
        title=f"{len(definitions)} concurrency limit{'' if len(definitions) == 1 else 's'}"
    )
    for header in ("name", "limit", "occupied", "slot decay /s", "active", "updated"):
        table.add_column(header, justify="right" if header in ("limit", "occupied") else "left")
    for definition in definitions:
        status = limit_status(definition.name)
        table.add_row(
            definition.name,
            str(definition.limit),
            _slots_text(status.occupied, definition.decays),
            f"{definition.slot_decay_per_second:g}" if definition.decays else "",
            "yes" if definition.active else "no",
            format_timestamp(definition.updated),
        )
    out.print(table)


def _slots_text(occupied: float, decays: bool) -> str:
    return f"{occupied:.2f}" if decays else f"{occupied:.0f}"


def print_inspection(name: str) -> None:
    """Print one limit's settings and who holds its slots now."""
    from kernelflow.concurrency import limit_status

    status = limit_status(name)
    definition = status.definition
    out = console()
    kind = "rate limit" if definition.decays else "concurrency limit"
    lines = [
        f"{kind} [bold]{definition.name}[/bold]",
        f"  limit: {definition.limit} slot(s)"
        + (f", decaying {definition.slot_decay_per_second:g}/s" if definition.decays else ""),
        f"  active: {'yes' if definition.active else 'no (not enforced)'}",
        f"  occupied now: {_slots_text(status.occupied, definition.decays)}",
        f"  created: {format_timestamp(definition.created)}, "
        f"updated: {format_timestamp(definition.updated)}",
    ]
    for line in lines:
        out.print(line, highlight=False)
    if definition.decays:
        return
    if not status.holders:
        out.print("  no slot is held", highlight=False)
        return
    table = Table(title="holders")
    for header in ("slot", "pid", "host", "held for", "since", "thread", "task run"):
        table.add_column(header)
    now = time.time()
    for holder in status.holders:
        table.add_row(
            str(holder.slot),
            "" if holder.pid is None else str(holder.pid),
            holder.host or "",
            "" if holder.since is None else format_duration(now - holder.since),
            format_timestamp(holder.since),
            holder.thread or "",
            holder.task_run or "",
        )
    out.print(table)


@click.group("concurrency-limit")
def command() -> None:
    """Limit how many task runs with a tag (or concurrency() blocks) run at once."""


@command.command("create")
@click.argument("tag")
@click.argument("concurrency_limit", metavar="LIMIT", type=int)
def create(tag: str, concurrency_limit: int) -> None:
    """Create (or change) the limit TAG to LIMIT slots, shared by every process of the store."""
    from kernelflow.concurrency import create_limit, read_limit, update_limit

    if os.path.exists(_definition_path(tag)):
        read_limit(tag)
        update_limit(tag, limit=concurrency_limit)
        verb = "Updated"
    else:
        create_limit(tag, concurrency_limit)
        verb = "Created"
    console().print(
        f"{verb} concurrency limit {tag!r}: {concurrency_limit} slot(s).", highlight=False
    )


def _definition_path(name: str) -> str:
    from kernelflow.concurrency._limits import check_name, limit_dir

    return f"{limit_dir(check_name(name))}/limit.json"


@command.command("ls")
def list_command() -> None:
    """List every limit, with the slots occupied now."""
    print_limits()


@command.command("inspect")
@click.argument("tag")
def inspect_command(tag: str) -> None:
    """Show limit TAG and who holds its slots now (pid, host, since, task run)."""
    print_inspection(tag)


@command.command("delete")
@click.argument("tag")
def delete(tag: str) -> None:
    """Delete limit TAG (current holders finish; later use of the name is an error)."""
    from kernelflow.concurrency import delete_limit

    delete_limit(tag)
    console().print(f"Deleted concurrency limit {tag!r}.", highlight=False)
