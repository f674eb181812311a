"""``kernelflow gcl``: global concurrency limits and rate limits, as ``prefect gcl`` has them.

::

    kernelflow gcl create third-party-rps --limit 10 --slot-decay-per-second 10
    kernelflow gcl ls
    kernelflow gcl inspect third-party-rps
    kernelflow gcl update third-party-rps --limit 20
    kernelflow gcl disable third-party-rps
    kernelflow gcl delete third-party-rps

Limits made here and by ``kernelflow concurrency-limit`` are one set: a name
is one limit, whichever command made it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from kernelflow.cli.concurrency import print_inspection, print_limits
from kernelflow.cli.render import console

if TYPE_CHECKING:
    from kernelflow.concurrency._limits import LimitDefinition

__all__ = ["command"]


@click.group("gcl")
def command() -> None:
    """Global concurrency limits and rate limits (slots that decay)."""


@command.command("create")
@click.argument("name")
@click.option("--limit", type=int, required=True, help="Slots that may be occupied at once.")
@click.option(
    "--slot-decay-per-second",
    type=float,
    default=0.0,
    show_default=True,
    help="Rate at which occupied slots free themselves (a rate limit); 0: never.",
)
@click.option("--disable", is_flag=True, help="Create it switched off (not enforced).")
def create(name: str, limit: int, slot_decay_per_second: float, disable: bool) -> None:
    """Create limit NAME."""
    from kernelflow.concurrency import create_limit

    definition = create_limit(name, limit, slot_decay_per_second, active=not disable)
    console().print(f"Created {_describe(definition)}.", highlight=False)


@command.command("ls")
def list_command() -> None:
    """List every limit, with the slots occupied now."""
    print_limits()


@command.command("inspect")
@click.argument("name")
def inspect_command(name: str) -> None:
    """Show limit NAME and its use now."""
    print_inspection(name)


@command.command("update")
@click.argument("name")
@click.option("--limit", type=int, help="New number of slots.")
@click.option("--slot-decay-per-second", type=float, help="New decay rate (0: no decay).")
@click.option("--enable/--disable", "active", default=None, help="Switch enforcement on or off.")
def update(
    name: str, limit: int | None, slot_decay_per_second: float | None, active: bool | None
) -> None:
    """Change settings of limit NAME; holders keep their slots."""
    from kernelflow.concurrency import update_limit
    from kernelflow.errors import ConfigurationError

    if limit is None and slot_decay_per_second is None and active is None:
        raise ConfigurationError(
            "Nothing to update; give --limit, --slot-decay-per-second, --enable or --disable."
        )
    definition = update_limit(
        name, limit=limit, slot_decay_per_second=slot_decay_per_second, active=active
    )
    console().print(f"Updated {_describe(definition)}.", highlight=False)


@command.command("enable")
@click.argument("name")
def enable(name: str) -> None:
    """Enforce limit NAME again."""
    from kernelflow.concurrency import update_limit

    update_limit(name, active=True)
    console().print(f"Enabled limit {name!r}.", highlight=False)


@command.command("disable")
@click.argument("name")
def disable(name: str) -> None:
    """Stop enforcing limit NAME (acquisitions succeed at once) without deleting it."""
    from kernelflow.concurrency import update_limit

    update_limit(name, active=False)
    console().print(f"Disabled limit {name!r}.", highlight=False)


@command.command("delete")
@click.argument("name")
def delete(name: str) -> None:
    """Delete limit NAME."""
    from kernelflow.concurrency import delete_limit

    delete_limit(name)
    console().print(f"Deleted limit {name!r}.", highlight=False)


def _describe(definition: LimitDefinition) -> str:
    text = f"limit {definition.name!r}: {definition.limit} slot(s)"
    if definition.decays:
        text += f", decaying {definition.slot_decay_per_second:g}/s"
    if not definition.active:
        text += " (disabled)"
    return text
