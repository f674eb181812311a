"""Global concurrency limits, rate limits and task concurrency by tag.

Use them through :mod:`kernelflow.concurrency.sync` (``with concurrency(...)``,
``rate_limit(...)``) or :mod:`kernelflow.concurrency.asyncio`; create them with
``kernelflow concurrency-limit create NAME N`` or ``kernelflow gcl create NAME
--limit N --slot-decay-per-second R``, or with the functions here.

Design
------
A limit is shared by every process on the machine that uses the same store
(``KERNELFLOW_HOME``): two notebooks and a scheduled run together respect it.
Acquiring a slot must cost well under a millisecond and must survive a holder
killed with SIGKILL, so it involves no server and no database:

- a *concurrency limit* (no decay) of N is N lock files; a slot is an
  exclusive ``flock`` on one of them (:mod:`._slots`). The kernel releases a
  dead holder's lock at once.
- a *rate limit* (``slot_decay_per_second`` > 0) is one counter file that
  decays on read (:mod:`._rate`), changed under a short ``flock``.
- definitions are small JSON files read on each acquisition (cached by
  ``stat``) (:mod:`._limits`), mirrored into the store's ``concurrency_limits``
  table on every change, so they are queryable with ``kernelflow.sql``.

As in Prefect, using a limit that does not exist logs a warning and goes on
without a slot; ``strict=True`` makes it an error naming the command that
creates it. Unlike Prefect, a request that can never be met (``occupy`` above
the limit) fails at once instead of waiting forever.

A task run whose tags name limits takes one slot of each before every try
and gives it back after (see :mod:`._tags`); limits and tags share one
namespace, so ``kernelflow concurrency-limit create TAG N`` limits both
``with concurrency("TAG")`` blocks and task runs tagged ``TAG``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from kernelflow.concurrency import _rate, _slots
from kernelflow.concurrency._limits import (
    LimitDefinition,
    check_decay,
    check_limit,
    check_name,
    delete_definition,
    limit_dir,
    list_definitions,
    read_definition,
    write_definition,
)
from kernelflow.concurrency._records import change_recorded
from kernelflow.concurrency._slots import SlotHolder
from kernelflow.errors import ConfigurationError

__all__ = [
    "LimitDefinition",
    "LimitStatus",
    "SlotHolder",
    "create_limit",
    "delete_limit",
    "limit_status",
    "list_limits",
    "read_limit",
    "update_limit",
]


def create_limit(
    name: str,
    limit: int,
    slot_decay_per_second: float = 0.0,
    active: bool = True,
    *,
    replace_existing: bool = False,
) -> LimitDefinition:
    """Create a concurrency limit (or, with ``slot_decay_per_second`` > 0, a rate limit).

    Parameters
    ----------
    name:
        The limit's name; a task tag of the same name is limited by it too.
    limit:
        Slots that may be occupied at once (>= 1).
    slot_decay_per_second:
        0: slots are held until released. Above 0: occupied slots free
        themselves at this rate (a rate limit).
    active:
        False creates it switched off (not enforced).
    replace_existing:
        Replace a limit of that name instead of refusing.

    Raises
    ------
    ConfigurationError
        A bad value, or the limit exists and ``replace_existing`` is False.

    Example
    -------
    >>> create_limit("external-api", 5)  # doctest: +SKIP
    """
    check_name(name)
    check_limit(limit)
    decay = check_decay(slot_decay_per_second)
    if not replace_existing and os.path.exists(f"{limit_dir(name)}/limit.json"):
        raise ConfigurationError(
            f"A concurrency limit named {name!r} exists; change it with 'kernelflow gcl update "
            f"{name} --limit N' or delete it first."
        )
    definition = LimitDefinition(name, limit, decay, bool(active))
    return change_recorded(name, lambda: write_definition(definition))


def update_limit(
    name: str,
    *,
    limit: int | None = None,
    slot_decay_per_second: float | None = None,
    active: bool | None = None,
) -> LimitDefinition:
    """Change some settings of an existing limit; holders keep their slots.

    Current holders keep their slots (even above a lowered limit) until they
    release them; the new settings apply to acquisitions from now on.

    Raises
    ------
    LimitNotFoundError
        No limit has that name.
    """
    check_name(name)
    if limit is not None:
        check_limit(limit)
    if slot_decay_per_second is not None:
        check_decay(slot_decay_per_second)

    def apply() -> LimitDefinition:
        current = read_definition(name)
        changes: dict = {}
        if limit is not None:
            changes["limit"] = limit
        if slot_decay_per_second is not None:
            changes["slot_decay_per_second"] = float(slot_decay_per_second)
        if active is not None:
            changes["active"] = bool(active)
        return write_definition(replace(current, **changes))

    read_definition(name)  # a clear error before opening the store
    return change_recorded(name, apply)


def delete_limit(name: str) -> None:
    """Delete a limit. Current holders keep running; later acquisitions fail.

    Raises
    ------
    LimitNotFoundError
        No limit has that name.
    """
    check_name(name)
    read_definition(name)

    def apply() -> None:
        delete_definition(name)
        return None

    change_recorded(name, apply)


def read_limit(name: str) -> LimitDefinition:
    """The definition of limit ``name`` (raises :class:`LimitNotFoundError` if none)."""
    return read_definition(check_name(name))


def list_limits() -> list[LimitDefinition]:
    """Every limit of the active store, sorted by name."""
    return list_definitions()


@dataclass(frozen=True)
class LimitStatus:
    """A limit and its use right now.

    Attributes
    ----------
    definition:
        The limit.
    occupied:
        Slots occupied now (fractional for a rate limit, whose slots decay).
    holders:
        Who holds each occupied slot of a concurrency limit (empty for a rate
        limit, whose slots belong to no one once taken).
    """

    definition: LimitDefinition
    occupied: float
    holders: list[SlotHolder]


def limit_status(name: str) -> LimitStatus:
    """How many slots of limit ``name`` are occupied now, and by whom.

    Example
    -------
    >>> [h.pid for h in limit_status("external-api").holders]  # doctest: +SKIP
    [41213, 41388]
    """
    definition = read_limit(name)
    directory = limit_dir(name)
    if definition.decays:
        used = _rate.occupied(directory, definition.limit, definition.slot_decay_per_second)
        return LimitStatus(definition, used, [])
    holders = _slots.held_slots(directory)
    return LimitStatus(definition, float(len(holders)), holders)
